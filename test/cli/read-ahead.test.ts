// Reading overlaps computing, within bounds: the read-ahead reads tensor i+1 (and i+2) while tensor i is computed,
// never more than 2 tensors or 256 MiB ahead; and a whole command on a sparse multi-GB file stays within 2× the
// largest tensor plus the read-ahead, measured as the peak resident memory of a child process.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { CHUNK_BYTES } from '../../cli/file-io';
import { encodeSafetensorsHeader } from '../../cli/formats/safetensors';
import type { ModelFile, ModelTensor, ReadOptions } from '../../cli/model';
import { READ_AHEAD_BYTES, ReadAhead } from '../../cli/read-ahead';
import { temporaryFolder } from '../support/cli-fixtures';

/** Float32 tensors t0, t1, … of these byte sizes. */
function float32Tensors(sizes: number[]): ModelTensor[] {
  return sizes.map((bytes, i) => ({ name: `t${i}`, shape: [bytes / 4], dtype: 'F32', numeric: true, byteLength: bytes }));
}

/** A model whose reads are chunks of 1 MiB through the gate, logged, with no file behind them. */
function fakeModel(sizes: number[]) {
  const log: string[] = [];
  const tensors = float32Tensors(sizes);
  const model = {
    tensors,
    read: async (t: ModelTensor, options?: ReadOptions) => {
      for (let done = 0; done < t.byteLength; done += 2 ** 20) {
        await options?.gate?.(Math.min(2 ** 20, t.byteLength - done));
        log.push(`${t.name}+`);
      }
      log.push(`${t.name} read`);
      return new Float32Array(0);
    },
  } as unknown as ModelFile;
  return { model, tensors, log };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const MiB = 2 ** 20;

describe('CLI: read-ahead', () => {
  it('reads up to 2 tensors beyond the one being computed, and no more', async () => {
    const { model, tensors, log } = fakeModel([MiB, MiB, MiB, MiB, MiB]);
    const ahead = new ReadAhead(model, tensors);
    await ahead.next();
    for (let i = 0; i < 20; i++) await settle();
    // While t0 is "computed", t1 and t2 are read; t3 waits.
    assert.deepEqual(
      log.filter((l) => l.endsWith('read')),
      ['t0 read', 't1 read', 't2 read'],
    );
    await ahead.next();
    for (let i = 0; i < 20; i++) await settle();
    assert.deepEqual(
      log.filter((l) => l.endsWith('read')),
      ['t0 read', 't1 read', 't2 read', 't3 read'],
    );
    ahead.close();
  });

  it('holds at most 256 MiB read ahead, reading part of a larger tensor, and never holds back the current one', async () => {
    // 300 MiB tensors: the next one is read ahead in part, up to the budget.
    const { model, tensors, log } = fakeModel([300 * MiB, 300 * MiB, 300 * MiB]);
    const ahead = new ReadAhead(model, tensors);
    await ahead.next();
    for (let i = 0; i < 2000; i++) await settle();
    const chunksOf = (name: string) => log.filter((l) => l === `${name}+`).length;
    assert.equal(chunksOf('t0'), 300, 'the tensor being computed is read whole');
    assert.equal(chunksOf('t1'), READ_AHEAD_BYTES / MiB, 'the next one up to the budget');
    assert.equal(chunksOf('t2'), 0);
    // Taking t1 releases its bytes from the budget: it finishes, and t2 is read ahead up to the budget.
    await ahead.next();
    for (let i = 0; i < 2000; i++) await settle();
    assert.equal(chunksOf('t1'), 300);
    assert.equal(chunksOf('t2'), READ_AHEAD_BYTES / MiB);
    ahead.close();
  });

  it('a read error reaches the consumer when it asks for that tensor, not before', async () => {
    const { model, tensors } = fakeModel([MiB, MiB, MiB]);
    const read = model.read;
    model.read = async (t, options) => {
      if (t.name === 't1') throw new Error('disk on fire');
      return read(t, options);
    };
    const ahead = new ReadAhead(model, tensors);
    await ahead.next();
    await assert.rejects(() => ahead.next(), /disk on fire/);
    ahead.close();
  });
});

/** A model whose reads take their arrays from `allocate`, as readValues does, and write every element. */
function allocatingModel(sizes: number[]) {
  const tensors = float32Tensors(sizes);
  const model = {
    tensors,
    read: async (t: ModelTensor, options?: ReadOptions) => {
      await options?.gate?.(t.byteLength);
      const values = options?.allocate ? await options.allocate(t.byteLength / 4, 'float32') : new Float32Array(t.byteLength / 4);
      values.fill(Number(t.name.slice(1)));
      return values;
    },
  } as unknown as ModelFile;
  return { model, tensors };
}

describe('CLI: read-ahead recycling (report)', () => {
  it("gives later large tensors the buffers of tensors already computed, each of the largest tensor's size", async () => {
    // A transformer layer's proportions (64 and 172 MiB of values against a 256 MiB budget), scaled down by 8, and a
    // small tensor that gets its own array.
    const [small, medium, large] = [MiB / 8, 8 * MiB, 21.5 * MiB];
    const sizes = [medium, medium, large, large, small, medium, large, medium, medium, large];
    const { model, tensors } = allocatingModel(sizes);
    const ahead = new ReadAhead(model, tensors, { recycling: true, maxBytes: 32 * MiB });
    const buffers: ArrayBuffer[] = [];
    for (let i = 0; i < sizes.length; i++) {
      const { values } = await ahead.next();
      assert.equal(values.length, sizes[i] / 4);
      assert.ok(
        values.every((x) => x === i),
        `t${i} holds its own values, whatever the buffer held before`,
      );
      assert.equal(values.buffer.byteLength, sizes[i] === small ? small : large);
      buffers.push(values.buffer as ArrayBuffer);
      for (let k = 0; k < 20; k++) await settle();
      ahead.recycle(values);
    }
    ahead.close();
    const shared = buffers.filter((b) => b.byteLength === large);
    // Once the pipeline is full, no new buffer: 9 large tensors share at most 3 (the one computed, one ahead, one spare).
    assert.ok(new Set(shared).size <= 3, `${new Set(shared).size} distinct buffers for ${shared.length} large tensors`);
  });

  it('without recycling, every tensor gets a new array of its own size', async () => {
    const { model, tensors } = allocatingModel([4 * MiB, 4 * MiB, 16 * MiB, 4 * MiB]);
    const ahead = new ReadAhead(model, tensors);
    const buffers = new Set<ArrayBufferLike>();
    for (let i = 0; i < tensors.length; i++) {
      const { values } = await ahead.next();
      assert.equal(values.buffer.byteLength, tensors[i].byteLength);
      buffers.add(values.buffer);
      ahead.recycle(values);
    }
    assert.equal(buffers.size, tensors.length);
    ahead.close();
  });
});

/** A safetensors file of `tensors` (all zeros but their first element, 1), sparse on disk. */
function sparseSafetensors(file: string, tensors: { dtype: 'F32' | 'F16'; shape: [number, number] }[]): number[] {
  const header: Record<string, unknown> = {};
  let offset = 0;
  const starts: number[] = [];
  tensors.forEach((t, i) => {
    const bytes = t.shape[0] * t.shape[1] * (t.dtype === 'F32' ? 4 : 2);
    header[`w${i}`] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    starts.push(offset);
    offset += bytes;
  });
  const head = encodeSafetensorsHeader(header);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, head);
    const dataStart = head.length;
    fs.ftruncateSync(fd, dataStart + offset);
    tensors.forEach((t, i) =>
      fs.writeSync(
        fd,
        t.dtype === 'F32' ? Buffer.from(Float32Array.of(1).buffer) : Buffer.from([0x00, 0x3c]),
        0,
        t.dtype === 'F32' ? 4 : 2,
        dataStart + starts[i],
      ),
    );
  } finally {
    fs.closeSync(fd);
  }
  return tensors.map((t) => t.shape[0] * t.shape[1] * 4);
}

