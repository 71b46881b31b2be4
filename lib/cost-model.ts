// The cost model behind backend 'auto': the predicted seconds of one job on the js, cpu and cuda backends, from the
// job's shape (bytes to sweep and move, passes over W) and a few constants of this machine (lib/cost-calibration.ts
// measures them, reads them from its cache file, or takes them from SPECTRAL_NORM_COST_MODEL). Pure arithmetic: no
// I/O, no measuring, so tests can inject any machine.
import type { BackendName } from './backends';
import type { DType, Precision } from './validate';

/** The host's constants: the native CPU backend and the pure-JS backend. Times in seconds, rates per second. */
export interface HostCostConstants {
  /** A native call of one tiny layer: unmarshalling, scratch, results. */
  cpuCallSeconds: number;
  /** Each further layer of a native call (its arguments, its setup). */
  cpuLayerSeconds: number;
  /**
   * Waking the CPU backend's worker threads, which sleep after 100 µs idle: once per call that shares work among
   * threads (a layer of more than CPU_ELEMENTS_PER_THREAD elements, two small layers or more).
   */
  cpuWakeSeconds: number;
  /** One thread's sweep (W v and Wᵀu fused, one pass over W) over float32 weights in cache, 'mixed' precision. */
  cpuSweepElementsPerSecond: number;
  /** The same with every product accumulated in float64 ('float64' precision, and float64 weights). */
  cpuSweepFloat64ElementsPerSecond: number;
  /** One thread's division W/σ into out, in cache. */
  cpuDivideElementsPerSecond: number;
  /**
   * All threads' read bandwidth over a 32 MiB buffer: main memory where the last-level cache is smaller. Measured
   * only where a CUDA device is usable: only the choice between cpu and cuda depends on it (js never wins on
   * rate, only on a fixed cost). Without it, every pass is costed at the in-cache rates.
   */
  cpuStreamBytesPerSecond?: number;
  /** The last-level cache: a job whose weights and outputs fit is costed at the in-cache rates only. */
  cpuCacheBytes: number;
  /** A js call of one tiny layer. This and the next three are the pure-JS backend's (one thread, float64 sums). */
  jsCallSeconds: number;
  /** Each further layer of a js call. */
  jsLayerSeconds: number;
  /** The js backend's sweep (W v and Wᵀu fused, one pass over W) over weights in cache. */
  jsSweepElementsPerSecond: number;
  /** The js backend's division W/σ into out. */
  jsDivideElementsPerSecond: number;
}

/** One CUDA device's constants: the first four from the addon's cudaProbe(device), the rest from real jobs. */
export interface CudaCostConstants {
  /** Pinned host-to-device copy bandwidth. */
  cudaHostToDeviceBytesPerSecond: number;
  /** Pinned device-to-host copy bandwidth. */
  cudaDeviceToHostBytesPerSecond: number;
  /** The latency of one kernel launch. */
  cudaLaunchSeconds: number;
  /** Device-to-device copy bandwidth, bytes read plus written: the rate a sweep at the bandwidth limit reads W. */
  cudaDeviceBytesPerSecond: number;
  /** A cuda call of one tiny layer on host arrays, one iteration: unmarshalling, launches, copies, the wait. */
  cudaCallSeconds: number;
  /** Each further layer of a cuda call on host arrays. */
  cudaLayerSeconds: number;
  /**
   * What a host-array job achieves over the bus, both directions together (measured on an 8 MiB layer). The pinned
   * figures above bound it; a path that stages through pageable memory gets less, and the model must know.
   */
  cudaHostArrayBytesPerSecond: number;
}

/** The cost model's constants: the host's, and one CUDA device's when a device is usable and was costed. */
export type CostConstants = HostCostConstants & Partial<CudaCostConstants>;

/** The host's constants that are always measured (cpuStreamBytesPerSecond is measured with a CUDA device's). */
export const HOST_CONSTANT_NAMES = [
  'cpuCallSeconds',
  'cpuLayerSeconds',
  'cpuWakeSeconds',
  'cpuSweepElementsPerSecond',
  'cpuSweepFloat64ElementsPerSecond',
  'cpuDivideElementsPerSecond',
  'cpuCacheBytes',
  'jsCallSeconds',
  'jsLayerSeconds',
  'jsSweepElementsPerSecond',
  'jsDivideElementsPerSecond',
] as const satisfies readonly (keyof HostCostConstants)[];

export const CUDA_CONSTANT_NAMES = [
  'cudaHostToDeviceBytesPerSecond',
  'cudaDeviceToHostBytesPerSecond',
  'cudaLaunchSeconds',
  'cudaDeviceBytesPerSecond',
  'cudaCallSeconds',
  'cudaLayerSeconds',
  'cudaHostArrayBytesPerSecond',
] as const satisfies readonly (keyof CudaCostConstants)[];

