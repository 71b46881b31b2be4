// readValues, the one place every format's tensors are read and decoded: chunk by chunk, elements split across ranges
// at any byte (tfjs shards), tensors of many chunks, the gate before each chunk, and a truncated file as an error.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

import { ModelFileError } from '../../cli/errors';
import { CHUNK_BYTES, type ByteRange, readValues } from '../../cli/file-io';
import { CODECS } from '../../cli/formats/codecs';
import { decodeFloat16 } from '../../cli/formats/half';
import { random } from '../support/helpers';
import { temporaryFolder } from '../support/cli-fixtures';

describe('CLI: readValues', () => {
  let folder: string;
  before(() => {
    folder = temporaryFolder();
  });
  after(() => fs.rmSync(folder, { recursive: true, force: true }));

  /** A file of `bytes`, and ranges over it that cut it at `cuts` (byte offsets), each range placed after a gap. */
  async function scattered(bytes: Uint8Array, cuts: number[]) {
    const file = path.join(folder, `scattered-${cuts.join('-')}.bin`);
    const bounds = [0, ...cuts, bytes.length];
    const parts: Buffer[] = [];
    const ranges: Omit<ByteRange, 'handle'>[] = [];
    let position = 0;
    for (let i = 0; i + 1 < bounds.length; i++) {
      const gap = Buffer.alloc(3 + i, 0xee);
      parts.push(gap, Buffer.from(bytes.subarray(bounds[i], bounds[i + 1])));
      position += gap.length;
      ranges.push({ file, position, length: bounds[i + 1] - bounds[i] });
      position += bounds[i + 1] - bounds[i];
    }
    fs.writeFileSync(file, Buffer.concat(parts));
    const handle = await fsp.open(file, 'r');
    return { handle, ranges: ranges.map((r) => ({ ...r, handle })) };
  }

  it('float16 split across ranges mid-element, over several chunks, decodes as one run', async () => {
    const count = Math.floor((2.5 * CHUNK_BYTES) / 2) + 7;
    // Random bit patterns, every kind of value (NaN payloads too: the same decoder decodes the reference).
    const stored = new Uint8Array(2 * count);
    const words = new Uint16Array(stored.buffer);
    for (let i = 0; i < count; i++) words[i] = Math.floor(random() * 65536);
    // Cuts at odd bytes (inside an element), one at a chunk boundary, one just after it.
    const { handle, ranges } = await scattered(stored, [1, 4097, CHUNK_BYTES, CHUNK_BYTES + 3, 2 * CHUNK_BYTES + 1]);
    try {
      const gated: number[] = [];
      const got = await readValues(ranges, count, CODECS.float16, 'w', { gate: async (n) => void gated.push(n) });
      assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(decodeFloat16(stored).buffer));
      assert.equal(
        gated.reduce((a, b) => a + b, 0),
        stored.length,
      );
      assert.ok(Math.max(...gated) <= CHUNK_BYTES);
    } finally {
      await handle.close();
    }
  });

  it('float32 over several chunks, read in place into the array allocate() gives', async () => {
    const count = Math.floor((2.25 * CHUNK_BYTES) / 4) + 3;
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = random();
    const { handle, ranges } = await scattered(new Uint8Array(values.buffer), [CHUNK_BYTES + 4]);
    try {
      const buffer = new ArrayBuffer(4 * count + 64);
      const got = await readValues(ranges, count, CODECS.float32, 'w', { allocate: async (n) => new Float32Array(buffer, 0, n) });
      assert.equal(got.buffer, buffer);
      assert.deepEqual(got, values);
    } finally {
      await handle.close();
    }
  });

  it('a file that ends early is a ModelFileError naming it and the tensor', async () => {
    const file = path.join(folder, 'short.bin');
    fs.writeFileSync(file, Buffer.alloc(CHUNK_BYTES + 10));
    const handle = await fsp.open(file, 'r');
    try {
      const ranges = [{ handle, file, position: 0, length: 2 * CHUNK_BYTES }];
      await assert.rejects(
        () => readValues(ranges, CHUNK_BYTES, CODECS.float16, 'w'),
        (e: unknown) => e instanceof ModelFileError && /short\.bin/.test(e.message) && /truncated/.test(e.message) && /w/.test(e.message),
      );
    } finally {
      await handle.close();
    }
  });
});
