// The constants of the cost model (lib/cost-model.ts) for this machine: measured once per process, lazily, on real
// jobs of the library's own backends; or read from a cache file keyed by machine and addon; or taken from the
// environment. Only backend 'auto' ever asks for them, so a process that pins its backend measures nothing.
//
// Why a cache file: the constants decide which backend runs, and backends agree to rounding, not to the bit, so
// constants measured afresh by every process could flip a borderline job between backends from run to run. Read
// from one file, every process on the machine decides alike. It also spares each process the measuring (up to
// about 50 ms on the host), and on a GPU host a CUDA context (hundreds of ms, and device memory) in a process that
// ends up on cpu. Delete the file to measure again; SPECTRAL_NORM_CACHE_DIR=off keeps none.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { Backend, NativeAddon, NativeInfo, PowerJob } from '../binding';
import { type CostConstants, type CudaCostConstants, type HostCostConstants, CUDA_CONSTANT_NAMES, HOST_CONSTANT_NAMES } from './cost-model';
import { buildJob } from './engine';
import { jsBackend } from './js-backend';
import { matrixGeometry } from './layout';
import { startVectors } from './random';
import type { Precision } from './validate';

export const ENV_CONSTANTS = 'SPECTRAL_NORM_COST_MODEL';
export const ENV_CACHE_DIR = 'SPECTRAL_NORM_CACHE_DIR';

/**
 * Where a cost-model constant came from: measured in this process, the cache file, SPECTRAL_NORM_COST_MODEL, the
 * OS (cpuCacheBytes, from sysfs), or a built-in default (cpuCacheBytes where the OS does not say).
 */
export type CostSource = 'measured' | 'cache' | 'env' | 'system' | 'default';
type ConstantName = keyof HostCostConstants | keyof CudaCostConstants;

/** backendInfo().costModel: the constants 'auto' decides with, where each came from, and the cache file. */
export interface CostModelInfo {
  /** The constants 'auto' decides with: the host's, and device 0's when a CUDA device is usable and was costed. */
  constants: Partial<CostConstants>;
  /** Where each came from: measured in this process, the cache file, SPECTRAL_NORM_COST_MODEL, the OS, a default. */
  sources: Partial<Record<ConstantName, CostSource>>;
  /** The cache file read or written; null when caching is off. */
  cacheFile: string | null;
  /** Why the cache file could not be read or written, when it could not. */
  cacheError: string | null;
  /** Milliseconds this process has spent measuring (0 when everything came from the cache or the environment). */
  measureMs: number;
  /** Why 'auto' never picks cuda for host arrays though a device is usable (it could not be costed), else null. */
  cudaReason: string | null;
}

// ---------------------------------------------------------------------------------------------------------------
// The environment

const ALL_NAMES: readonly ConstantName[] = [...HOST_CONSTANT_NAMES, 'cpuStreamBytesPerSecond', ...CUDA_CONSTANT_NAMES];

/**
 * SPECTRAL_NORM_COST_MODEL: a JSON object of any of the constants, each a positive finite number, e.g.
 * '{"cpuStreamBytesPerSecond": 2e10, "cudaHostArrayBytesPerSecond": 4e10}'. They override what would be measured
 * or cached; the cuda ones apply to every device. Throws a TypeError or RangeError naming the variable.
 */
