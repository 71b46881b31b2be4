// Backend 'auto': the cost model's decisions with injected constants (no GPU needed), its constants from the
// environment, the cache file and measuring, and the same rule in every API.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { SpectralNormBatch, SpectralNormCoalescer, SpectralNormalizer, autoBackend, backendInfo, spectralNorm } from '../../lib';
import { checkBackendOption, defaultThreads, nativeAddon, nativeCalibrationTarget, resolveBackend } from '../../lib/backends';
import {
  cacheDirectory,
  costModelInfo,
  hostConstants,
  measureCudaConstants,
  measureHostConstants,
  measureStreamBandwidth,
  parseEnvConstants,
  resetCalibration,
  streamProbeBytes,
} from '../../lib/cost-calibration';
import {
  type CostedJob,
  type CudaCostConstants,
  type HostCostConstants,
  HOST_CONSTANT_NAMES,
  cheapestBackend,
  predictCpu,
  predictCuda,
} from '../../lib/cost-model';
import { convergeJob } from '../../lib/oneshot';
import { matrixGeometry } from '../../lib/layout';
import { autoTableJob, autoTableWorkloads } from '../../bench/auto-table';
import { randomArray } from '../support/helpers';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const MiB = 2 ** 20;

// Machines to decide for. This class of development VM (2 AVX-512 vCPUs), as measured on it (2026-11-28):
const DEV_VM: HostCostConstants = {
  cpuCallSeconds: 3e-6,
  cpuLayerSeconds: 1e-6,
  cpuWakeSeconds: 30e-6,
  cpuSweepElementsPerSecond: 9e9,
  cpuSweepFloat64ElementsPerSecond: 9e9,
  cpuDivideElementsPerSecond: 1e10,
  cpuCacheBytes: 32 * MiB,
  jsCallSeconds: 0.7e-6,
  jsLayerSeconds: 0.3e-6,
  jsSweepElementsPerSecond: 0.4e9,
  jsDivideElementsPerSecond: 0.9e9,
};
// The H200 host's 16-core Xeon (../shared/gpu-evidence: 89 GB/s read on 16 threads, 0.75 G elements/s per core
// in a float64 sweep), and its GPU as issue 12 found it: host arrays moved at about 7 GB/s, 85 µs for an 8×8 step.
const XEON_16: HostCostConstants = {
  ...DEV_VM,
  cpuSweepElementsPerSecond: 0.75e9,
  cpuSweepFloat64ElementsPerSecond: 0.75e9,
  cpuDivideElementsPerSecond: 3e9,
  cpuStreamBytesPerSecond: 89e9,
};
const H200_TODAY: CudaCostConstants = {
  cudaHostToDeviceBytesPerSecond: 50e9,
  cudaDeviceToHostBytesPerSecond: 50e9,
  cudaLaunchSeconds: 5e-6,
  cudaDeviceBytesPerSecond: 4.27e12,
  cudaCallSeconds: 85e-6,
  cudaLayerSeconds: 50e-6,
  cudaHostArrayBytesPerSecond: 7e9,
};
// The same GPU once host arrays move at 90% of pinned speed in overlapped chunks (issue 12's goal 2).
const H200_PINNED: CudaCostConstants = { ...H200_TODAY, cudaCallSeconds: 20e-6, cudaLayerSeconds: 2e-6, cudaHostArrayBytesPerSecond: 45e9 };

function step(shapes: number[][], iterations = 1, extra: Partial<CostedJob> = {}): CostedJob {
  return {
    layers: shapes.map((s) => ({ elements: s.reduce((a, b) => a * b, 1), vectorNorm: s.length === 1, divide: true })),
    dtype: 'float32',
    precision: 'mixed',
    iterations,
    converge: false,
    legacy: false,
    threads: 16,
    onDevice: false,
    ...extra,
  };
}

const ALL = ['cpu', 'js', 'cuda'] as const;

