/**
 * The buffers of a training iteration on the GPU (the first half of its plan, src/gpu/plan.ts),
 * apart so that the memory estimate (src/gpu/memory.ts, which the web page's main thread uses)
 * does not pull in the shaders.
 */
import { GATES, hasCellState, SAVED } from '../model/cells.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';

/** column_sum.wgsl's workgroup size (src/gpu/kernels/column_sum.ts): what bounds the columns one dispatch sums. */
export const COLUMN_SUM_WG = 64;

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

/** The device limits a plan depends on beyond the grid: how large a storage binding may be, and where it may start. */
export interface BindingLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** Absent: WebGPU's default, 256 bytes (what a device gets unless it asks for less, as ours do not). */
  minStorageBufferOffsetAlignment?: number;
  /** Absent: WebGPU's default, 65535. */
  maxComputeWorkgroupsPerDimension?: number;
}

/**
 * How the split plan spreads what exceeds one storage binding (src/gpu/plan.ts). Chosen when any
 * buffer of the ordinary plan does not fit one binding (the parameters, and so the gradients and
 * moments, each as large; the transposed W_hh copies; the per-layer activations of a deep model):
 * then every dispatch binds only the window of the buffers it touches, no transposed copy is kept, each step's W_hh h_{t-1} and W_hh^T dgh_{t+1} are matmuls over
 * ranges of whhChunkRows rows of W_hh (one window each), and the optimizer runs in optChunks
 * dispatches of at most optChunkWords words. Undefined: the ordinary plan.
 */
export interface SplitPlan {
  /** The largest binding in words, and the alignment of a binding's start in words. */
  bindWords: number;
  alignWords: number;
  whhChunkRows: number;
  whhChunks: number;
  /**
   * Above layer 0, W_ih [G*H, H] is split as W_hh is; dL/dx = dgi W_ih is then whhChunks partial
   * products per range of dxRows positions, summed by column_sum (its grid and one binding bound
   * dxRows).
   */
  dxRows: number;
  /** Layer 0's W_ih [G*H, V] in ranges of wih0Rows rows (input_gather by rows, embedding_grad main_rows); one range where it fits. */
  wih0Rows: number;
  wih0Chunks: number;
  optChunkWords: number;
  optChunks: number;
}

/** The binding limit in bytes: the smaller of the two limits (a buffer, and so a binding, cannot exceed maxBufferSize). */
export function bindingLimit(limits: BindingLimits): number {
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
}

export function splitPlan(model: ModelConfig, train: TrainConfig, limits?: BindingLimits): SplitPlan | undefined {
  if (!limits) return undefined;
  const { cell, hiddenSize: H } = fullModelConfig(model);
  const GH = GATES[cell] * H;
  const P = paramLayout(model).length;
  const bindWords = Math.floor(bindingLimit(limits) / 4);
  if (planBuffers(model, train).every((b) => b.usage !== 'storage' || b.size <= 4 * bindWords)) return undefined;
  const alignWords = Math.max(1, Math.ceil((limits.minStorageBufferOffsetAlignment ?? 256) / 4));
  // A window of rows r0 .. r1 of W_hh starts up to alignWords - 1 words before row r0.
  const whhChunkRows = Math.max(1, Math.min(GH, Math.floor((bindWords - alignWords + 1) / H)));
  const optChunkWords = Math.max(alignWords, Math.floor(bindWords / alignWords) * alignWords);
  const whhChunks = Math.ceil(GH / whhChunkRows);
  const maxPerDim = limits.maxComputeWorkgroupsPerDimension ?? 65535;
  const dxRows = Math.max(1, Math.min(train.seqLength * train.batchSize, Math.floor((maxPerDim * COLUMN_SUM_WG) / H), Math.floor(bindWords / (whhChunks * H))));
  const V = model.vocabSize;
  const wih0Rows = GH * V <= bindWords ? GH : Math.max(1, Math.min(GH, Math.floor((bindWords - alignWords + 1) / V)));
  return { bindWords, alignWords, whhChunkRows, whhChunks, dxRows, wih0Rows, wih0Chunks: Math.ceil(GH / wih0Rows), optChunkWords, optChunks: Math.ceil(P / optChunkWords) };
}

/** The parameters' buffers, which the split plan binds in windows of tensors (splitWindows). */
export const WINDOWED_BUFFERS: readonly string[] = ['params', 'grads', 'optM', 'optV'];

/**
 * Buffers [L][...] that the split plan binds a layer (or less) at a time: words per layer. (hState
 * and cState are only copied, never bound.) Every other buffer is bound whole.
 */
export function perLayerWords(model: ModelConfig, train: TrainConfig): Record<string, number> {
  const { cell, hiddenSize: H } = fullModelConfig(model);
  const BH = train.batchSize * H, N = train.seqLength * train.batchSize;
  return { hAll: (train.seqLength + 1) * BH, cAll: (train.seqLength + 1) * BH, saved: N * SAVED[cell] * H, xUp: N * H, dState: 3 * BH, hState: 0, cState: 0 };
}

/**
 * The largest windows the split plan binds of the parameters' buffers, in words, by what they
 * hold (a phrase that starts a sentence): each must fit one binding (src/gpu/memory.ts: checkFits). One tensor or adjacent pair
 * per dispatch, an offset-aligned row range of W_hh, and a chunk of the optimizer.
 */