export function parseEnvConstants(text: string | undefined): Partial<CostConstants> {
  if (text === undefined || text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TypeError(
      `${ENV_CONSTANTS} must be a JSON object of constants (e.g. '{"cpuCallSeconds":3e-6}'): ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TypeError(
      `${ENV_CONSTANTS} must be a JSON object of constants, got ${Array.isArray(parsed) ? 'an array' : JSON.stringify(parsed)}`,
    );
  }
  const out: Partial<Record<ConstantName, number>> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(ALL_NAMES as readonly string[]).includes(key)) {
      throw new RangeError(`${ENV_CONSTANTS} has an unknown constant '${key}' (known: ${ALL_NAMES.join(', ')})`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`${ENV_CONSTANTS}.${key} must be a positive finite number, got ${JSON.stringify(value)}`);
    }
    out[key as ConstantName] = value;
  }
  return out;
}

/** The folder of the cache file, or null for none: SPECTRAL_NORM_CACHE_DIR, else the platform's user cache folder. */
export function cacheDirectory(env: Readonly<Record<string, string | undefined>> = process.env): string | null {
  const chosen = env[ENV_CACHE_DIR];
  if (chosen !== undefined && chosen !== '') return chosen === 'off' ? null : path.resolve(chosen);
  const home = os.homedir();
  if (process.platform === 'win32' && env.LOCALAPPDATA) return path.join(env.LOCALAPPDATA, 'spectral-norm');
  if (process.platform === 'darwin' && home) return path.join(home, 'Library', 'Caches', 'spectral-norm');
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) return path.join(env.XDG_CACHE_HOME, 'spectral-norm');
  if (home) return path.join(home, '.cache', 'spectral-norm');
  return path.join(os.tmpdir(), `spectral-norm-${os.userInfo().uid}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring

/** A weight (and its out) that the calibration jobs of one size share: fresh memory is slow to touch in some VMs. */
interface Operand {
  rows: number;
  cols: number;
  weight: Float32Array;
  out: Float32Array;
}

function operand(rows: number, cols: number): Operand {
  const weight = new Float32Array(rows * cols);
  // Any finite, non-zero values do: the time does not depend on them.
  for (let j = 0; j < weight.length; j++) weight[j] = ((j * 7919) % 61) / 61 - 0.5;
  return { rows, cols, weight, out: new Float32Array(weight.length) };
}

function job(on: Operand, layers: number, iterations: number, out: boolean, threads: number, precision: Precision): PowerJob {
  const geometry = matrixGeometry([on.rows, on.cols], 0, false);
  const states = Array.from({ length: layers }, (_, i) => ({
    geometry,
    ...startVectors(i, geometry.uLength, geometry.vLength, 'float32'),
  }));
  // The layers of a many-layer job read one weight and write one out: the runs are timed, not checked.
  const weights = states.map(() => on.weight);
  const outs = states.map((_, i) => (out && i === 0 ? on.out : null));
  return buildJob(states, weights, outs, { dtype: 'float32', iterations, tolerance: -1, eps: 1e-12, precision, legacy: false, threads });
}

/** Idle workers poll this long before they sleep (native/cpu/thread_pool.cpp kSpin is 100 µs), with a margin. */
const WORKERS_ASLEEP_NS = 300_000n;

/**
 * Each job's fastest run over `rounds` rounds, the jobs timed in turn so that a shared machine's drifts hit them
 * alike (the constants come from differences between them). Timing noise only ever adds, hence the minimum.
 */
function fastestSeconds(run: (job: PowerJob) => unknown, jobs: readonly PowerJob[], rounds: number): number[] {
  const fastest = jobs.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    jobs.forEach((j, i) => {
      const start = process.hrtime.bigint();
      run(j);
      fastest[i] = Math.min(fastest[i], Number(process.hrtime.bigint() - start) / 1e9);
    });
  }
  return fastest;
}

/**
 * fastestSeconds, repeated until two blocks agree within 15% on every job (at most `maxBlocks`): V8 compiles the
 * JS backend's loops on a background thread, some time after they get hot, and the times drop when it is done.
 */
function settledSeconds(run: (job: PowerJob) => unknown, jobs: readonly PowerJob[], rounds: number, maxBlocks: number): number[] {
  let previous = fastestSeconds(run, jobs, rounds);
  for (let block = 1; block < maxBlocks; block++) {
    const current = fastestSeconds(run, jobs, rounds);
    if (current.every((t, i) => Math.abs(t - previous[i]) <= 0.15 * previous[i])) return current;
    previous = current;
  }
  return previous;
}

/**
 * The median of `samples` runs of a job, each after the CPU backend's idle workers have gone to sleep: its cost
 * includes waking them, which the fastest run would hide (a worker that happened to be awake).
 */
function coldSeconds(run: (job: PowerJob) => unknown, job: PowerJob, samples: number): number {
  const times: number[] = [];
  let last = process.hrtime.bigint();
  for (let s = 0; s < samples; s++) {
    while (process.hrtime.bigint() - last < WORKERS_ASLEEP_NS);
    const start = process.hrtime.bigint();
    run(job);
    last = process.hrtime.bigint();
    times.push(Number(last - start) / 1e9);
  }
  return times.sort((a, b) => a - b)[samples >> 1];
}

/** A difference of two times, as the time of the extra work: at least 1% of the larger, lest noise make it ≤ 0. */
function extra(more: number, less: number): number {
  return Math.max(more - less, 0.01 * more);
}

type NativeConstants = Pick<
  HostCostConstants,
  | 'cpuCallSeconds'
  | 'cpuLayerSeconds'
  | 'cpuWakeSeconds'
  | 'cpuSweepElementsPerSecond'
  | 'cpuSweepFloat64ElementsPerSecond'
  | 'cpuDivideElementsPerSecond'
>;

/**
 * The native backend: calls of one tiny layer and of eight on one thread, eight again on every thread with the
 * workers asleep, and one thread's sweep rates (mixed and float64) and division rate from jobs differing only in
 * iterations or out on a 128×512 float32 layer: 256 KiB, in cache, and one thread's worth (CPU_ELEMENTS_PER_THREAD).
 */
export function measureNative(addon: Backend, threads: number): NativeConstants {
  const tiny = operand(2, 2);
  const layer = operand(128, 512);
  const n = layer.weight.length;
  const run = (j: PowerJob) => addon.run(j);
  const [call, eight, k1, k5, k1f64, k5f64, k1NoOut] = settledSeconds(
    run,
    [
      job(tiny, 1, 1, true, 1, 'mixed'),
      job(tiny, 8, 1, true, 1, 'mixed'),
      job(layer, 1, 1, true, 1, 'mixed'),
      job(layer, 1, 5, true, 1, 'mixed'),
      job(layer, 1, 1, true, 1, 'float64'),
      job(layer, 1, 5, true, 1, 'float64'),
      job(layer, 1, 1, false, 1, 'mixed'),
    ],
    5,
    4,
  );
  // With one thread there is nothing to wake: no such cost.
  const eightWoken = threads > 1 ? coldSeconds(run, job(tiny, 8, 1, true, threads, 'mixed'), 5) : eight;
  return {
    cpuCallSeconds: call,
    cpuLayerSeconds: extra(eight, call) / 7,
    cpuWakeSeconds: extra(eightWoken, eight),
    cpuSweepElementsPerSecond: (4 * n) / extra(k5, k1),
    cpuSweepFloat64ElementsPerSecond: (4 * n) / extra(k5f64, k1f64),
    cpuDivideElementsPerSecond: n / extra(k1, k1NoOut),
  };
}

type JsConstants = Pick<HostCostConstants, 'jsCallSeconds' | 'jsLayerSeconds' | 'jsSweepElementsPerSecond' | 'jsDivideElementsPerSecond'>;

/** The JS backend, the same way on a 32×32 layer, after enough runs for V8 to have compiled it. */
export function measureJs(): JsConstants {
  const tiny = operand(2, 2);
  const layer = operand(32, 32);
  const n = layer.weight.length;
  const [call, eight, k1, k5, k1NoOut] = settledSeconds(
    (j) => jsBackend.run(j),
    [
      job(tiny, 1, 1, true, 1, 'mixed'),
      job(tiny, 8, 1, true, 1, 'mixed'),
      job(layer, 1, 1, true, 1, 'mixed'),
      job(layer, 1, 5, true, 1, 'mixed'),
      job(layer, 1, 1, false, 1, 'mixed'),
    ],
    10,
    10,
  );
  return {
    jsCallSeconds: call,
    jsLayerSeconds: extra(eight, call) / 7,
    jsSweepElementsPerSecond: (4 * n) / extra(k5, k1),
    jsDivideElementsPerSecond: n / extra(k1, k1NoOut),
  };
}

/** The largest CPU cache the OS reports (Linux sysfs), or null where it reports none. */
function systemCacheBytes(): number | null {
  const base = '/sys/devices/system/cpu/cpu0/cache';
  let largest: number | null = null;
  try {
    for (const entry of fs.readdirSync(base)) {
      if (!entry.startsWith('index')) continue;
      const read = (file: string) => fs.readFileSync(path.join(base, entry, file), 'utf8').trim();
      if (read('type') === 'Instruction') continue;
      const match = /^(\d+)([KMG]?)$/.exec(read('size'));
      if (!match) continue;
      const bytes = Number(match[1]) * { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[match[2] as '' | 'K' | 'M' | 'G'];
      largest = Math.max(largest ?? 0, bytes);
    }
  } catch {
    return largest;
  }
  return largest;
}

/** Where the OS reports no cache size: a typical server's last-level cache. */
const DEFAULT_CACHE_BYTES = 32 * 2 ** 20;

/**
 * The stream probe's buffer: four times the largest cache the OS reports (at least 32 MiB, at most 512 MiB), so that
 * a host with a large last-level cache measures main memory rather than its cache; twice the default cache where the
 * OS reports none. Its first touch costs a page fault per 4 KiB, slow in some VMs, and the result is cached on disk.
 */
export function streamProbeBytes(cacheBytes: number | null): number {
  if (cacheBytes === null) return 2 * DEFAULT_CACHE_BYTES;
  return Math.min(512 * 2 ** 20, Math.max(32 * 2 ** 20, 4 * cacheBytes));
}

export interface Measured<T> {
  constants: T;
  sources: Partial<Record<ConstantName, CostSource>>;
  ms: number;
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** The host's constants: the native and JS backends', and the OS's cache size. */
export function measureHostConstants(addon: NativeAddon, threads: number): Measured<HostCostConstants> {
  const start = process.hrtime.bigint();
  const cache = systemCacheBytes();
  const constants: HostCostConstants = { ...measureNative(addon, threads), ...measureJs(), cpuCacheBytes: cache ?? DEFAULT_CACHE_BYTES };
  const sources: Measured<HostCostConstants>['sources'] = Object.fromEntries(HOST_CONSTANT_NAMES.map((name) => [name, 'measured']));
  sources.cpuCacheBytes = cache === null ? 'default' : 'system';
  return { constants, sources, ms: elapsedMs(start) };
}

/** Main memory's read bandwidth on all threads (a buffer well beyond the caches, touched first: the costliest probe). */
export function measureStreamBandwidth(addon: NativeAddon, threads: number): Measured<Pick<HostCostConstants, 'cpuStreamBytesPerSecond'>> {
  const start = process.hrtime.bigint();
  const cpuStreamBytesPerSecond = addon.internal.readBandwidth(streamProbeBytes(systemCacheBytes()), threads, 3);
  return { constants: { cpuStreamBytesPerSecond }, sources: { cpuStreamBytesPerSecond: 'measured' }, ms: elapsedMs(start) };
}

/**
 * A CUDA device: the addon's probe (pinned bandwidths, launch latency, device bandwidth), then real host-array jobs
 * for what the probe cannot see: a call's fixed cost, a layer's, and the rate the host-array path achieves.
 */
export function measureCudaConstants(addon: NativeAddon, device: number): Measured<CudaCostConstants> {
  const start = process.hrtime.bigint();
  if (typeof addon.cudaProbe !== 'function') throw new Error('this build of the addon has no cudaProbe');
  const probe = addon.cudaProbe(device);
  const tiny = operand(2, 2);
  const large = operand(1024, 2048);
  const bytes = large.weight.byteLength;
  const [call, eight, big] = settledSeconds(
    (j) => addon.run({ ...j, device }),
    [job(tiny, 1, 1, true, 1, 'mixed'), job(tiny, 8, 1, true, 1, 'mixed'), job(large, 1, 1, true, 1, 'mixed')],
    3,
    3,
  );
  // The 8 MiB job's time less the call and its kernels (a sweep reads W, the division reads and writes it) is its
  // two transfers.
  const kernels = (3 * bytes) / probe.deviceCopyBytesPerSecond;
  const constants: CudaCostConstants = {
    cudaHostToDeviceBytesPerSecond: probe.hostToDeviceBytesPerSecond,
    cudaDeviceToHostBytesPerSecond: probe.deviceToHostBytesPerSecond,
    cudaLaunchSeconds: probe.launchSeconds,
    cudaDeviceBytesPerSecond: probe.deviceCopyBytesPerSecond,
    cudaCallSeconds: call,
    cudaLayerSeconds: extra(eight, call) / 7,
    cudaHostArrayBytesPerSecond: (2 * bytes) / extra(big, call + kernels),
  };
  for (const name of CUDA_CONSTANT_NAMES) {
    if (!(Number.isFinite(constants[name]) && constants[name] > 0)) throw new Error(`${name} came out as ${constants[name]}`);
  }
  const sources: Measured<CudaCostConstants>['sources'] = Object.fromEntries(CUDA_CONSTANT_NAMES.map((name) => [name, 'measured']));
  return { constants, sources, ms: elapsedMs(start) };
}

// ---------------------------------------------------------------------------------------------------------------
// The cache file

const CACHE_FORMAT = 'spectral-norm.cost-model';

interface CacheEntry<T> {
  constants: T;
  sources: Partial<Record<ConstantName, CostSource>>;
  measuredAt: string;
  ms: number;
}

interface CacheFile {
  format: typeof CACHE_FORMAT;
  version: 1;
  key: Record<string, unknown>;
  host?: CacheEntry<HostCostConstants>;
  cuda?: Record<string, CacheEntry<CudaCostConstants>>;
}

/** What the constants depend on: the machine, its threads, the addon build, V8 (the JS backend's speed), CUDA. */
export function cacheKey(addonPath: string, info: NativeInfo, threads: number): Record<string, unknown> {
  let addon: { size: number; mtimeMs: number } | null;
  try {
    const stat = fs.statSync(addonPath);
    addon = { size: stat.size, mtimeMs: stat.mtimeMs };
  } catch {
    addon = null;
  }
  return {
    host: os.hostname(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    threads,
    simd: info.cpu.simd,
    addon: { path: addonPath, ...addon },
    v8: process.versions.v8,
    package: (require('../../package.json') as { version: string }).version,
    cuda: {
      driver: info.cuda.driverVersion,
      runtime: info.cuda.runtimeVersion,
      devices: info.cuda.devices.map((d) => [d.name, d.totalMemory]),
    },
  };
}

function checkEntry(entry: unknown, names: readonly ConstantName[]): string | null {
  const constants = (entry as { constants?: Record<string, unknown> } | undefined)?.constants;
  if (constants === undefined || constants === null || typeof constants !== 'object') return 'an entry has no constants';
  for (const name of names) {
    const value = constants[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return `${name} is ${JSON.stringify(value)}`;
  }
  return null;
}

/** The cache's content for this key, or null: absent, for another key (machine or build changed), or malformed. */
function readCache(file: string, key: Record<string, unknown>): { content: CacheFile | null; error: string | null } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    return {
      content: null,
      error: (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : `cannot read ${file}: ${(error as Error).message}`,
    };
  }
  let parsed: CacheFile;
  try {
    parsed = JSON.parse(text) as CacheFile;
  } catch (error) {
    return { content: null, error: `${file} is not JSON (${(error as Error).message}); measuring again` };
  }
  if (parsed?.format !== CACHE_FORMAT || parsed.version !== 1)
    return { content: null, error: `${file} is not a ${CACHE_FORMAT} file, version 1; measuring again` };
  if (JSON.stringify(parsed.key) !== JSON.stringify(key)) return { content: null, error: null };
  const bad =
    (parsed.host && checkEntry(parsed.host, HOST_CONSTANT_NAMES)) ||
    Object.values(parsed.cuda ?? {})
      .map((e) => checkEntry(e, CUDA_CONSTANT_NAMES))
      .find((e) => e !== null);
  if (bad) return { content: null, error: `${file} is malformed: ${bad}; measuring again` };
  return { content: parsed, error: null };
}

function writeCache(file: string, content: CacheFile): string | null {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // Written whole and renamed, so a process reading at the same time sees the old file or the new one.
    const temporary = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, `${JSON.stringify(content, null, 1)}\n`);
    fs.renameSync(temporary, file);
  } catch (error) {
    return `cannot write ${file}: ${(error as Error).message}`;
  }
  removeStale(file, content.key);
  return null;
}

/** Cache files of earlier builds of the same addon on this host: a rebuild changes the key, and so the file name. */
function removeStale(file: string, key: Record<string, unknown>): void {
  const addonPath = (key.addon as { path: string }).path;
  const dir = path.dirname(file);
  try {
    for (const name of fs.readdirSync(dir)) {
      const other = path.join(dir, name);
      if (other === file || !/^cost-model-[0-9a-f]{16}\.json$/.test(name)) continue;
      const old = JSON.parse(fs.readFileSync(other, 'utf8')) as Partial<CacheFile>;
      if (
        old.format === CACHE_FORMAT &&
        old.key?.host === key.host &&
        (old.key?.addon as { path?: string } | undefined)?.path === addonPath
      )
        fs.rmSync(other, { force: true });
    }
  } catch {
    // A file another process is writing or removing: left for the next time.
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Once per process

export interface CalibrationTarget {
  addon: NativeAddon;
  addonPath: string;
  info: NativeInfo;
  threads: number;
}

interface State {
  target: CalibrationTarget;
  env: Partial<CostConstants>;
  file: string | null;
  key: Record<string, unknown>;
  content: CacheFile;
  cacheError: string | null;
  measureMs: number;
  host: Measured<HostCostConstants> | null;
  cuda: Map<number, Measured<CudaCostConstants> | { reason: string }>;
}

let state: State | null = null;

function begin(target: CalibrationTarget): State {
  if (state && state.target.addon === target.addon) return state;
  const env = parseEnvConstants(process.env[ENV_CONSTANTS]);
  const key = cacheKey(target.addonPath, target.info, target.threads);
  const dir = cacheDirectory();
  const file =
    dir === null ? null : path.join(dir, `cost-model-${createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16)}.json`);
  const read = file === null ? { content: null, error: null } : readCache(file, key);
  if (read.error) process.emitWarning(`spectral-norm cost model: ${read.error}`, 'SpectralNormWarning');
  state = {
    target,
    env,
    file,
    key,
    content: read.content ?? { format: CACHE_FORMAT, version: 1, key },
    cacheError: read.error,
    measureMs: 0,
    host: null,
    cuda: new Map(),
  };
  return state;
}

/** The constants from the environment, over those measured or cached. */
function overlay<T extends object>(base: Measured<T>, env: Partial<CostConstants>): Measured<T> {
  const constants = { ...base.constants } as Record<string, number>;
  const sources = { ...base.sources };
  for (const [name, value] of Object.entries(env) as [ConstantName, number][]) {
    constants[name] = value;
    sources[name] = 'env';
  }
  return { constants: constants as T, sources, ms: base.ms };
}

function save(s: State): void {
  if (s.file === null) return;
  const error = writeCache(s.file, s.content);
  if (error) s.cacheError = error;
}

function fromCache<T>(entry: CacheEntry<T>): Measured<T> {
  const sources = Object.fromEntries(
    Object.entries(entry.sources).map(([name, source]) => [name, source === 'measured' ? 'cache' : source]),
  );
  return { constants: entry.constants, sources, ms: 0 };
}

function pick<T extends object>(env: Partial<CostConstants>, names: readonly (keyof T & ConstantName)[]): Partial<T> {
  return Object.fromEntries(names.filter((n) => env[n] !== undefined).map((n) => [n, env[n]])) as Partial<T>;
}

/**
 * The host's constants: the environment's, over the cache's, over those measured now. `withStream` adds the main
 * memory bandwidth, which only the choice between cpu and cuda needs.
 */
export function hostConstants(target: CalibrationTarget, withStream = false): Measured<HostCostConstants> {
  const s = begin(target);
  if (!s.host) {
    let base: Measured<HostCostConstants>;
    if (HOST_CONSTANT_NAMES.every((name) => s.env[name] !== undefined)) {
      base = { constants: {} as HostCostConstants, sources: {}, ms: 0 };
    } else if (s.content.host) {
      base = fromCache(s.content.host);
    } else {
      base = measureHostConstants(target.addon, target.threads);
      s.measureMs += base.ms;
      s.content.host = { ...base, measuredAt: new Date().toISOString() };
      save(s);
    }
    s.host = overlay(base, pick<HostCostConstants>(s.env, [...HOST_CONSTANT_NAMES, 'cpuStreamBytesPerSecond']));
  }
  if (withStream && s.host.constants.cpuStreamBytesPerSecond === undefined) {
    const stream = measureStreamBandwidth(target.addon, target.threads);
    s.measureMs += stream.ms;
    s.host = { ...s.host, constants: { ...s.host.constants, ...stream.constants }, sources: { ...s.host.sources, ...stream.sources } };
    if (s.content.host) {
      const entry = s.content.host;
      s.content.host = {
        ...entry,
        constants: { ...entry.constants, ...stream.constants },
        sources: { ...entry.sources, ...stream.sources },
      };
      save(s);
    }
  }
  return s.host;
}

/** A CUDA device's constants, or why it cannot be costed (then 'auto' never picks it for host arrays). */
export function cudaConstants(target: CalibrationTarget, device: number): Measured<CudaCostConstants> | { reason: string } {
  const s = begin(target);
  const known = s.cuda.get(device);
  if (known) return known;
  let result: Measured<CudaCostConstants> | { reason: string };
  const cached = s.content.cuda?.[String(device)];
  const env = pick<CudaCostConstants>(s.env, CUDA_CONSTANT_NAMES);
  if (CUDA_CONSTANT_NAMES.every((name) => env[name] !== undefined)) {
    result = overlay({ constants: {} as CudaCostConstants, sources: {}, ms: 0 }, env);
  } else if (cached) {
    result = overlay(fromCache(cached), env);
  } else {
    try {
      const measured = measureCudaConstants(target.addon, device);
      s.measureMs += measured.ms;
      s.content.cuda = { ...s.content.cuda, [String(device)]: { ...measured, measuredAt: new Date().toISOString() } };
      save(s);
      result = overlay(measured, env);
    } catch (error) {
      result = { reason: `device ${device} could not be costed: ${(error as Error).message.split('\n')[0]}` };
    }
  }
  s.cuda.set(device, result);
  return result;
}

/**
 * Every constant 'auto' needs for a job: the host's; with a usable `cuda` device, that device's and main memory's
 * bandwidth, or the reason the device cannot be costed.
 */
export function jobConstants(target: CalibrationTarget, cuda: number | null): { constants: CostConstants; cudaReason: string | null } {
  if (cuda === null) return { constants: hostConstants(target).constants, cudaReason: null };
  const device = cudaConstants(target, cuda);
  if ('reason' in device) return { constants: hostConstants(target).constants, cudaReason: device.reason };
  return { constants: { ...hostConstants(target, true).constants, ...device.constants }, cudaReason: null };
}

/** backendInfo().costModel: the host's constants, and device 0's when `cudaUsable`. */
export function costModelInfo(target: CalibrationTarget, cudaUsable: boolean): CostModelInfo {
  const { constants, cudaReason } = jobConstants(target, cudaUsable ? 0 : null);
  const s = state!;
  const device = cudaUsable ? s.cuda.get(0) : undefined;
  return {
    constants,
    sources: { ...s.host!.sources, ...(device && 'sources' in device ? device.sources : {}) },
    cacheFile: s.file,
    cacheError: s.cacheError,
    measureMs: s.measureMs,
    cudaReason,
  };
}

/** Tests only: forget this process's constants, so the next use reads the environment and the cache again. */
export function resetCalibration(): void {
  state = null;
}
