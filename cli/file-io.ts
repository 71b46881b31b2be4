// Reading by offset through file handles, in bounded chunks, so a multi-gigabyte model is never loaded into one
// buffer; and writing outputs through temporary files that are renamed into place only when all are complete, and
// removed on an error or a signal.
import { randomBytes } from 'node:crypto';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import type { FloatArray } from '../lib';
import { ModelFileError, firstLine } from './errors';
import type { ReadGate, ReadOptions } from './model';

/** A system error's code and description without the path it names (which may be an internal temporary file). */
export function describeFsError(error: unknown): string {
  const message = firstLine(error);
  const match = /^([A-Z0-9_]+): ([^,]+)/.exec(message);
  return match ? `${match[1]}: ${match[2]}` : message;
}

/** Opens a file for reading; a missing or unreadable file is a ModelFileError naming it. */
export async function openForReading(file: string, what = 'cannot open'): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'r');
  } catch (error) {
    throw new ModelFileError(file, `${what}: ${describeFsError(error)}`);
  }
}

/** Reads exactly `length` bytes at `position` into `into` at `at`; fewer (the file ends first) is a truncated file. */
async function readInto(
  handle: fs.FileHandle,
  into: Uint8Array,
  at: number,
  position: number,
  length: number,
  file: string,
  tensor?: string,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(into, at + done, length - done, position + done);
    if (bytesRead === 0) {
      throw new ModelFileError(
        file,
        `truncated: needs bytes ${position}..${position + length} but the file ends at ${position + done}`,
        tensor,
      );
    }
    done += bytesRead;
  }
}

/** Exactly `length` bytes at `position`, in a fresh (so aligned) buffer. */
export async function readExactly(
  handle: fs.FileHandle,
  position: number,
  length: number,
  file: string,
  tensor?: string,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await readInto(handle, bytes, 0, position, length, file, tensor);
  return bytes;
}

/** A stretch of a file holding (part of) a tensor's stored bytes. */
export interface ByteRange {
  handle: fs.FileHandle;
  file: string;
  position: number;
  length: number;
}

/** How a tensor's stored elements become the values the library computes on. */
export interface ElementCodec {
  /** Bytes per stored element. */
  bytes: number;
  /** The values' type: float64 only for float64 storage. */
  wide: 'float32' | 'float64';
  /** Decodes whole elements from `src` into `dst` from element `at` on; null when the stored bytes are the values. */
  decode: ((src: Uint8Array, dst: FloatArray, at: number) => void) | null;
}

/** Bytes read per chunk: large enough for full read bandwidth, small enough to bound the read-ahead finely. */
export const CHUNK_BYTES = 8 << 20;

/**
 * The decode scratch of the last readValues, kept for the next: fresh memory costs a page fault per 4 KiB page on
 * first touch, which on some virtual machines (this project's: 20-40 µs a page) costs more than reading the chunk.
 * Null while a readValues holds it, so concurrent reads never share it.
 */
let spareScratch: Uint8Array | null = null;

function takeScratch(bytes: number): Uint8Array {
  const spare = spareScratch;
  if (spare !== null && spare.byteLength >= bytes) {
    spareScratch = null;
    return spare.subarray(0, bytes);
  }
  return new Uint8Array(bytes);
}

function giveBackScratch(scratch: Uint8Array): void {
  if (spareScratch === null || spareScratch.buffer.byteLength < scratch.buffer.byteLength) {
    spareScratch = new Uint8Array(scratch.buffer);
  }
}

/** A stretch of at most CHUNK_BYTES of a ByteRange: what one read call reads. */
interface Piece {
  range: ByteRange;
  position: number;
  length: number;
}

function piecesOf(ranges: readonly ByteRange[]): Piece[] {
  const pieces: Piece[] = [];
  for (const range of ranges) {
    for (let done = 0; done < range.length; done += CHUNK_BYTES) {
      pieces.push({ range, position: range.position + done, length: Math.min(CHUNK_BYTES, range.length - done) });
    }
  }
  return pieces;
}

/**
 * Reads the pieces in order into `into(k)`, awaiting `gate` before each. (Keeping piece k + 1's read in flight while
 * piece k decodes raised normalize's peak memory by ~100 MiB in test/cli/read-ahead.test.ts, over its bound.)
 */
async function* readPieces(
  pieces: readonly Piece[],
  into: (k: number) => Uint8Array,
  tensor: string,
  gate?: ReadGate,
): AsyncGenerator<Uint8Array> {
  const read = async (k: number) => {
    const { range, position, length } = pieces[k];
    await gate?.(length);
    const target = into(k);
    await readInto(range.handle, target, 0, position, length, range.file, tensor);
    return target;
  };
  for (let k = 0; k < pieces.length; k++) yield await read(k);
}

