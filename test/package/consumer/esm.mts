// Type-checked by test/package/run.sh as an ES module (`--module nodenext`): the exports map's types.
import { SpectralNormalizer, backendInfo, spectralNorm } from 'spectral-norm';

const sn = new SpectralNormalizer([3, 4]);
const sigma: number = sn.step(new Float32Array(12));
const backend: 'cpu' | 'cuda' | 'js' = backendInfo().auto;

export { backend, sigma, spectralNorm };