/** One layer of a job, as the model sees it. */
export interface CostedLayer {
  /** Weight elements (rows·cols). */
  elements: number;
  /** A 1-D weight under the parametrization: σ = ‖W‖, one pass whatever the iterations. */
  vectorNorm: boolean;
  /** W/σ is written (a step, or spectralNormalize); false for a warm-up or spectralNorm. */
  divide: boolean;
}

export interface CostedJob {
  layers: readonly CostedLayer[];
  dtype: DType;
  precision: Precision;
  /** Fixed mode: the iterations (0: eval mode, one pass). Converge mode: maxIterations (see expectedIterations). */
  iterations: number;
  converge: boolean;
  legacy: boolean;
  threads: number;
  /** The weights are DeviceWeights: such a job always runs on cuda. */
  onDevice: boolean;
}

/**
 * The passes over W a converge-mode job is costed at: its maxIterations. How many it will run is unknown until it
 * runs (3 or 4 on a matrix with a clear top singular value, hundreds on a random one at tolerance 1e-6), and the two
 * ways to be wrong cost differently: costing too many iterations can only pick a backend whose fixed cost (a native
 * call, a host-device transfer) was not worth paying, a bounded loss; costing too few can leave a long iteration on
 * a backend that is slower per iteration, a loss that grows with every iteration run. The cap bounds the regret.
 */
export function expectedIterations(job: Pick<CostedJob, 'iterations' | 'converge'>): number {
  return job.iterations;
}

/** Passes over a layer's W before the division: k sweeps (the legacy order one more), one in eval mode or for a norm. */
function passes(layer: CostedLayer, job: CostedJob): number {
  if (layer.vectorNorm) return 1;
  const k = expectedIterations(job);
  if (k === 0) return 1;
  return job.legacy && !job.converge ? k + 1 : k;
}

/**
 * The CPU backend splits a layer over threads by rows, one more thread per this many elements, and runs the smaller
 * layers side by side, one thread each; divisions go in chunks of the same size (native/cpu/power_iteration.cpp,
 * kElementsPerThread). The model follows that plan.
 */
export const CPU_ELEMENTS_PER_THREAD = 2 ** 17;

function bytesPerElement(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}

export function predictJs(job: CostedJob, c: HostCostConstants): number {
  let seconds = c.jsCallSeconds + (job.layers.length - 1) * c.jsLayerSeconds;
  for (const layer of job.layers) {
    seconds += (passes(layer, job) * layer.elements) / c.jsSweepElementsPerSecond;
    if (layer.divide) seconds += layer.elements / c.jsDivideElementsPerSecond;
  }
  return seconds;
}

export function predictCpu(job: CostedJob, c: HostCostConstants): number {
  const b = bytesPerElement(job.dtype);
  const threads = Math.max(1, job.threads);
  const sweepRate =
    job.dtype === 'float64' || job.precision === 'float64' ? c.cpuSweepFloat64ElementsPerSecond : c.cpuSweepElementsPerSecond;
  const weightBytes = job.layers.reduce((sum, l) => sum + l.elements * b, 0);
  const outBytes = job.layers.reduce((sum, l) => sum + (l.divide ? l.elements * b : 0), 0);
  const inCache = c.cpuStreamBytesPerSecond === undefined || weightBytes + outBytes <= c.cpuCacheBytes;
  // Main memory's share for t of the threads, assuming bandwidth grows with threads up to the measured all-thread
  // figure.
  const stream = (t: number) => (c.cpuStreamBytesPerSecond! * Math.min(t, threads)) / threads;

  let seconds = c.cpuCallSeconds + (job.layers.length - 1) * c.cpuLayerSeconds;
  // Whether some step shares work among threads: a large layer, two small ones or more, two division chunks or more.
  let shared = false;
  // Large layers, one after another, each over its threads. From memory when the job does not fit in cache: the
  // first pass, or every pass when the layer alone does not fit either.
  let smallWork = 0;
  let smallLongest = 0;
  let smallBytes = 0;
  let smallCount = 0;
  for (const layer of job.layers) {
    const k = passes(layer, job);
    const t = Math.min(threads, Math.max(1, Math.floor(layer.elements / CPU_ELEMENTS_PER_THREAD)));
    const compute = (k * layer.elements) / (sweepRate * t);
    if (t === 1) {
      smallWork += compute;
      smallLongest = Math.max(smallLongest, compute);
      smallBytes += layer.elements * b;
      smallCount++;
      continue;
    }
    shared = true;
    const fromMemory = layer.elements * b <= c.cpuCacheBytes ? 1 : k;
    seconds += inCache ? compute : Math.max(compute, (fromMemory * layer.elements * b) / stream(t));
  }
  // Small layers side by side: the threads share the work, and the longest layer is a floor.
  if (smallCount > 1) shared = true;
  seconds += Math.max(smallWork / threads, smallLongest, inCache ? 0 : smallBytes / stream(threads));
  // Divisions: chunks over every thread; read W and write out from and to memory when the job does not fit.
  const divided = job.layers.reduce((sum, l) => sum + (l.divide ? l.elements : 0), 0);
  const chunks = job.layers.reduce((sum, l) => sum + (l.divide ? Math.ceil(l.elements / CPU_ELEMENTS_PER_THREAD) : 0), 0);
  if (chunks > 1) shared = true;
  if (divided > 0) {
    const largestChunk = Math.min(CPU_ELEMENTS_PER_THREAD, Math.max(...job.layers.map((l) => (l.divide ? l.elements : 0))));
    const compute = Math.max(divided / (c.cpuDivideElementsPerSecond * threads), largestChunk / c.cpuDivideElementsPerSecond);
    seconds += Math.max(compute, inCache ? 0 : (2 * divided * b) / stream(threads));
  }
  return seconds + (shared && threads > 1 ? c.cpuWakeSeconds : 0);
}