export function splitWindows(model: ModelConfig, split: SplitPlan): { holds: string; words: number }[] {
  // Above layer 0 W_ih is split by rows as W_hh is.
  const layout = paramLayout(model);
  const H = fullModelConfig(model).hiddenSize;
  const span = (lo: number, hi: number) => hi - Math.floor(lo / split.alignWords) * split.alignWords;
  return [
    ...layout.layers.flatMap((w, l) => [
      l > 0 ? { holds: `a row of layer ${l} W_ih`, words: H + split.alignWords - 1 }
        : split.wih0Chunks > 1 ? { holds: 'a row of layer 0 W_ih', words: model.vocabSize + split.alignWords - 1 }
        : { holds: 'the layer 0 W_ih', words: span(w.weightIh.offset, w.weightIh.offset + w.weightIh.size) },
      { holds: `the layer ${l} b_ih and b_hh`, words: span(w.biasIh.offset, w.biasHh.offset + w.biasHh.size) },
      { holds: `a row of layer ${l} W_hh`, words: H + split.alignWords - 1 },
    ]),
    { holds: 'the decoder weight and bias', words: span(layout.decoderWeight.offset, layout.decoderBias.offset + layout.decoderBias.size) },
  ];
}

/**
 * Dispatches per training iteration (src/gpu/plan.ts lists them): the formula `perStep.dispatches`
 * reports. The split plan (`limits` smaller than the parameters) adds, per layer, whhChunks
 * matmuls before each forward step and each backward step but the last (t = T-1) and whhChunks - 1
 * more for dW_hh, and optChunks - 1 more optimizer dispatches; above layer 0, with whhChunks > 1,
 * whhChunks - 1 more for gi and for dW_ih each, and (whhChunks + 1) per range of dxRows positions
 * for dL/dx instead of 1; and wih0Chunks - 1 more for layer 0's input_gather and embedding_grad each.
 */
export function dispatchesPerIteration(model: ModelConfig, train: TrainConfig, limits?: BindingLimits): number {
  const { layers: L, dropout } = fullModelConfig(model);
  const d = dropout > 0 ? 1 : 0;
  const T = train.seqLength;
  const split = splitPlan(model, train, limits);
  let extra = split ? L * split.whhChunks * (2 * T - 1 + 1) - L + split.optChunks - 1 + 2 * (split.wih0Chunks - 1) : 0;
  if (split && split.whhChunks > 1) {
    const c = split.whhChunks, ranges = Math.ceil((train.seqLength * train.batchSize) / split.dxRows);
    extra += (L - 1) * (2 * (c - 1) + ranges * (c + 1) - 1);
  }
  return L * (2 * T + 6) + 2 * d * L + 6 + extra;
}

/** Uniform structs in the arena: every dispatch's but the update's, and the dh0 dispatches of each layer (with their matmuls when split). */
function arenaSlots(model: ModelConfig, train: TrainConfig, limits?: BindingLimits): number {
  const split = splitPlan(model, train, limits);
  const L = fullModelConfig(model).layers;
  return dispatchesPerIteration(model, train, limits) - (split?.optChunks ?? 1) + L * (1 + (split?.whhChunks ?? 0));
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

/** Slots for the runs of distinct tokens in a chunk of N positions (input_gather.wgsl; positionsByToken's `runs` has one more word). */
export const runSlots = (N: number, V: number): number => Math.min(N, V);

/** Every buffer of training, by what it holds (no dispatches): what the memory estimate sums. */
export function planBuffers(model: ModelConfig, train: TrainConfig, limits?: BindingLimits): PlanBuffer[] {
  const split = splitPlan(model, train, limits);
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
  if (split) {
    // No transposed copies, of W_hh or of the decoder: the steps and the logits read params.
    words('whhT', unused, 'W_hh and decoder transposed (none: split plan, bound, unused)');
    words('gh', B * GH, 'recurrent projection of one step Bx(G*H)');
    words('dhPart', split.whhChunks * BH, `partial sums of W_hh^T dgh ${split.whhChunks}xBxH`);
    if (L > 1 && split.whhChunks > 1) words('dxPart', split.whhChunks * split.dxRows * H, `partial sums of dgi W_ih ${split.whhChunks}x${split.dxRows}xH`);
  } else {
    // 16 spare floats past the last layer: cell_forward's vec4 loads may read into them.
    words('whhT', decoderCopyPlace(model).words, 'W_hh transposed, Lx H x(G*H), and the decoder transposed, H x V, and its bias');
  }
  words('whhAt', L, "each layer's W_hh offset");
  // Whole vec4s: softmax_xent reads them through a vec4 view (kernels/softmax_xent.ts: softmaxLogitsWords).
  words('logits', Math.ceil((N * V) / 4) * 4, 'logits TxBxV');
  words('rowLoss', N, 'loss per position TxB');
  words('lossOut', 1, 'mean loss');
  words('inputs', N, 'input tokens TxB');
  words('targets', N, 'target tokens TxB');
  words('embStart', V + 1, "each token's first position");
  words('embPos', N, 'positions by token TxB');
  words('embRuns', runSlots(N, V) + 1, "each distinct token's first position in embPos");
  out.push({ name: 'uniforms', size: arenaSlots(model, train, limits) * UNIFORM_ALIGN, holds: 'uniform structs, one slot per dispatch', usage: 'uniform' });
  // One struct (96 bytes: kernels/optimizer.ts OPTIMIZER_UNIFORM_BYTES) per update dispatch, at UNIFORM_ALIGN strides.
  const optChunks = split?.optChunks ?? 1;
  out.push({ name: 'optimizerUniforms', size: (optChunks - 1) * UNIFORM_ALIGN + 96, holds: 'optimizer step', usage: 'uniform' });
  if (dropout > 0) out.push({ name: 'dropoutMask', size: 16, holds: 'dropout mask (seed, iteration)', usage: 'uniform' });
  for (let i = 0; i < LOSS_RING; i++) out.push({ name: `lossRing${i}`, size: 4, holds: 'loss read back', usage: 'readback' });
  return out;
}

