// The GPU benchmarks' one timing loop: an SN step of a workload's layers on the cuda backend with device-resident
// weights, timed with CUDA events on the addon's stream (the median after warm-up).
import type { NativeAddon } from '../binding';
import { SpectralNormBatch } from '../lib';
import { elements, fixedWeight } from './networks';

export interface DeviceStepTiming {
  medianMs: number;
  /** The bytes a fused step moves: (k + 2)·|W|. */
  bytes: number;
}

export function timeDeviceStep(addon: NativeAddon, device: number, shapes: number[][], iterations: number): DeviceStepTiming {
  const batch = new SpectralNormBatch(
    shapes.map((shape, i) => ({ shape, seed: i })),
    { backend: 'cuda', device, iterations },
  );
  const handle = batch.toDevice(shapes.map((s, i) => fixedWeight('float32', elements(s), i + 1)));
  try {
    for (let i = 0; i < 10; i++) batch.step(handle);
    const samples: number[] = [];
    for (let s = 0; s < 31; s++) samples.push(addon.internal.cudaTime(device, () => batch.step(handle)));
    samples.sort((a, b) => a - b);
    const bytes = (iterations + 2) * 4 * shapes.reduce((a, s) => a + elements(s), 0);
    return { medianMs: samples[samples.length >> 1], bytes };
  } finally {
    handle.dispose();
  }
}