const CHILD = path.resolve(__dirname, '..', 'children', 'bounded-memory.js');

function peakOf(...args: string[]): { before: number; peak: number; tensors: number } {
  const r = spawnSync(process.execPath, [CHILD, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('CLI: bounded memory on a sparse multi-GB file', function () {
  this.timeout(20 * 60 * 1000);
  let folder: string;
  before(() => {
    folder = temporaryFolder();
  });
  after(() => fs.rmSync(folder, { recursive: true, force: true }));

  // Slack beyond the bound: the decode scratch chunk and the chunk being copied, the σ library's own vectors.
  const SLACK = 2 * CHUNK_BYTES + 32 * MiB;
  const show = (what: string, m: { before: number; peak: number }, bound: number, total: number) =>
    console.log(
      `      ${what}: peak ${((m.peak - m.before) / MiB).toFixed(0)} MiB above the start, bound ${(bound / MiB).toFixed(0)} MiB, all values ${(total / MiB).toFixed(0)} MiB`,
    );

  it('report on a 2.75 GiB file: peak memory ≤ 2× the largest tensor + the read-ahead', () => {
    const file = path.join(folder, 'sparse.safetensors');
    const values = sparseSafetensors(file, [
      ...Array.from({ length: 5 }, () => ({ dtype: 'F32' as const, shape: [8192, 16384] as [number, number] })),
      { dtype: 'F16', shape: [8192, 8192] },
      { dtype: 'F16', shape: [8192, 8192] },
    ]);
    assert.ok(fs.statSync(file).size > 2.7 * 2 ** 30);
    const m = peakOf('report', file);
    assert.equal(m.tensors, 7);
    const bound = 2 * Math.max(...values) + READ_AHEAD_BYTES;
    const total = values.reduce((a, b) => a + b, 0);
    show('report', m, bound, total);
    assert.ok(m.peak - m.before <= bound + SLACK, `peak ${m.peak - m.before} bytes over a bound of ${bound} + ${SLACK}`);
  });

  it('normalize on a 0.6 GiB file: peak memory ≤ 2× the largest tensor + the read-ahead (values and W/σ of 1.5 GiB)', () => {
    const file = path.join(folder, 'sparse-n.safetensors');
    const values = sparseSafetensors(file, [
      { dtype: 'F32', shape: [8192, 8192] },
      { dtype: 'F16', shape: [8192, 8192] },
      { dtype: 'F32', shape: [8192, 8192] },
    ]);
    const m = peakOf('normalize', file, path.join(folder, 'out.safetensors'));
    fs.rmSync(path.join(folder, 'out.safetensors'), { force: true });
    const bound = 2 * Math.max(...values) + READ_AHEAD_BYTES;
    show(
      'normalize',
      m,
      bound,
      values.reduce((a, b) => a + b, 0),
    );
    assert.ok(m.peak - m.before <= bound + SLACK, `peak ${m.peak - m.before} bytes over a bound of ${bound} + ${SLACK}`);
  });
});
