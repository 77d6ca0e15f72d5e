/**
 * The CPU reference for stacked recurrent networks (rnn, lstm, gru; `layers` >= 1) with dropout
 * between layers, trained with full backpropagation through time over a chunk of T steps for B
 * sequences side by side. The cells themselves are in src/cpu/cells.ts; this file is the layer
 * and time loops, the parameter layout, the dropout mask, the output layer and the loss.
 *
 *   x^0_t = onehot(token_t)                       (so W_ih x is a column gather)
 *   h^l_t = cell_l(x^l_t, h^l_{t-1} [, c^l_{t-1}])
 *   x^{l+1}_t = dropout_l(h^l_t)                   (l = 0 .. L-2: between layers)
 *   y_t = W_dec dropout_{L-1}(h^{L-1}_t) + b_dec   (the top layer's output, like char-rnn)
 *   loss = mean over the T*B positions of -log softmax(y_t)[target_t]   (nats per token)
 *
 * Dropout touches only what goes UP (and into the decoder), never the recurrent h or c carried
 * from step to step: PyTorch's nn.LSTM(dropout=p) between layers plus char-rnn's dropout before
 * the decoder. It is inverted dropout with an explicit mask (see dropoutMask): evaluation passes
 * no mask. Layout: position p = t*B + b (time-major), as in src/cpu/rnn.ts's Chunk; states are
 * [L*B*H], layer-major like PyTorch's h_0 / c_0 of shape [L, B, H].
 */
import type { FloatArray, FloatArrayConstructor } from '../model/init.ts';
import { ALIGN, alignUp } from '../model/align.ts';
import { Rng, uniformAt } from '../util/random.ts';
import {
  GATES, SAVED, cellPointwise, cellPointwiseBackward, gatePreactivations, gatePreactivationsBackward, hasCellState,
  type LayerInput, type LayerTensors, type StackedCell,
} from './cells.ts';
import { axpy, dot, softmaxNorm, type Chunk } from './rnn.ts';

export type { StackedCell } from './cells.ts';

export interface StackedConfig {
  cell: StackedCell;
  /** Number of tokens (characters or words). */
  vocabSize: number;
  hiddenSize: number;
  /** Recurrent layers stacked (>= 1). */
  layers: number;
  /** Dropout probability in [0, 1) between layers and before the decoder; training only. */
  dropout: number;
}

