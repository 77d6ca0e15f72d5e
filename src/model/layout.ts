/**
 * Every backend keeps all parameters in ONE flat array (and gradients and optimizer state in
 * arrays of the same layout), so that clipping and the optimizer are one pass over one buffer on
 * the GPU, and the CPU reference can be compared with it element by element. The layout itself
 * (PyTorch's names and shapes, 64-element aligned tensors) is src/cpu/stacked.ts's stackedLayout:
 * one layout for every cell and depth.
 */
import type { ModelConfig } from './config.ts';
import { fullModelConfig } from './config.ts';
import { stackedLayout, type StackedLayout, type StackedSlot } from '../cpu/stacked.ts';
export { ALIGN, alignUp } from './align.ts';

export type ParamLayout = StackedLayout;
export type TensorSlot = StackedSlot;

export function paramLayout(config: ModelConfig): ParamLayout {
  return stackedLayout(fullModelConfig(config));
}
