import type { ModelConfig } from './config.ts';
import { fullModelConfig } from './config.ts';
import { initStackedParams } from '../cpu/stacked.ts';

export type FloatArray = Float32Array | Float64Array;
export type FloatArrayConstructor = Float32ArrayConstructor | Float64ArrayConstructor;

/** PyTorch's initialisation for every cell (see initStackedParams: uniform +-1/sqrt(H), LSTM forget bias 1). */
export function initParams(config: ModelConfig, seed: number, Float: FloatArrayConstructor = Float32Array): FloatArray {
  return initStackedParams(fullModelConfig(config), seed, Float);
}
