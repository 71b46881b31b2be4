// The command's pipeline: results in order whatever order the computations finish in, one computation per device
// at a time, every device used (--device all spreads the tensors); and --device on a machine with one GPU or none
// behaves as without it; on the CUDA emulation with several devices, --device all really spreads them.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { report } from '../../cli/commands/report';
import { computeSlots } from '../../cli/devices';
import type { ModelFile, ModelTensor } from '../../cli/model';
import { TensorPipeline } from '../../cli/pipeline';
import type { Progress } from '../../cli/progress';
import { backendInfo } from '../../lib';
import { reportOptions, temporaryFolder, tensorOf, writeSafetensors } from '../support/cli-fixtures';
import { assertClose, toleranceFor } from '../support/helpers';

const SILENT: Progress = { start() {}, bytes() {}, tick() {}, stop() {} };

function fakeModel(count: number): ModelFile {
  const tensors: ModelTensor[] = Array.from({ length: count }, (_, i) => ({
    name: `t${i}`,
    shape: [2, 2],
    dtype: 'F32',
    numeric: true,
    byteLength: 16,
  }));
  return { tensors, read: async () => new Float32Array(4) } as unknown as ModelFile;
}

describe('CLI: the pipeline over devices', () => {
  it('spreads tensors over every device, one at a time each, and gives results in order', async () => {
    const model = fakeModel(12);
    const running = new Map<number, number>();
    const used = new Set<number>();
    let maxRunning = 0;
    const work = async (s: { tensor: ModelTensor }, _values: unknown, device: number | undefined) => {
      assert.ok(device !== undefined);
      assert.equal(running.get(device) ?? 0, 0, `device ${device} runs one tensor at a time`);
      running.set(device, 1);
      used.add(device);
      maxRunning = Math.max(
        maxRunning,
        [...running.values()].reduce((a, b) => a + b, 0),
      );
      // Uneven durations, so later tensors finish first.
      await new Promise((resolve) => setTimeout(resolve, (12 - Number(s.tensor.name.slice(1))) * 3));
      running.set(device, 0);
      return `${s.tensor.name} on ${device}`;
    };
    const order = model.tensors.map((tensor) => ({ tensor, dim: 0 }));
    const pipeline = new TensorPipeline(model, order, work, [0, 1, 2], SILENT);
    const names: string[] = [];
    for (let i = 0; i < order.length; i++) {
      const { selected, result } = await pipeline.next();
      assert.ok(result.startsWith(`${selected.tensor.name} on `));
      names.push(selected.tensor.name);
    }
    pipeline.close();
    assert.deepEqual(
      names,
      order.map((s) => s.tensor.name),
    );
    assert.deepEqual([...used].sort(), [0, 1, 2]);
    assert.equal(maxRunning, 3, 'three devices busy at once');
  });

  it("--device all on the CUDA emulation's several devices (SN_EMULATION_DEVICES=3) spreads the tensors over all", async function () {
    const cuda = backendInfo().cuda;
    // Only the emulated build (npm run test:cuda-emulated) can pretend to have several devices.
    if (!cuda.available || !/emulation/i.test(cuda.devices[0]?.name ?? '')) this.skip();
    this.timeout(10 * 60 * 1000);
    const folder = temporaryFolder();
    try {
      const tensors = Array.from({ length: 9 }, (_, i) => tensorOf(`w${i}`, 'F32', [24 + i, 40 - i]));
      const file = writeSafetensors(folder, 'm.safetensors', tensors);
      const child = path.resolve(__dirname, '..', 'children', 'emulated-devices.js');
      const r = spawnSync(process.execPath, [child, file], { env: { ...process.env, SN_EMULATION_DEVICES: '3' }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const rows: { name: string; device: number; sigma: number }[] = JSON.parse(r.stdout);
      assert.deepEqual(
        rows.map((row) => row.name),
        tensors.map((t) => t.name),
      );
      assert.deepEqual([...new Set(rows.map((row) => row.device))].sort(), [0, 1, 2]);
      // Each σ as the cpu backend computes it, both iterated to 1e-9 (float32 products: a few ulps apart).
      const cpu = await report(file, reportOptions({ backend: 'cpu', maxIterations: 1000, json: true }), () => undefined);
      for (const [i, row] of rows.entries()) assertClose(row.sigma, cpu.tensors[i].sigma!, toleranceFor('float32'), row.name);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('--device on one GPU or none behaves as without it; it needs the cuda backend', async () => {
    const gpus = backendInfo().cuda.available ? backendInfo().cuda.devices.length : 0;
    if (gpus <= 1) assert.deepEqual(computeSlots('auto', 'all', false), [gpus === 1 ? 0 : undefined]);
    assert.deepEqual(computeSlots('auto', undefined, false), [undefined]);
    assert.throws(() => computeSlots('cpu', 'all', false), /--device applies only to the cuda backend \(or auto\), but --backend is cpu/);
    assert.throws(() => computeSlots('auto', 'all', true), /--exact computes in JavaScript/);
    const folder = temporaryFolder();
    try {
      const file = writeSafetensors(folder, 'm.safetensors', [tensorOf('a', 'F32', [40, 30]), tensorOf('b', 'F32', [20, 50])]);
      const options = reportOptions({ tolerance: 1e-6, maxIterations: 1000 });
      const plain = await report(file, options, () => undefined);
      const all = await report(file, { ...options, device: 'all' }, () => undefined);
      assert.equal(all.backend, plain.backend);
      assert.deepEqual(
        all.tensors.map((t) => [t.name, t.sigma]),
        plain.tensors.map((t) => [t.name, t.sigma]),
      );
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