/**
 * Reads `count` elements stored across `ranges` (in order) and decodes them, one chunk at a time, awaiting
 * `options.gate` before each chunk, into an array from `options.allocate` (or a new one). Elements may straddle
 * ranges (tfjs shards split anywhere). Memory: the values, plus one chunk.
 */
export async function readValues(
  ranges: readonly ByteRange[],
  count: number,
  codec: ElementCodec,
  tensor: string,
  options: ReadOptions = {},
): Promise<FloatArray> {
  const total = count * codec.bytes;
  const stored = ranges.reduce((sum, r) => sum + r.length, 0);
  if (stored !== total) throw new Error(`internal: ${tensor} has ${stored} stored bytes for ${count} elements of ${codec.bytes} bytes`);
  const values = options.allocate
    ? await options.allocate(count, codec.wide)
    : codec.wide === 'float64'
      ? new Float64Array(count)
      : new Float32Array(count);
  const pieces = piecesOf(ranges);
  if (codec.decode === null) {
    // The stored bytes are the values: read straight into them.
    const target = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    const starts: number[] = [];
    pieces.reduce((at, p) => (starts.push(at), at + p.length), 0);
    const reads = readPieces(pieces, (k) => target.subarray(starts[k], starts[k] + pieces[k].length), tensor, options.gate);
    while (!(await reads.next()).done) {
      // Each piece lands in place.
    }
    return values;
  }
  const scratch = takeScratch(Math.min(CHUNK_BYTES, total));
  // The first bytes of an element that straddles two pieces.
  const carry = new Uint8Array(codec.bytes);
  let carried = 0;
  let element = 0;
  for await (const bytes of readPieces(pieces, (k) => scratch.subarray(0, pieces[k].length), tensor, options.gate)) {
    let from = 0;
    if (carried > 0) {
      from = Math.min(codec.bytes - carried, bytes.length);
      carry.set(bytes.subarray(0, from), carried);
      carried += from;
      if (carried < codec.bytes) continue;
      codec.decode(carry, values, element++);
    }
    const whole = Math.floor((bytes.length - from) / codec.bytes);
    if (whole > 0) codec.decode(bytes.subarray(from, from + whole * codec.bytes), values, element);
    element += whole;
    carried = bytes.length - from - whole * codec.bytes;
    carry.set(bytes.subarray(bytes.length - carried), 0);
  }
  // Kept for the next read only on success; after an error the garbage collector has it.
  giveBackScratch(scratch);
  return values;
}

/** True when both paths name the same existing file (also through links). */
export async function sameFile(a: string, b: string): Promise<boolean> {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    const [sa, sb] = await Promise.all([fs.stat(a), fs.stat(b)]);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** Every temporary file (and created folder) of every StagedOutput not yet committed or aborted, for a signal. */
const liveTemporaries = new Set<string>();
const liveFolders = new Set<string>();

/**
 * Removes the temporary files now, synchronously, and the folders created for them if they are left empty: the
 * last thing a process does when a signal ends it.
 */
export function removeTemporaryFiles(): void {
  for (const temp of liveTemporaries) fsSync.rmSync(temp, { force: true });
  liveTemporaries.clear();
  for (const top of [...liveFolders].reverse()) removeEmptyFolders(top);
  liveFolders.clear();
}

/** One output file being written, under a temporary name; its errors name the final path, never the temporary. */
export class OutputFile {
  private closed = false;

  constructor(
    readonly final: string,
    private readonly handle: fs.FileHandle,
  ) {}

  private failed(error: unknown): never {
    throw new ModelFileError(this.final, `cannot write: ${describeFsError(error)}`);
  }

  async write(bytes: Uint8Array): Promise<void> {
    try {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done);
        done += bytesWritten;
      }
    } catch (error) {
      this.failed(error);
    }
  }

  /** Writes `bytes` at `position` (for patching a copy). */
  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    try {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, position + done);
        done += bytesWritten;
      }
    } catch (error) {
      this.failed(error);
    }
  }

  /** Copies `length` bytes at `position` of another file, in chunks, so memory stays bounded. */
  async copyFrom(from: fs.FileHandle, position: number, length: number, file: string, tensor?: string): Promise<void> {
    const buffer = new Uint8Array(Math.min(CHUNK_BYTES, length));
    for (let done = 0; done < length;) {
      const take = Math.min(buffer.length, length - done);
      await readInto(from, buffer, 0, position + done, take, file, tensor);
      await this.write(take === buffer.length ? buffer : buffer.subarray(0, take));
      done += take;
    }
  }

  /** Flushes and closes (once; later calls do nothing). */
  async finish(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.handle.sync();
      await this.handle.close();
    } catch (error) {
      this.failed(error);
    }
  }

  async discard(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
  }
}