export function validateStackedConfig(config: StackedConfig): void {
  const { cell, vocabSize: V, hiddenSize: H, layers: L, dropout: p } = config;
  if (!(cell in GATES)) throw new Error(`unknown cell '${cell}'`);
  for (const [name, n] of [['vocabSize', V], ['hiddenSize', H], ['layers', L]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be an integer >= 1, got ${n}`);
  }
  if (!(p >= 0 && p < 1)) throw new Error(`dropout must be in [0, 1), got ${p}`);
}

// ---------------------------------------------------------------------------------------------
// Parameter layout: PyTorch's names and shapes, one flat array, 64-element aligned offsets.

export interface StackedSlot {
  /** PyTorch's state_dict name: rnn.weight_ih_l0, ..., decoder.weight, decoder.bias. */
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export interface StackedLayerSlots {
  weightIh: StackedSlot;
  weightHh: StackedSlot;
  biasIh: StackedSlot;
  biasHh: StackedSlot;
  /** Columns of weight_ih: V for layer 0, H above. */
  inputSize: number;
}

export interface StackedLayout {
  /** In order: for each layer l, weight_ih_l, weight_hh_l, bias_ih_l, bias_hh_l; then decoder.weight, decoder.bias. */
  slots: StackedSlot[];
  byName: Record<string, StackedSlot>;
  layers: StackedLayerSlots[];
  decoderWeight: StackedSlot;
  decoderBias: StackedSlot;
  /** Total length of the flat array, padding included (padding stays zero, its gradient is zero). */
  length: number;
}

/**
 * Row-major tensors with PyTorch's shapes, each starting on a 64-element (256-byte) boundary as in
 * src/model/layout.ts (WebGPU's minimum storage-buffer offset alignment):
 *   rnn.weight_ih_l{k} [G*H, In_k]   (In_0 = V, In_k = H for k > 0; G = 1 rnn, 4 lstm, 3 gru)
 *   rnn.weight_hh_l{k} [G*H, H]
 *   rnn.bias_ih_l{k}   [G*H]
 *   rnn.bias_hh_l{k}   [G*H]
 *   decoder.weight     [V, H]
 *   decoder.bias       [V]
 * Gate blocks within the G*H rows are in PyTorch's order: lstm i, f, g, o; gru r, z, n.
 */
export function stackedLayout(config: StackedConfig): StackedLayout {
  validateStackedConfig(config);
  const { vocabSize: V, hiddenSize: H, layers: L } = config;
  const G = GATES[config.cell];
  const slots: StackedSlot[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]): StackedSlot => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slot = { name, shape, offset, size };
    slots.push(slot);
    offset = alignUp(offset + size, ALIGN);
    return slot;
  };
  const layers: StackedLayerSlots[] = [];
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

export function view(array: FloatArray, slot: StackedSlot): FloatArray {
  return array.subarray(slot.offset, slot.offset + slot.size);
}

/** A layer's four tensors as views into `array` (the parameters or a gradient of the same layout). */
export function layerTensors(layout: StackedLayout, l: number, array: FloatArray): LayerTensors {
  const s = layout.layers[l];
  return { wIh: view(array, s.weightIh), wHh: view(array, s.weightHh), bIh: view(array, s.biasIh), bHh: view(array, s.biasHh), inputSize: s.inputSize };
}

/**
 * PyTorch's initialisation of nn.RNN / nn.LSTM / nn.GRU and nn.Linear(H, V): EVERY tensor,
 * biases included, uniform in [-1/sqrt(H), 1/sqrt(H)] (nn.Linear's bound is 1/sqrt(fan_in) =
 * 1/sqrt(H) too), drawn slot by slot in layout order from Rng(seed). Then, for the LSTM, the
 * forget gate's bias is set to 1 (Gers et al.; Jozefowicz et al. 2015): bias_ih's f block = 1 and
 * bias_hh's f block = 0, so the gate's total bias is exactly 1.
 */
export function initStackedParams(config: StackedConfig, seed: number, Float: FloatArrayConstructor = Float32Array): FloatArray {
  const layout = stackedLayout(config);
  const H = config.hiddenSize;
  const params = new Float(layout.length);
  const rng = new Rng(seed);
  const k = 1 / Math.sqrt(H);
  for (const slot of layout.slots) {
    for (let i = 0; i < slot.size; i++) params[slot.offset + i] = (2 * rng.next() - 1) * k;
  }
  if (config.cell === 'lstm') {
    for (const s of layout.layers) {
      view(params, s.biasIh).fill(1, H, 2 * H);
      view(params, s.biasHh).fill(0, H, 2 * H);
    }
  }
  return params;
}

// ---------------------------------------------------------------------------------------------
// States and the dropout mask.

export interface StackedState {
  /** [L*B*H], layer-major: h[(l*B + b)*H + k]. */
  h: FloatArray;
  /** The LSTM's memory cells, same shape; null for rnn and gru. */
  c: FloatArray | null;
}

export function zeroState(config: StackedConfig, batchSize: number, Float: FloatArrayConstructor = Float32Array): StackedState {
  const n = config.layers * batchSize * config.hiddenSize;
  return { h: new Float(n), c: hasCellState(config.cell) ? new Float(n) : null };
}

/** Elements of a dropout mask: L sites (the output of each layer, as seen from above) x T x B x H. */
export function dropoutMaskLength(config: StackedConfig, seqLength: number, batchSize: number): number {
  return config.layers * seqLength * batchSize * config.hiddenSize;
}

/**
 * The inverted-dropout mask for one training iteration, [L][T][B][H]: element
 *   m = ((s*T + t)*B + b)*H + k
 * multiplies unit k of layer s's output h^s_t of sequence b on its way up (into layer s+1, or into
 * the decoder for s = L-1). Each element is 0 or 1/(1-p):
 *
 *   u = uniformAt(seed, iteration, m)     (src/util/random.ts: 24-bit u = j / 2^24)
 *   keep  <=>  u >= p                     (so P(keep) = 1 - p, up to 2^-24)
 *
 * For a GPU twin: u >= p  <=>  j >= ceil(p * 2^24) with j = pcgHash(...) >>> 8, an integer
 * comparison that the host can hand over as a u32, so both sides keep the same elements without
 * any float rounding question; the kept value is 1/(1-p) rounded to the array's type. `seed`
 * should be the run's dropout seed (not the sampler's), `iteration` the training step (u32);
 * m must stay below 2^32.
 */
export function dropoutMask(
  config: StackedConfig, seqLength: number, batchSize: number, seed: number, iteration: number, Float: FloatArrayConstructor = Float32Array,
): FloatArray {
  const n = dropoutMaskLength(config, seqLength, batchSize);
  if (n > 2 ** 32) throw new Error('dropout mask has more than 2^32 elements');
  const p = config.dropout;
  const scale = 1 / (1 - p);
  const mask = new Float(n);
  for (let m = 0; m < n; m++) mask[m] = uniformAt(seed, iteration, m) >= p ? scale : 0;
  return mask;
}

// ---------------------------------------------------------------------------------------------
// Forward and backward.

export interface StackedResult {
  /** Mean cross-entropy over the chunk, nats per token. */
  loss: number;
  /** Same flat layout as the parameters (stackedLayout). */
  grads: FloatArray;
  /** State after the last step [L*B*H]: the next chunk's initial state. */
  hLast: FloatArray;
  cLast: FloatArray | null;
  /** Gradient of the loss with respect to the initial state [L*B*H]. */
  dh0: FloatArray;
  dc0: FloatArray | null;
}

/** What the forward pass keeps for the backward pass, per layer l. */
interface Tape {
  config: StackedConfig;
  layout: StackedLayout;
  chunk: Chunk;
  mask: FloatArray | null;
  Float: FloatArrayConstructor;
  /** Layer l's input: tokens for l = 0, else dropout(h^{l-1}) [T*B*H]. */
  inputs: LayerInput[];
  /** hs[l][(t+1)*B + b] is h^l_t of sequence b (rows of H); the first B rows are h0. */
  hs: FloatArray[];
  /** Same for c (LSTM; empty arrays otherwise). */
  cs: FloatArray[];
  /** saved[l][t*B + b]: the cell's SAVED*H floats for the backward step. */
  saved: FloatArray[];
  /** The decoder's input, dropout(h^{L-1}) [T*B*H]. */
  top: FloatArray;
}

function checkShapes(config: StackedConfig, layout: StackedLayout, params: FloatArray, state0: StackedState, chunk: Chunk, mask: FloatArray | null): void {
  const { seqLength: T, batchSize: B } = chunk;
  const n = config.layers * B * config.hiddenSize;
  if (params.length !== layout.length) throw new Error(`params has ${params.length} elements, layout ${layout.length}`);
  if (chunk.inputs.length !== T * B || chunk.targets.length !== T * B) throw new Error('chunk inputs/targets must have T*B tokens');
  if (state0.h.length !== n) throw new Error(`h0 must have L*B*H = ${n} elements`);
  if (hasCellState(config.cell) ? state0.c?.length !== n : state0.c !== null) throw new Error(`c0 must be [L*B*H] for lstm, null otherwise`);
  if (mask && mask.length !== dropoutMaskLength(config, T, B)) throw new Error('dropout mask must be [L*T*B*H]');
}

/** The forward pass; `mask` null means no dropout (evaluation). */
function forward(
  config: StackedConfig, params: FloatArray, state0: StackedState, chunk: Chunk, mask: FloatArray | null, Float: FloatArrayConstructor,
): { loss: number; tape: Tape } {
  const layout = stackedLayout(config);
  checkShapes(config, layout, params, state0, chunk, mask);
  const { cell, vocabSize: V, hiddenSize: H, layers: L } = config;
  const { inputs: tokens, targets, seqLength: T, batchSize: B } = chunk;
  const G = GATES[cell], S = SAVED[cell], lstm = hasCellState(cell);
  const N = T * B;
  const row = (a: FloatArray, index: number, width: number) => a.subarray(index * width, (index + 1) * width);
  const gi = new Float64Array(G * H);
  const gh = new Float64Array(G * H);

  const inputs: LayerInput[] = [{ tokens }];
  const hs: FloatArray[] = [], cs: FloatArray[] = [], saved: FloatArray[] = [];
  let top = new Float(0);
  for (let l = 0; l < L; l++) {
    const w = layerTensors(layout, l, params);
    const h = new Float((T + 1) * B * H);
    const c = new Float(lstm ? (T + 1) * B * H : 0);
    const sv = new Float(N * S * H);
    h.set(state0.h.subarray(l * B * H, (l + 1) * B * H));
    if (state0.c) c.set(state0.c.subarray(l * B * H, (l + 1) * B * H));
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) {
        const p = t * B + b;
        const hIn = row(h, p, H), hOut = row(h, B + p, H);
        gatePreactivations(w, G * H, H, inputs[l], p, hIn, gi, gh);
        cellPointwise(cell, H, gi, gh, hIn, lstm ? row(c, p, H) : c, hOut, lstm ? row(c, B + p, H) : c, row(sv, p, S * H));
      }
    }
    hs.push(h);
    cs.push(c);
    saved.push(sv);
    // What goes up: dropout(h^l_t) for every position, into layer l+1 or the decoder.
    const up = h.slice(B * H);
    if (mask) for (let m = 0; m < N * H; m++) up[m] *= mask[l * N * H + m];
    if (l + 1 < L) inputs.push({ x: up });
    else top = up;
  }

  // Output layer and cross-entropy for every position.
  const wDec = view(params, layout.decoderWeight), bDec = view(params, layout.decoderBias);
  const logits = new Float(V);
  let loss = 0;
  for (let p = 0; p < N; p++) {
    for (let v = 0; v < V; v++) logits[v] = bDec[v] + dot(wDec, v * H, top, p * H, H);
    const { max, sum } = softmaxNorm(logits);
    loss += Math.log(sum) - (logits[targets[p]] - max);
  }
  return { loss: loss / N, tape: { config, layout, chunk, mask, Float, inputs, hs, cs, saved, top } };
}

function lastState(tape: Tape): { hLast: FloatArray; cLast: FloatArray | null } {
  const { config, chunk, hs, cs, Float } = tape;
  const { seqLength: T, batchSize: B } = chunk;
  const n = B * config.hiddenSize;
  const hLast = new Float(config.layers * n);
  const cLast = hasCellState(config.cell) ? new Float(config.layers * n) : null;
  for (let l = 0; l < config.layers; l++) {
    hLast.set(hs[l].subarray(T * n), l * n);
    cLast?.set(cs[l].subarray(T * n), l * n);
  }
  return { hLast, cLast };
}

function backward(tape: Tape, params: FloatArray): { grads: FloatArray; dh0: FloatArray; dc0: FloatArray | null } {
  const { config, layout, chunk, mask, Float, inputs, hs, cs, saved, top } = tape;
  const { cell, vocabSize: V, hiddenSize: H, layers: L } = config;
  const { targets, seqLength: T, batchSize: B } = chunk;
  const G = GATES[cell], S = SAVED[cell], lstm = hasCellState(cell);
  const N = T * B;
  const row = (a: FloatArray, index: number, width: number) => a.subarray(index * width, (index + 1) * width);
  const grads = new Float(layout.length);

  // Output layer: dy = (softmax(y) - onehot(target)) / N; dW_dec += dy top^T; d(top) = W_dec^T dy.
  const wDec = view(params, layout.decoderWeight), bDec = view(params, layout.decoderBias);
  const dwDec = view(grads, layout.decoderWeight), dbDec = view(grads, layout.decoderBias);
  const logits = new Float(V);
  let dAbove = new Float(N * H); // dL/d(what layer l sent up), per position
  for (let p = 0; p < N; p++) {
    for (let v = 0; v < V; v++) logits[v] = bDec[v] + dot(wDec, v * H, top, p * H, H);
    const { max, sum } = softmaxNorm(logits);
    for (let v = 0; v < V; v++) {
      const dy = (Math.exp(logits[v] - max) / sum - (v === targets[p] ? 1 : 0)) / N;
      dbDec[v] += dy;
      axpy(dy, top, p * H, dwDec, v * H, H);
      axpy(dy, wDec, v * H, dAbove, p * H, H);
    }
  }

  const dh0 = new Float(L * B * H);
  const dc0 = lstm ? new Float(L * B * H) : null;
  const dgi = new Float(G * H), dgh = new Float(G * H);
  const dhOut = new Float64Array(H);
  for (let l = L - 1; l >= 0; l--) {
    // Through this layer's dropout: dL/dh^l_t from above.
    if (mask) for (let m = 0; m < N * H; m++) dAbove[m] *= mask[l * N * H + m];
    const w = layerTensors(layout, l, params), dw = layerTensors(layout, l, grads);
    const h = hs[l], c = cs[l], sv = saved[l];
    const dx = l > 0 ? new Float(N * H) : null; // dL/d(this layer's input), for the layer below
    // dnext[b] carries dL/dh^l_t (and dcnext dL/dc^l_t) from step t+1 into step t; zero after the last step.
    const dnext = new Float(B * H);
    const dcnext = new Float(lstm ? B * H : 0);
    for (let t = T - 1; t >= 0; t--) {
      for (let b = 0; b < B; b++) {
        const p = t * B + b;
        const dh = row(dnext, b, H);
        for (let k = 0; k < H; k++) dhOut[k] = dAbove[p * H + k] + dh[k];
        // dh (= dnext[b]) now becomes dL/dh^l_{t-1}: the cell's direct term, then + W_hh^T dgh.
        const dc = lstm ? row(dcnext, b, H) : dcnext; // read as dL/dc_t, overwritten in place with dL/dc_{t-1}
        cellPointwiseBackward(
          cell, H, row(sv, p, S * H), row(h, p, H), lstm ? row(c, p, H) : c, row(h, B + p, H), lstm ? row(c, B + p, H) : c,
          dhOut, dc, dgi, dgh, dh, dc,
        );
        gatePreactivationsBackward(w, dw, G * H, H, inputs[l], p, row(h, p, H), dgi, dgh, dh, dx ? row(dx, p, H) : null);
      }
    }
    dh0.set(dnext, l * B * H);
    dc0?.set(dcnext, l * B * H);
    if (dx) dAbove = dx;
  }
  return { grads, dh0, dc0 };
}

/**
 * Loss, gradients for every tensor (stackedLayout's flat array), the final state and the gradient
 * with respect to the initial state, for one chunk. `dropoutMask` is [L*T*B*H] (see dropoutMask)
 * for training with dropout, or null for none.
 */
export function stackedForwardBackward(
  config: StackedConfig, params: FloatArray, state0: StackedState, chunk: Chunk,
  dropoutMask: FloatArray | null = null, Float: FloatArrayConstructor = Float32Array,
): StackedResult {
  const { loss, tape } = forward(config, params, state0, chunk, dropoutMask, Float);
  const { grads, dh0, dc0 } = backward(tape, params);
  return { loss, grads, ...lastState(tape), dh0, dc0 };
}

/** Loss and final state only (validation, finite differences): the forward half. */
export function stackedLoss(
  config: StackedConfig, params: FloatArray, state0: StackedState, chunk: Chunk,
  dropoutMask: FloatArray | null = null, Float: FloatArrayConstructor = Float32Array,
): { loss: number; hLast: FloatArray; cLast: FloatArray | null } {
  const { loss, tape } = forward(config, params, state0, chunk, dropoutMask, Float);
  return { loss, ...lastState(tape) };
}
