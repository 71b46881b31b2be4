// Reading by offset through file handles, so a multi-gigabyte model is never loaded into one buffer, and writing
// outputs through a temporary file that is renamed into place only when it is complete.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import { ModelFileError, firstLine } from './errors';

/** Opens a file for reading; a missing or unreadable file is a ModelFileError naming it. */
export async function openForReading(file: string, what = 'cannot open'): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'r');
  } catch (error) {
    throw new ModelFileError(file, `${what}: ${firstLine(error)}`);
  }
}

/** Exactly `length` bytes at `position`; fewer (the file ends first) is a truncated file. */
export async function readExactly(
  handle: fs.FileHandle,
  position: number,
  length: number,
  file: string,
  tensor?: string,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(bytes, done, length - done, position + done);
    if (bytesRead === 0) {
      throw new ModelFileError(file, `truncated: needs bytes ${position}..${position + length} but the file ends at ${position + done}`, tensor);
    }
    done += bytesRead;
  }
  return bytes;
}

export async function writeAll(handle: fs.FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

/** Copies `length` bytes from `position` in chunks, so memory stays bounded whatever the tensor's size. */
export async function copyRange(
  from: fs.FileHandle,
  position: number,
  length: number,
  to: fs.FileHandle,
  file: string,
  tensor?: string,
): Promise<void> {
  const CHUNK = 16 << 20;
  for (let done = 0; done < length; done += CHUNK) {
    await writeAll(to, await readExactly(from, position + done, Math.min(CHUNK, length - done), file, tensor));
  }
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

/**
 * Output files written beside their final paths under temporary names and renamed into place only after every one
 * is complete and flushed, so an error or a crash never leaves a half-written output (or a damaged original, with
 * --in-place). `abort` removes the temporary files.
 */
export class StagedOutput {
  private readonly staged: { final: string; temp: string; handle: fs.FileHandle | null }[] = [];

  async create(final: string): Promise<fs.FileHandle> {
    const temp = path.join(path.dirname(final), `.${path.basename(final)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(temp, 'wx');
    } catch (error) {
      throw new ModelFileError(final, `cannot write: ${firstLine(error)}`);
    }
    this.staged.push({ final, temp, handle });
    return handle;
  }

  /** Flushes and closes every file, then renames each into place, in the order created. */
  async commit(): Promise<void> {
    for (const entry of this.staged) {
      if (entry.handle) {
        await entry.handle.sync();
        await entry.handle.close();
        entry.handle = null;
      }
    }
    for (const entry of this.staged) await fs.rename(entry.temp, entry.final);
    this.staged.length = 0;
  }

  async abort(): Promise<void> {
    for (const entry of this.staged) {
      await entry.handle?.close().catch(() => undefined);
      await fs.rm(entry.temp, { force: true });
    }
    this.staged.length = 0;
  }
}
