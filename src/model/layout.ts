import type { ModelConfig } from './config.ts';

/**
 * Every backend keeps all parameters in ONE flat array (and gradients and optimizer state in
 * arrays of the same layout), so that clipping and the optimizer are one pass over one buffer on
 * the GPU, and the CPU reference can be compared with it element by element.
 * Tensors start on 64-element (256-byte) boundaries: WebGPU's minimum storage-buffer offset
 * alignment, so a kernel may also bind one tensor on its own. Padding stays zero forever
 * (its gradient is zero, so neither optimizer moves it).
 */
export interface TensorSlot {
  /** Our name; `torchName` is what PyTorch's nn.RNN / nn.Linear call it in a checkpoint. */
  name: ParamName;
  torchName: string;
  shape: number[];
  offset: number;
  size: number;
}

export type ParamName = 'Wxh' | 'Whh' | 'bh' | 'Why' | 'by';

export interface ParamLayout {
  slots: TensorSlot[];
  byName: Record<ParamName, TensorSlot>;
  /** Total length of the flat array, padding included. */
  length: number;
}

export const ALIGN = 64;

export function alignUp(n: number, a = ALIGN): number {
  return Math.ceil(n / a) * a;
}

export function paramLayout(config: ModelConfig): ParamLayout {
  const { vocabSize: V, hiddenSize: H } = config;
  // Row-major, PyTorch's shapes: weight_ih_l0 is [H, V], weight_hh_l0 [H, H], the output Linear [V, H].
  const specs: [ParamName, string, number[]][] = [
    ['Wxh', 'rnn.weight_ih_l0', [H, V]],
    ['Whh', 'rnn.weight_hh_l0', [H, H]],
    ['bh', 'rnn.bias_ih_l0', [H]],
    ['Why', 'decoder.weight', [V, H]],
    ['by', 'decoder.bias', [V]],
  ];
  const slots: TensorSlot[] = [];
  let offset = 0;
  for (const [name, torchName, shape] of specs) {
    const size = shape.reduce((a, b) => a * b, 1);
    slots.push({ name, torchName, shape, offset, size });
    offset = alignUp(offset + size);
  }
  const byName = Object.fromEntries(slots.map((s) => [s.name, s])) as Record<ParamName, TensorSlot>;
  return { slots, byName, length: offset };
}