/**
 * cuda on host arrays: the call, launches for the iterations beyond the first, the weights up and W/σ down at the
 * rate a host-array job achieves (at most the pinned bandwidth), and the sweeps and division at the device's
 * bandwidth. Copies and kernels are summed, not overlapped: a batch's results go back only once its status is known.
 */
export function predictCuda(job: CostedJob, c: CudaCostConstants): number {
  const b = bytesPerElement(job.dtype);
  const up = Math.min(c.cudaHostToDeviceBytesPerSecond, c.cudaHostArrayBytesPerSecond);
  const down = Math.min(c.cudaDeviceToHostBytesPerSecond, c.cudaHostArrayBytesPerSecond);
  let seconds = c.cudaCallSeconds + (job.layers.length - 1) * c.cudaLayerSeconds;
  let longest = 1;
  for (const layer of job.layers) {
    const k = passes(layer, job);
    longest = Math.max(longest, k);
    const bytes = layer.elements * b;
    seconds += bytes / up + (k * bytes) / c.cudaDeviceBytesPerSecond;
    if (layer.divide) seconds += bytes / down + (2 * bytes) / c.cudaDeviceBytesPerSecond;
  }
  // The calibration call ran one iteration: each further one costs a sweep launch and a finish launch.
  return seconds + (longest - 1) * CUDA_LAUNCHES_PER_ITERATION * c.cudaLaunchSeconds;
}

/** Kernel launches per power iteration on cuda (a sweep and its reduction). */
export const CUDA_LAUNCHES_PER_ITERATION = 2;

export type Predictions = Partial<Record<BackendName, number>>;

/** Predicted seconds on each backend that can run the job; cuda only with its constants. */
export function predict(job: CostedJob, c: CostConstants, available: readonly BackendName[]): Predictions {
  const out: Predictions = {};
  if (available.includes('cpu')) out.cpu = predictCpu(job, c);
  if (available.includes('js')) out.js = predictJs(job, c);
  if (available.includes('cuda') && hasCudaConstants(c)) out.cuda = predictCuda(job, c);
  return out;
}

export function hasCudaConstants(c: CostConstants): c is HostCostConstants & CudaCostConstants {
  return CUDA_CONSTANT_NAMES.every((name) => c[name] !== undefined);
}

/** Ties go to the first of these: the native backends, whose event loop stays free. */
const PREFERENCE: readonly BackendName[] = ['cpu', 'cuda', 'js'];

/**
 * The rule: a job on DeviceWeights runs on cuda; any other runs on the available backend predicted to finish
 * first. `available` must not be empty; cuda is a candidate only with its constants, so an uncosted GPU is never
 * chosen for host arrays.
 */
export function cheapestBackend(job: CostedJob, c: CostConstants, available: readonly BackendName[]): BackendName {
  if (job.onDevice) {
    if (!available.includes('cuda')) throw new Error('a job on DeviceWeights needs the cuda backend');
    return 'cuda';
  }
  const predicted = predict(job, c, available);
  let best: BackendName | null = null;
  for (const name of PREFERENCE) {
    const seconds = predicted[name];
    if (seconds !== undefined && (best === null || seconds < predicted[best]!)) best = name;
  }
  if (best === null) throw new Error(`no backend can be costed among ${available.join(', ')}`);
  return best;
}