describe("'auto': the cost model's decisions, with injected constants", () => {
  it('a tiny job goes to js, and a larger one or more iterations to cpu', () => {
    const vm = (job: CostedJob) => cheapestBackend({ ...job, threads: 2 }, DEV_VM, ['cpu', 'js']);
    assert.equal(vm(step([[8, 8]])), 'js');
    assert.equal(vm(step([[16, 16]])), 'js');
    assert.equal(vm(step([[64, 64]])), 'cpu');
    assert.equal(vm(step([[16, 16]], 20)), 'cpu', 'the native call pays its fixed cost once, js its rate per iteration');
    assert.equal(vm(step([[512, 4608]])), 'cpu');
    assert.equal(vm(step(Array.from({ length: 64 }, () => [64, 64]))), 'cpu');
  });

  it('host arrays on a fast CPU go to cpu: every row of issue 12 with the H200 host as measured', () => {
    for (const workload of autoTableWorkloads()) {
      const picked = cheapestBackend(autoTableJob(workload, 16), { ...XEON_16, ...H200_TODAY }, ALL);
      assert.notEqual(picked, 'cuda', workload.name);
      if (workload.name !== 'one 8×8') assert.equal(picked, 'cpu', workload.name);
    }
  });

  it('device handles go to cuda', () => {
    const onDevice = step([[8, 8]], 1, { onDevice: true });
    assert.equal(cheapestBackend(onDevice, { ...XEON_16, ...H200_TODAY }, ALL), 'cuda');
    assert.equal(cheapestBackend(onDevice, DEV_VM, ALL), 'cuda', 'without costing the device');
    assert.throws(() => cheapestBackend(onDevice, DEV_VM, ['cpu', 'js']), /DeviceWeights needs the cuda backend/);
  });

  it('a large k on a huge layer goes to cuda when transfer plus kernel beats the CPU, and not before', () => {
    const host = (k: number) => step([[8192, 8192]], k);
    const pinned = { ...XEON_16, ...H200_PINNED };
    const today = { ...XEON_16, ...H200_TODAY };
    assert.equal(cheapestBackend(host(1), pinned, ALL), 'cpu', 'one sweep: the transfers cost more than the CPU');
    assert.equal(cheapestBackend(host(5), pinned, ALL), 'cuda');
    assert.equal(cheapestBackend(host(5), today, ALL), 'cpu', 'at 7 GB/s five sweeps do not pay for the transfers');
    assert.equal(cheapestBackend(host(50), today, ALL), 'cuda');
    // The break-even is where the prediction says: transfers + kernels against the CPU's sweeps.
    for (const k of [1, 2, 3, 5, 8, 13, 50]) {
      const expected = predictCuda(host(k), H200_PINNED) < predictCpu(host(k), XEON_16) ? 'cuda' : 'cpu';
      assert.equal(cheapestBackend(host(k), pinned, ALL), expected, `k=${k}`);
    }
  });

  it('an unavailable cuda is never chosen, nor one that could not be costed', () => {
    const huge = step([[8192, 8192]], 1000);
    assert.equal(cheapestBackend(huge, { ...XEON_16, ...H200_PINNED }, ALL), 'cuda');
    assert.equal(cheapestBackend(huge, { ...XEON_16, ...H200_PINNED }, ['cpu', 'js']), 'cpu');
    assert.equal(cheapestBackend(huge, XEON_16, ALL), 'cpu', 'no constants for the device');
    assert.equal(cheapestBackend(step([[512, 512]]), DEV_VM, ['js']), 'js');
  });

  it('a converge-mode job is costed at its maxIterations, and precision and dtype change the CPU rate', () => {
    const fixed = step([[512, 4608]], 300);
    const converge = { ...fixed, converge: true };
    assert.equal(predictCpu(converge, XEON_16), predictCpu(fixed, XEON_16));
    assert.equal(predictCuda(converge, H200_PINNED), predictCuda(fixed, H200_PINNED));
    const slow64 = { ...DEV_VM, cpuSweepFloat64ElementsPerSecond: 1e9 };
    assert.ok(predictCpu({ ...fixed, precision: 'float64' }, slow64) > predictCpu(fixed, slow64));
    assert.ok(predictCpu({ ...fixed, dtype: 'float64' }, slow64) > predictCpu(fixed, slow64));
    // The legacy order's extra pass, and one pass for a 1-D weight whatever the iterations.
    assert.ok(predictCpu({ ...fixed, legacy: true }, DEV_VM) > predictCpu(fixed, DEV_VM));
    assert.equal(predictCpu(step([[4096]], 1), DEV_VM), predictCpu(step([[4096]], 9), DEV_VM));
  });

  it('a job that does not fit in cache is costed at the memory bandwidth, once the model has it', () => {
    const big = step([[8192, 8192]], 5);
    const inCacheOnly = predictCpu(big, { ...XEON_16, cpuStreamBytesPerSecond: undefined });
    const fromMemory = predictCpu(big, XEON_16);
    const slowMemory = predictCpu(big, { ...XEON_16, cpuStreamBytesPerSecond: 10e9 });
    assert.ok(inCacheOnly <= fromMemory && fromMemory < slowMemory, `${inCacheOnly} ${fromMemory} ${slowMemory}`);
    // 5 sweeps and a division of 256 MiB at 10 GB/s: at least 7·|W| / bandwidth.
    assert.ok(slowMemory >= (7 * 8192 * 8192 * 4) / 10e9);
  });
});

