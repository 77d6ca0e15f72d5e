/**
 * The flat parameter layout. Every backend keeps all parameters in ONE flat array (and gradients
 * and optimizer state in arrays of the same layout), so that clipping and the optimizer are one
 * pass over one buffer on the GPU, and the CPU reference can be compared with it element by
 * element. The tensors carry PyTorch's names and shapes, so a checkpoint loads into nn.RNN /
 * nn.LSTM / nn.GRU + nn.Linear with load_state_dict:
 *   rnn.weight_ih_l{k} [G*H, In_k]   (In_0 = V, In_k = H for k > 0; G = 1 rnn, 4 lstm, 3 gru)
 *   rnn.weight_hh_l{k} [G*H, H]
 *   rnn.bias_ih_l{k}   [G*H]
 *   rnn.bias_hh_l{k}   [G*H]
 *   decoder.weight     [V, H]
 *   decoder.bias       [V]
 * Gate blocks within the G*H rows are in PyTorch's order: lstm i, f, g, o; gru r, z, n.
 */
import { GATES } from './cells.ts';
import { fullModelConfig, type ModelConfig } from './config.ts';

export type FloatArray = Float32Array | Float64Array;
export type FloatArrayConstructor = Float32ArrayConstructor | Float64ArrayConstructor;

/**
 * Tensors start on 64-element (256-byte) boundaries: WebGPU's minimum storage-buffer offset
 * alignment, so a kernel may also bind one tensor on its own. Padding stays zero forever (its
 * gradient is zero, so no optimizer moves it).
 */
export const ALIGN = 64;

export function alignUp(n: number, a = ALIGN): number {
  return Math.ceil(n / a) * a;
}

export interface TensorSlot {
  /** PyTorch's state_dict name: rnn.weight_ih_l0, ..., decoder.weight, decoder.bias. */
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export interface LayerSlots {
  weightIh: TensorSlot;
  weightHh: TensorSlot;
  biasIh: TensorSlot;
  biasHh: TensorSlot;
  /** Columns of weight_ih: V for layer 0, H above. */
  inputSize: number;
}

export interface ParamLayout {
  /** In order: for each layer l, weight_ih_l, weight_hh_l, bias_ih_l, bias_hh_l; then decoder.weight, decoder.bias. */
  slots: TensorSlot[];
  byName: Record<string, TensorSlot>;
  layers: LayerSlots[];
  decoderWeight: TensorSlot;
  decoderBias: TensorSlot;
  /** Total length of the flat array, padding included (padding stays zero, its gradient is zero). */
  length: number;
}

export function paramLayout(model: ModelConfig): ParamLayout {
  const { vocabSize: V, hiddenSize: H, layers: L, cell } = fullModelConfig(model);
  const G = GATES[cell];
  const slots: TensorSlot[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]): TensorSlot => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slot = { name, shape, offset, size };
    slots.push(slot);
    offset = alignUp(offset + size);
    return slot;
  };
  const layers: LayerSlots[] = [];
  for (let l = 0; l < L; l++) {
    const inputSize = l === 0 ? V : H;
    layers.push({
      weightIh: add(`rnn.weight_ih_l${l}`, [G * H, inputSize]),
      weightHh: add(`rnn.weight_hh_l${l}`, [G * H, H]),
      biasIh: add(`rnn.bias_ih_l${l}`, [G * H]),
      biasHh: add(`rnn.bias_hh_l${l}`, [G * H]),
      inputSize,
    });
  }
  const decoderWeight = add('decoder.weight', [V, H]);
  const decoderBias = add('decoder.bias', [V]);
  const byName = Object.fromEntries(slots.map((s) => [s.name, s]));
  return { slots, byName, layers, decoderWeight, decoderBias, length: offset };
}

/** Trainable numbers in the model (the flat layout's alignment padding not counted). */
export function parameterCount(model: ModelConfig): number {
  return paramLayout(model).slots.reduce((n, s) => n + s.size, 0);
}

/** One tensor of a flat array (the parameters, a gradient or an optimizer moment). */
export function view<A extends FloatArray>(array: A, slot: TensorSlot): A {
  return array.subarray(slot.offset, slot.offset + slot.size) as A;
}
