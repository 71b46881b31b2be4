#!/usr/bin/env node
// Issue 16: every exported class, constructor, method, function and option of the public entry points carries
// JSDoc. Walks what lib/index.ts and lib/tfjs/index.ts export, through the TypeScript compiler, and lists what lacks it.
'use strict';
const path = require('node:path');
const ts = require('typescript');

const ROOT = path.resolve(__dirname, '..');
const ENTRIES = ['lib/index.ts', 'lib/tfjs/index.ts'].map((f) => path.join(ROOT, f));
const program = ts.createProgram(ENTRIES, { strict: true, skipLibCheck: true, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'] });
const checker = program.getTypeChecker();
const missing = [];
const seen = new Set();

function documented(node) {
  return ts.getJSDocCommentsAndTags(node).length > 0;
}

function where(node) {
  const file = node.getSourceFile();
  const { line } = file.getLineAndCharacterOfPosition(node.getStart());
  return `${path.relative(ROOT, file.fileName)}:${line + 1}`;
}

function isPublic(member) {
  const flags = ts.getCombinedModifierFlags(member);
  if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return false;
  if (member.name && ts.isPrivateIdentifier(member.name)) return false;
  return !ts.getJSDocTags(member).some((t) => t.tagName.text === 'internal');
}

function checkMembers(owner, members) {
  for (const m of members) {
    if (!isPublic(m) || ts.isIndexSignatureDeclaration(m) || ts.isClassStaticBlockDeclaration(m)) continue;
    if (
      ts.isConstructorDeclaration(m) ||
      ts.isMethodDeclaration(m) ||
      ts.isMethodSignature(m) ||
      ts.isPropertySignature(m) ||
      ts.isPropertyDeclaration(m) ||
      ts.isGetAccessorDeclaration(m)
    ) {
      if (!documented(m)) {
        const name = ts.isConstructorDeclaration(m) ? 'constructor' : m.name.getText();
        missing.push(`${where(m)} ${owner}.${name}`);
      }
    }
  }
}

function checkDeclaration(name, decl) {
  if (seen.has(decl)) return;
  seen.add(decl);
  if (decl.getSourceFile().isDeclarationFile && !decl.getSourceFile().fileName.endsWith('binding.d.ts')) return;
  const node = ts.isVariableDeclaration(decl) ? decl.parent.parent : decl;
  if (!documented(node) && !documented(decl)) missing.push(`${where(decl)} ${name}`);
  if (ts.isClassDeclaration(decl) || ts.isInterfaceDeclaration(decl)) checkMembers(name, decl.members);
  if (ts.isTypeAliasDeclaration(decl) && ts.isTypeLiteralNode(decl.type)) checkMembers(name, decl.type.members);
}

for (const entry of ENTRIES) {
  const source = program.getSourceFile(entry);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    for (const decl of symbol.declarations ?? []) checkDeclaration(exported.name, decl);
  }
}

if (missing.length) {
  console.error(`check-jsdoc: ${missing.length} public declarations without JSDoc:\n  ${missing.join('\n  ')}`);
  process.exit(1);
}
console.log('check-jsdoc: every public declaration has JSDoc');