describe("'auto': its constants", () => {
  it('SPECTRAL_NORM_COST_MODEL: any of the constants, each positive and finite; clear errors otherwise', () => {
    assert.deepEqual(parseEnvConstants(undefined), {});
    assert.deepEqual(parseEnvConstants(' '), {});
    assert.deepEqual(parseEnvConstants('{"cpuCallSeconds":3e-6,"cudaHostArrayBytesPerSecond":4e10}'), {
      cpuCallSeconds: 3e-6,
      cudaHostArrayBytesPerSecond: 4e10,
    });
    const bad: [string, RegExp][] = [
      ['{cpuCallSeconds: 1}', /^TypeError: SPECTRAL_NORM_COST_MODEL must be a JSON object of constants .*JSON/],
      ['[1, 2]', /^TypeError: SPECTRAL_NORM_COST_MODEL must be a JSON object of constants, got an array/],
      ['42', /^TypeError: SPECTRAL_NORM_COST_MODEL must be a JSON object of constants, got 42/],
      [
        '{"cpuCallSecond": 1e-6}',
        /^RangeError: SPECTRAL_NORM_COST_MODEL has an unknown constant 'cpuCallSecond' \(known: cpuCallSeconds, /,
      ],
      ['{"cpuCallSeconds": -1}', /^RangeError: SPECTRAL_NORM_COST_MODEL.cpuCallSeconds must be a positive finite number, got -1$/],
      ['{"cpuCallSeconds": 0}', /^RangeError: SPECTRAL_NORM_COST_MODEL.cpuCallSeconds must be a positive finite number, got 0$/],
      [
        '{"jsSweepElementsPerSecond": "fast"}',
        /^RangeError: SPECTRAL_NORM_COST_MODEL.jsSweepElementsPerSecond must be a positive finite number, got "fast"$/,
      ],
      ['{"cpuCacheBytes": null}', /^RangeError: SPECTRAL_NORM_COST_MODEL.cpuCacheBytes must be a positive finite number, got null$/],
    ];
    for (const [text, message] of bad)
      assert.throws(
        () => parseEnvConstants(text),
        (e: Error) => message.test(`${e.name}: ${e.message}`),
        text,
      );
  });

  it('the cache folder: SPECTRAL_NORM_CACHE_DIR, off, or the user cache folder', () => {
    assert.equal(cacheDirectory({ SPECTRAL_NORM_CACHE_DIR: '/some/where' }), '/some/where');
    assert.equal(cacheDirectory({ SPECTRAL_NORM_CACHE_DIR: 'off' }), null);
    if (process.platform === 'linux') {
      assert.equal(cacheDirectory({ XDG_CACHE_HOME: '/xdg' }), '/xdg/spectral-norm');
      assert.equal(cacheDirectory({}), path.join(os.homedir(), '.cache', 'spectral-norm'));
    }
  });

  it('the memory-bandwidth probe reads well beyond the caches the OS reports, within bounds', () => {
    const MiB = 2 ** 20;
    assert.equal(streamProbeBytes(null), 64 * MiB);
    assert.equal(streamProbeBytes(1 * MiB), 32 * MiB);
    assert.equal(streamProbeBytes(32 * MiB), 128 * MiB);
    assert.equal(streamProbeBytes(96 * MiB), 384 * MiB);
    assert.equal(streamProbeBytes(1152 * MiB), 512 * MiB);
  });

  it('measured constants are positive and finite', function () {
    const addon = nativeAddon();
    if (!addon) this.skip();
    const host = measureHostConstants(addon, defaultThreads());
    for (const name of HOST_CONSTANT_NAMES) {
      const value = host.constants[name];
      assert.ok(Number.isFinite(value) && value > 0, `${name} = ${value}`);
    }
    assert.ok(['system', 'default'].includes(host.sources.cpuCacheBytes!));
    const stream = measureStreamBandwidth(addon, defaultThreads()).constants.cpuStreamBytesPerSecond!;
    assert.ok(Number.isFinite(stream) && stream > 0, `cpuStreamBytesPerSecond = ${stream}`);
    // Rates that cannot be that far off on any machine this runs on: a sweep of a cached layer within 10 M to
    // 1 T elements/s per thread, a native call under 10 ms.
    for (const name of ['cpuSweepElementsPerSecond', 'jsSweepElementsPerSecond'] as const) {
      assert.ok(host.constants[name] > 1e7 && host.constants[name] < 1e12, `${name} = ${host.constants[name]}`);
    }
    assert.ok(host.constants.cpuCallSeconds < 10e-3);
    console.log(`      (host constants measured in ${host.ms.toFixed(1)} ms here; the brief's budget is 50 ms on a quiet machine)`);
  });

  it('a CUDA device without cudaProbe in the addon cannot be costed: a clear reason, never a guess', function () {
    const addon = nativeAddon();
    if (!addon || typeof addon.cudaProbe === 'function') this.skip();
    assert.throws(() => measureCudaConstants(addon, 0), /this build of the addon has no cudaProbe/);
  });

  describe('the cache file', () => {
    let dir: string;
    const saved = process.env.SPECTRAL_NORM_CACHE_DIR;
    const savedModel = process.env.SPECTRAL_NORM_COST_MODEL;
    beforeEach(function () {
      if (!nativeAddon()) this.skip();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-cost-model-'));
      process.env.SPECTRAL_NORM_CACHE_DIR = dir;
      delete process.env.SPECTRAL_NORM_COST_MODEL;
      resetCalibration();
    });
    afterEach(() => {
      if (saved === undefined) delete process.env.SPECTRAL_NORM_CACHE_DIR;
      else process.env.SPECTRAL_NORM_CACHE_DIR = saved;
      if (savedModel === undefined) delete process.env.SPECTRAL_NORM_COST_MODEL;
      else process.env.SPECTRAL_NORM_COST_MODEL = savedModel;
      resetCalibration();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });
    const target = () => nativeCalibrationTarget()!;

    it('is written when measuring, read instead of measuring by the next process, and says where it is', () => {
      const first = hostConstants(target());
      assert.equal(first.sources.cpuCallSeconds, 'measured');
      const files = fs.readdirSync(dir);
      assert.equal(files.length, 1);
      assert.match(files[0], /^cost-model-[0-9a-f]{16}\.json$/);
      resetCalibration(); // as a new process would
      const second = hostConstants(target());
      assert.equal(second.sources.cpuCallSeconds, 'cache');
      assert.deepEqual(second.constants, first.constants);
      const info = costModelInfo(target(), false);
      assert.equal(info.cacheFile, path.join(dir, files[0]));
      assert.equal(info.measureMs, 0, 'nothing measured: all from the cache');
      assert.equal(info.cacheError, null);
    });

    it('a malformed file is named in a warning and measured over; the environment overrides it', async () => {
      hostConstants(target());
      const file = path.join(dir, fs.readdirSync(dir)[0]);
      for (const [content, why] of [
        ['{ not json', /is not JSON/],
        ['{"format":"other"}', /is not a spectral-norm.cost-model file/],
      ] as const) {
        fs.writeFileSync(file, content);
        resetCalibration();
        const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
        const host = hostConstants(target());
        assert.equal(host.sources.cpuCallSeconds, 'measured');
        const warning = await warned;
        assert.match(warning.message, why);
        assert.ok(warning.message.includes(file));
        assert.match(costModelInfo(target(), false).cacheError!, why);
        JSON.parse(fs.readFileSync(file, 'utf8')); // rewritten whole
      }
      const cached = JSON.parse(fs.readFileSync(file, 'utf8'));
      cached.host.constants.cpuCallSeconds = -1;
      fs.writeFileSync(file, JSON.stringify(cached));
      resetCalibration();
      const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
      hostConstants(target());
      assert.match((await warned).message, /malformed: cpuCallSeconds is -1/);
      process.env.SPECTRAL_NORM_COST_MODEL = '{"cpuCallSeconds": 0.5}';
      resetCalibration();
      const host = hostConstants(target());
      assert.equal(host.constants.cpuCallSeconds, 0.5);
      assert.equal(host.sources.cpuCallSeconds, 'env');
      assert.equal(host.sources.jsCallSeconds, 'cache');
    });
  });
});

/** Runs `script` in a child process with the library loaded as `sn`, and returns what it printed as JSON. */
function child(script: string, env: Record<string, string>): unknown {
  const lib = JSON.stringify(path.join(ROOT, 'dist', 'lib'));
  const output = execFileSync(process.execPath, ['-e', `const sn = require(${lib}); ${script}`], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return JSON.parse(output);
}

describe("'auto': one rule in every API", () => {
  const info = backendInfo();
  const native = info.cpu.available;

  it('autoBackend checks its arguments', () => {
    assert.throws(() => autoBackend([]), /^TypeError: layers must be a non-empty array/);
    assert.throws(() => autoBackend({} as never), /^TypeError: layers must be a non-empty array/);
    assert.throws(() => autoBackend([undefined as never]), /^TypeError: layers\[0\] must be an object/);
    assert.throws(() => autoBackend([{ shape: [2, 0] }]), /^RangeError: layers\[0\]\.shape\[1\]/);
    assert.throws(() => autoBackend([{ shape: [2, 2], dim: 2 }]), /^RangeError: layers\[0\]\.dim/);
    assert.throws(() => autoBackend([{ shape: [2, 2], bias: 1 } as never]), /^TypeError: layers\[0\]\.bias is not a known option/);
    assert.throws(
      () => autoBackend([{ shape: [2, 2] }], { backend: 'cpu' } as never),
      /^TypeError: options\.backend is not a known option/,
    );
    assert.throws(() => autoBackend([{ shape: [2, 2] }], { iterations: 0 }), /^RangeError: options\.iterations/);
    assert.throws(() => autoBackend([{ shape: [2, 2] }], { dtype: 'float16' as never }), /^TypeError: options\.dtype/);
    assert.throws(() => autoBackend([{ shape: [2, 2] }], { device: -1 }), /^RangeError: options\.device/);
    assert.throws(() => autoBackend([{ shape: [2, 2] }], { onDevice: 1 as never }), /^TypeError: options\.onDevice/);
    if (!info.cuda.available) {
      assert.throws(
        () => autoBackend([{ shape: [2, 2] }], { onDevice: true }),
        /^RangeError: options\.onDevice is true, but the cuda backend is unavailable: /,
      );
    } else {
      assert.equal(autoBackend([{ shape: [2, 2] }], { onDevice: true }), 'cuda');
    }
  });

  it('picks an available backend, and the same one a normalizer or a batch of that job gets', () => {
    const jobs: [number[][], number][] = [
      [[[8, 8]], 1],
      [[[64, 64, 3, 3]], 1],
      [[[16, 16]], 30],
      [
        [
          [300, 7],
          [5, 5, 3],
        ],
        2,
      ],
      [Array.from({ length: 40 }, () => [6, 6]), 1],
    ];
    for (const [shapes, iterations] of jobs) {
      const layers = shapes.map((shape) => ({ shape }));
      const pick = autoBackend(layers, { iterations });
      assert.ok(info.available.includes(pick), pick);
      assert.equal(new SpectralNormBatch(layers, { iterations }).backend, pick, JSON.stringify(shapes));
      if (shapes.length === 1) assert.equal(new SpectralNormalizer(shapes[0], { iterations }).backend, pick);
      for (const backend of ['cpu', 'js'] as const) {
        if (info.available.includes(backend))
          assert.equal(new SpectralNormBatch(layers, { iterations, backend }).backend, backend, 'a pinned backend stands');
      }
    }
    assert.equal(info.auto, autoBackend([{ shape: [1024, 1024] }]));
    if (native) assert.equal(autoBackend([{ shape: [1024, 1024] }]), 'cpu');
  });

  it('a one-shot call picks per call, and a coalesced batch per batch', async () => {
    const weight = randomArray('float32', 12 * 7);
    const alone = spectralNorm(weight, [12, 7], { maxIterations: 50 });
    const option = checkBackendOption('options.backend', 'auto');
    const expectedAlone = resolveBackend(
      option,
      convergeJob([matrixGeometry([12, 7], 0, false)], 'float32', 'mixed', 50, defaultThreads(), [false]),
    );
    assert.equal(alone.backend, expectedAlone.name);

    const coalescer = new SpectralNormCoalescer({ maxDelayMs: 50 });
    assert.equal(coalescer.backend, 'auto');
    const shapes = Array.from({ length: 24 }, (_, i) => [4 + (i % 5), 3 + (i % 4)]);
    const weights = shapes.map((s) => randomArray('float32', s[0] * s[1]));
    const results = await Promise.all(shapes.map((s, i) => coalescer.norm(weights[i], s, { maxIterations: 200 })));
    await coalescer.close();
    assert.equal(coalescer.stats().batches, 1);
    const geometries = shapes.map((s) => matrixGeometry(s, 0, false));
    const expected = resolveBackend(
      option,
      convergeJob(
        geometries,
        'float32',
        'mixed',
        200,
        defaultThreads(),
        shapes.map(() => false),
      ),
    );
    for (const r of results) assert.equal(r.backend, expected.name);
    // Each request's σ is what its own call on that backend gives.
    shapes.forEach((s, i) =>
      assert.equal(results[i].sigma, spectralNorm(weights[i], s, { maxIterations: 200, backend: expected.name }).sigma),
    );
  });

  it('SpectralNormBatch on auto with a usable GPU: host arrays where predicted fastest, DeviceWeights on cuda', function () {
    if (!info.cuda.available) this.skip();
    const batch = new SpectralNormBatch([{ shape: [64, 32] }, { shape: [10, 20] }], { seed: 3 });
    const weights = [randomArray('float32', 64 * 32), randomArray('float32', 200)] as Float32Array[];
    const handle = batch.toDevice(weights);
    try {
      const reference = new SpectralNormBatch([{ shape: [64, 32] }, { shape: [10, 20] }], { seed: 3, backend: 'cuda' });
      const referenceHandle = reference.toDevice(weights);
      assert.deepEqual(batch.step(handle), reference.step(referenceHandle));
      referenceHandle.dispose();
    } finally {
      handle.dispose();
    }
  });

  it('SPECTRAL_NORM_COST_MODEL decides without measuring; a malformed one fails each auto call clearly, pinned ones not', function () {
    if (!native) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-cost-env-'));
    try {
      // A host where JS costs nothing to call and sweeps at 1e15 elements/s: it wins every job (a GPU's constants
      // are given too, so that nothing is measured on a GPU host either).
      const jsWins = {
        ...Object.fromEntries(
          HOST_CONSTANT_NAMES.map((name) => [name, name.startsWith('js') ? (name.endsWith('Seconds') ? 1e-12 : 1e15) : DEV_VM[name]]),
        ),
        cpuStreamBytesPerSecond: 89e9,
        ...H200_TODAY,
      };
      const report = child(
        `const i = sn.backendInfo(); console.log(JSON.stringify({ sources: i.costModel.sources, ms: i.costModel.measureMs, ` +
          `batch: new sn.SpectralNormBatch([{ shape: [512, 512] }]).backend, auto: sn.autoBackend([{ shape: [2048, 2048] }]) }));`,
        { SPECTRAL_NORM_COST_MODEL: JSON.stringify(jsWins), SPECTRAL_NORM_CACHE_DIR: dir },
      ) as { sources: Record<string, string>; ms: number; batch: string; auto: string };
      assert.equal(report.batch, 'js');
      assert.equal(report.auto, 'js');
      assert.equal(report.ms, 0);
      for (const name of HOST_CONSTANT_NAMES) assert.equal(report.sources[name], 'env', name);
      assert.deepEqual(fs.readdirSync(dir), [], 'nothing measured, nothing cached');

      const failed = child(
        `const out = {}; for (const [k, f] of Object.entries({ auto: () => new sn.SpectralNormalizer([4, 4]), oneShot: () => sn.spectralNorm(new Float32Array(4).fill(1), [2, 2]), ` +
          `pinned: () => new sn.SpectralNormalizer([4, 4], { backend: 'cpu' }) })) { try { f(); out[k] = 'ok'; } catch (e) { out[k] = e.name + ': ' + e.message; } } console.log(JSON.stringify(out));`,
        { SPECTRAL_NORM_COST_MODEL: '{"cpuCallSeconds": "3us"}', SPECTRAL_NORM_CACHE_DIR: dir },
      ) as Record<string, string>;
      assert.match(failed.auto, /^RangeError: SPECTRAL_NORM_COST_MODEL\.cpuCallSeconds must be a positive finite number, got "3us"$/);
      assert.equal(failed.oneShot, failed.auto);
      assert.equal(failed.pinned, 'ok');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