/**
 * Output files written beside their final paths under temporary names and renamed into place only after every one
 * is complete and flushed, so an error, a crash or a signal never leaves a half-written output (or a damaged
 * original, with --in-place). Missing folders are created, and removed again if nothing is committed. `abort`
 * removes the temporary files; the CLI's signal handlers do the same through removeTemporaryFiles().
 */
export class StagedOutput {
  private readonly staged: { file: OutputFile; temp: string }[] = [];
  private readonly createdFolders: string[] = [];

  /**
   * Runs `write` on a new StagedOutput, then commits it (in the order of the final paths `write` returns, if any), or
   * aborts it and rethrows when anything failed: the one way every format writer stages its files.
   */
  static async run(write: (staged: StagedOutput) => Promise<readonly string[] | void>): Promise<void> {
    const staged = new StagedOutput();
    try {
      const order = await write(staged);
      await staged.commit(order ?? undefined);
    } catch (error) {
      await staged.abort();
      throw error;
    }
  }

  private async prepare(final: string): Promise<string> {
    const folder = path.dirname(final);
    try {
      const created = await fs.mkdir(folder, { recursive: true });
      if (created !== undefined) {
        this.createdFolders.push(created);
        liveFolders.add(created);
      }
    } catch (error) {
      throw new ModelFileError(final, `cannot create its folder: ${describeFsError(error)}`);
    }
    return path.join(folder, `.${path.basename(final)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  }

  /** A new, empty output file. */
  async create(final: string): Promise<OutputFile> {
    const temp = await this.prepare(final);
    let handle: fs.FileHandle;
    try {
      liveTemporaries.add(temp);
      handle = await fs.open(temp, 'wx');
    } catch (error) {
      liveTemporaries.delete(temp);
      throw new ModelFileError(final, `cannot write: ${describeFsError(error)}`);
    }
    const file = new OutputFile(final, handle);
    this.staged.push({ file, temp });
    return file;
  }

  /** An output file that starts as a copy of `source` (the kernel copies it, without passing through memory). */
  async copy(final: string, source: string): Promise<OutputFile> {
    const temp = await this.prepare(final);
    let handle: fs.FileHandle;
    try {
      liveTemporaries.add(temp);
      await fs.copyFile(source, temp, fsSync.constants.COPYFILE_EXCL);
      handle = await fs.open(temp, 'r+');
    } catch (error) {
      await fs.rm(temp, { force: true });
      liveTemporaries.delete(temp);
      throw new ModelFileError(final, `cannot write a copy of ${source}: ${describeFsError(error)}`);
    }
    const file = new OutputFile(final, handle);
    this.staged.push({ file, temp });
    return file;
  }

  /** Flushes and closes every file, then renames each into place, in the order created or in `order` (final paths). */
  async commit(order?: readonly string[]): Promise<void> {
    for (const entry of this.staged) await entry.file.finish();
    const rank = (final: string) => (order === undefined ? 0 : order.indexOf(final));
    const sequence = order === undefined ? this.staged : [...this.staged].sort((a, b) => rank(a.file.final) - rank(b.file.final));
    for (const entry of sequence) {
      try {
        await fs.rename(entry.temp, entry.file.final);
      } catch (error) {
        throw new ModelFileError(entry.file.final, `cannot move into place: ${describeFsError(error)}`);
      }
      liveTemporaries.delete(entry.temp);
    }
    this.staged.length = 0;
    for (const folder of this.createdFolders) liveFolders.delete(folder);
    this.createdFolders.length = 0;
  }

  async abort(): Promise<void> {
    for (const entry of this.staged) {
      await entry.file.discard();
      await fs.rm(entry.temp, { force: true });
      liveTemporaries.delete(entry.temp);
    }
    this.staged.length = 0;
    // Folders this output created, deepest first, only if still empty.
    for (const folder of this.createdFolders.reverse()) {
      removeEmptyFolders(folder);
      liveFolders.delete(folder);
    }
    this.createdFolders.length = 0;
  }
}

/** Removes `top` and the folders under it if they hold nothing else (folders that mkdir -p created for outputs). */
function removeEmptyFolders(top: string): boolean {
  let entries: fsSync.Dirent[];
  try {
    entries = fsSync.readdirSync(top, { withFileTypes: true });
  } catch {
    return false;
  }
  let empty = true;
  for (const e of entries) empty = e.isDirectory() && removeEmptyFolders(path.join(top, e.name)) && empty;
  if (!empty) return false;
  try {
    fsSync.rmdirSync(top);
    return true;
  } catch {
    return false;
  }
}
