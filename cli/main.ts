#!/usr/bin/env node
// The spectral-norm command: report σ of a model file's weights, write a spectrally normalized copy, or show the
// backends. Results go to stdout (JSON alone with --json); progress, notes and errors to stderr. Exit 0 on success,
// 1 on any error, with a one-line message naming the file and, where known, the tensor.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import { backendInfo } from '../lib';
import { info } from './commands/info';
import { normalize } from './commands/normalize';
import { report } from './commands/report';
import { type BoundsFlags, boundsOptions, withBoundsFlags } from './bounds-flags';
import { type DeviceChoice, parseDevice } from './devices';
import { UsageError, firstLine } from './errors';
import { removeTemporaryFiles } from './file-io';
import { type DimRule, parseDimRule, parsePattern } from './selection';

const { version } = require('../../package.json') as { version: string };

function collect<T>(parse: (s: string) => T) {
  return (value: string, previous: T[]): T[] => {
    try {
      return [...previous, parse(value)];
    } catch (error) {
      throw new InvalidArgumentError(firstLine(error));
    }
  };
}

function number(predicate: (x: number) => boolean, wanted: string) {
  return (value: string): number => {
    const x = Number(value);
    if (value.trim() === '' || !predicate(x)) throw new InvalidArgumentError(`must be ${wanted}`);
    return x;
  };
}

const positiveInteger = number((x) => Number.isSafeInteger(x) && x >= 1, 'a positive integer');

/** The options report and normalize share: which tensors, along which dim, and how σ is computed. */
function withSelectionAndBackend(command: Command): Command {
  return command
    .option(
      '--include <regex>',
      'only tensors whose name matches (repeatable; default: every float tensor of rank ≥ 2)',
      collect((s) => parsePattern('--include', s)),
      [],
    )
    .option(
      '--exclude <regex>',
      'drop tensors whose name matches (repeatable), e.g. biases, norm scales, embeddings',
      collect((s) => parsePattern('--exclude', s)),
      [],
    )
    .option(
      '--dim <[regex=]n>',
      "the matrix's row dimension, for all tensors or those matching regex (repeatable; first match wins; default 0 for safetensors, -1 for TF.js)",
      collect(parseDimRule),
      [],
    )
    .addOption(
      new Option('--backend <name>', 'the backend that runs the power iteration').choices(['auto', 'cpu', 'cuda', 'js']).default('auto'),
    )
    .option(
      '--device <n|all>',
      "the GPU of the cuda backend, or 'all' to spread the tensors over every GPU (one or none: as without it)",
      (value: string) => {
        try {
          return parseDevice(value);
        } catch (error) {
          throw new InvalidArgumentError(firstLine(error));
        }
      },
    )
    .option('--threads <n>', 'CPU threads (default: the cores available)', positiveInteger)
    .option(
      '--tolerance <t>',
      'stop once σ changes by at most t·σ between iterations',
      number((x) => x >= 0 && Number.isFinite(x), 'a non-negative number'),
      1e-6,
    )
    .option('--max-iterations <n>', 'iteration limit per tensor', positiveInteger, 1000)
    .option('--json', 'machine-readable output on stdout', false);
}

interface CommonFlags {
  include: RegExp[];
  exclude: RegExp[];
  dim: DimRule[];
  backend: 'auto' | 'cpu' | 'cuda' | 'js';
  device?: DeviceChoice;
  threads?: number;
  tolerance: number;
  maxIterations: number;
  json: boolean;
}

function common(flags: CommonFlags) {
  const { include, exclude, dim: dims, backend, device, threads, tolerance, maxIterations, json } = flags;
  const info = backendInfo();
  if (backend !== 'auto' && !info.available.includes(backend)) {
    const reason = backend === 'cuda' ? info.cuda.reason : info.cpu.reason;
    throw new UsageError(`--backend ${backend} is unavailable on this machine: ${reason}`);
  }
  return { include, exclude, dims, backend, device, threads, tolerance, maxIterations, json };
}

