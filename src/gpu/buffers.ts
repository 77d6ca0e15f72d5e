/**
 * The buffers of a training iteration on the GPU (the first half of its plan, src/gpu/plan.ts),
 * apart so that the memory estimate (src/gpu/memory.ts, which the web page's main thread uses)
 * does not pull in the shaders.
 */
import { GATES, hasCellState, SAVED } from '../model/cells.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';

/** Uniform structs sit at this stride in the arena: WebGPU's largest minUniformBufferOffsetAlignment. */
export const UNIFORM_ALIGN = 256;
/** Staging buffers the loss is copied into, so the CPU reads iteration i while the GPU runs i + 1, i + 2. */
export const LOSS_RING = 3;

export type BufferUsage = 'storage' | 'uniform' | 'readback';

export interface PlanBuffer {
  name: string;
  /** Bytes to allocate. */
  size: number;
  /** What it holds, as messages name it ("the parameters buffer needs ..."). */
  holds: string;
  usage: BufferUsage;
  /** Contents written once at creation (the uniform arena, each layer's W_hh offset). */
  init?: ArrayBuffer;
}

/** Dispatches per training iteration (src/gpu/plan.ts lists them): the formula `perStep.dispatches` reports. */
export function dispatchesPerIteration(model: ModelConfig, train: TrainConfig): number {
  const { layers: L, dropout } = fullModelConfig(model);
  const d = dropout > 0 ? 1 : 0;
  return L * (2 * train.seqLength + 6) + 2 * d * L + 6;
}

/** Uniform structs in the arena: every dispatch's but the update's, and one dh0 dispatch per layer. */
function arenaSlots(model: ModelConfig, train: TrainConfig): number {
  return dispatchesPerIteration(model, train) - 1 + fullModelConfig(model).layers;
}

/**
 * Where whhT holds the decoder's transposed copy, which the logits product reads as a row-major B
 * (the vectorised matmul path): W_dec^T [H, ld] from word `off`, then the decoder bias as row H.
 * It follows the W_hh copies and their 16 spare floats; `off` and `ld` (V rounded up) are
 * multiples of 4, as vec4 loads need, and `words` covers whole vec4s.
 */
export function decoderCopyPlace(model: ModelConfig): { off: number; ld: number; words: number } {
  const { cell, hiddenSize: H, vocabSize: V, layers: L } = fullModelConfig(model);
  const off = Math.ceil((L * GATES[cell] * H * H + 16) / 4) * 4;
  const ld = Math.ceil(V / 4) * 4;
  return { off, ld, words: off + (H + 1) * ld };
}

/** Every buffer of training, by what it holds (no dispatches): what the memory estimate sums. */
export function planBuffers(model: ModelConfig, train: TrainConfig): PlanBuffer[] {
  const { cell, hiddenSize: H, vocabSize: V, layers: L, dropout } = fullModelConfig(model);
  const { seqLength: T, batchSize: B } = train;
  const G = GATES[cell], S = SAVED[cell], GH = G * H, lstm = hasCellState(cell);
  const N = T * B, BH = B * H;
  const P = paramLayout(model).length;
  const out: PlanBuffer[] = [];
  const words = (name: string, n: number, holds: string, usage: BufferUsage = 'storage') =>
    out.push({ name, size: Math.max(16, 4 * Math.ceil(n)), holds, usage });
  // Bound by the cell kernels whatever the cell (their layout is shared); 4 unused words then.
  const unused = 4;
  words('params', P, 'parameters');
  words('grads', P, 'gradients');
  words('optM', P, 'optimizer moment 1');
  words('optV', P, 'optimizer moment 2');
  words('hState', L * BH, 'carried hidden state LxBxH');
  if (lstm) words('cState', L * BH, 'carried memory cells LxBxH');
  words('hAll', L * (T + 1) * BH, 'hidden states Lx(T+1)xBxH');
  words('cAll', lstm ? L * (T + 1) * BH : unused, lstm ? 'memory cells Lx(T+1)xBxH' : 'memory cells (none: bound, unused)');
  words('saved', S ? L * N * S * H : unused, S ? `saved gates LxTxBx${S}H` : 'saved gates (none: bound, unused)');
  words('gi', N * GH, 'input projections TxBx(G*H)');
  words('dGi', N * GH, 'input-projection gradient TxBx(G*H)');
  words('dGh', N * GH, 'recurrent-projection gradient TxBx(G*H)');
  if (dropout > 0) words('xUp', L * N * H, 'dropped layer outputs LxTxBxH');
  words('dAbove', N * H, 'gradient from above TxBxH');
  if (dropout > 0) words('dAboveRaw', N * H, 'gradient before dropout TxBxH');
  words('dState', L * 3 * BH, 'backward state Lx3xBxH');
  // 16 spare floats past the last layer: cell_forward's vec4 loads may read into them.
  words('whhT', decoderCopyPlace(model).words, 'W_hh transposed, Lx H x(G*H), and the decoder transposed, H x V, and its bias');
  words('whhAt', L, "each layer's W_hh offset");
  // Whole vec4s: softmax_xent reads them through a vec4 view (kernels/softmax_xent.ts: softmaxLogitsWords).
  words('logits', Math.ceil((N * V) / 4) * 4, 'logits TxBxV');
  words('rowLoss', N, 'loss per position TxB');
  words('lossOut', 1, 'mean loss');
  words('inputs', N, 'input tokens TxB');
  words('targets', N, 'target tokens TxB');
  words('embStart', V + 1, "each token's first position");
  words('embPos', N, 'positions by token TxB');
  out.push({ name: 'uniforms', size: arenaSlots(model, train) * UNIFORM_ALIGN, holds: 'uniform structs, one slot per dispatch', usage: 'uniform' });
  out.push({ name: 'optimizerUniforms', size: 96, holds: 'optimizer step', usage: 'uniform' });
  if (dropout > 0) out.push({ name: 'dropoutMask', size: 16, holds: 'dropout mask (seed, iteration)', usage: 'uniform' });
  for (let i = 0; i < LOSS_RING; i++) out.push({ name: `lossRing${i}`, size: 4, holds: 'loss read back', usage: 'readback' });
  return out;
}

