// spectral-norm/tfjs: spectral normalization for TensorFlow.js models, driven by this library's engine. Importing it
// registers SpectralNormalization with tf.serialization, so tf.loadLayersModel can read models that use it.
// @tensorflow/tfjs (4 or later) is an optional peer dependency: only this entry point loads it.
export { SpectralNormalization, type SpectralNormalizationArgs, type NormalizeWith } from './layer';
export { SpectralNormCallback, type SpectralNormCallbackOptions } from './callback';