/** Where the command writes: results to `out` (stdout), everything else to `err` (stderr). */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const STDIO: Io = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };

const MODEL_ARGUMENT =
  'a .safetensors file, a *.safetensors.index.json of shards, a TF.js model.json or *weights_manifest.json, an .onnx file, or a folder holding one of these';

/** Set by an action that finished but must still fail (a report with a non-finite tensor). */
let exitCode = 0;

function program(io: Io): Command {
  const print = (text: string) => io.out(`${text}\n`);
  const warn = (text: string) => io.err(`${text}\n`);
  // Set before the subcommands are added, which inherit both: errors come back to main() instead of exiting, and
  // commander's own ("error: unknown option …") come out in the command's one-line style.
  const cli = new Command('spectral-norm')
    .exitOverride()
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      outputError: (text, write) => write(`spectral-norm: ${text.trim().replace(/^error: /, '')} (see --help)\n`),
    })
    .description(
      'Spectral normalization (W/σ_max, Miyato et al. 2018) of model files: safetensors (single or sharded), TensorFlow.js and ONNX weights.',
    )
    .version(version);

  withSelectionAndBackend(
    withBoundsFlags(
      cli
        .command('report')
        .description('σ of every selected weight tensor, with iterations and time, then totals')
        .argument('<model>', MODEL_ARGUMENT)
        .option('--exact', 'σ by exactSpectralNorm (float64, relative error ≤ 1e-10) instead of power iteration', false),
    ),
  ).action(async (model: string, flags: CommonFlags & BoundsFlags & { exact: boolean }) => {
    const result = await report(model, { ...common(flags), ...boundsOptions(flags), exact: flags.exact }, print);
    if (result.totals.nonFinite > 0) exitCode = 1;
  });

  withSelectionAndBackend(
    cli
      .command('normalize')
      .description('write a copy with each selected tensor replaced by W·target/σ; everything else byte for byte')
      .argument('<model>', MODEL_ARGUMENT)
      .option(
        '-o, --output <path>',
        'the new model file, or a folder for it (created if missing); shards and external data go beside it under their own names',
      )
      .option('--in-place', 'replace the input: each file written to a temporary file, then renamed over it', false)
      .option(
        '--target <σ>',
        'the σ each selected tensor gets',
        number((x) => x > 0 && Number.isFinite(x), 'a positive number'),
        1,
      )
      .option('--clip', 'change only tensors whose σ exceeds the target (W·min(1, target/σ))', false),
  ).action(async (model: string, flags: CommonFlags & { output?: string; inPlace: boolean; target: number; clip: boolean }) => {
    if ((flags.output === undefined) === !flags.inPlace) throw new UsageError('normalize needs exactly one of -o <path> and --in-place');
    await normalize(
      model,
      { ...common(flags), output: flags.output ?? model, inPlace: flags.inPlace, target: flags.target, clip: flags.clip },
      print,
      warn,
    );
  });

  cli
    .command('info')
    .description('the backends and devices this machine has, as backendInfo() reports them')
    .option('--json', 'machine-readable output on stdout', false)
    .action((flags: { json: boolean }) => info(flags.json, print));

  return cli;
}

/** Runs the command line `argv` (arguments only, without node and the script) and returns the exit code. */
export async function main(argv: readonly string[], io: Io = STDIO): Promise<number> {
  exitCode = 0;
  try {
    await program(io).parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    // Commander has already printed its own usage errors (exit code 2); help and --version come here with 0.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    io.err(`spectral-norm: ${firstLine(error)}\n`);
    return error instanceof UsageError ? error.exitCode : 1;
  }
}

/**
 * On SIGINT, SIGTERM or SIGHUP: remove the temporary output files, then die of the same signal, so the shell sees
 * 128 + its number (130, 143, 129) and a script knows the command was interrupted.
 */
function removeTemporaryFilesOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      removeTemporaryFiles();
      process.kill(process.pid, signal);
    });
  }
}

if (require.main === module) {
  removeTemporaryFilesOnSignals();
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
