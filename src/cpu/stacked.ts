/**
 * The CPU reference for stacked recurrent networks (rnn, lstm, gru; `layers` >= 1) with dropout
 * between layers, trained with full backpropagation through time over a chunk of T steps for B
 * sequences side by side. The cells themselves are in src/cpu/cells.ts; this file is the layer
 * and time loops, the output layer and the loss. The parameter layout, the initialisation and the
 * dropout mask rule are the model's (src/model/).
 *
 *   x^0_t = onehot(token_t)                       (so W_ih x is a column gather)
 *   h^l_t = cell_l(x^l_t, h^l_{t-1} [, c^l_{t-1}])
 *   x^{l+1}_t = dropout_l(h^l_t)                   (l = 0 .. L-2: between layers)
 *   y_t = W_dec dropout_{L-1}(h^{L-1}_t) + b_dec   (the top layer's output, like char-rnn)
 *   loss = mean over the T*B positions of -log softmax(y_t)[target_t]   (nats per token)
 *
 * Dropout touches only what goes UP (and into the decoder), never the recurrent h or c carried
 * from step to step: PyTorch's nn.LSTM(dropout=p) between layers plus char-rnn's dropout before
 * the decoder. It is inverted dropout with an explicit mask (src/model/dropout.ts): evaluation passes
 * no mask. Layout: position p = t*B + b (time-major), as in src/cpu/rnn.ts's Chunk; states are
 * [L*B*H], layer-major like PyTorch's h_0 / c_0 of shape [L, B, H].
 */
import { GATES, SAVED, hasCellState } from '../model/cells.ts';
import type { FullModelConfig } from '../model/config.ts';
import { dropoutMaskLength } from '../model/dropout.ts';
import { paramLayout, view, type FloatArray, type FloatArrayConstructor, type ParamLayout } from '../model/layout.ts';
import { cellPointwise, cellPointwiseBackward, gatePreactivations, gatePreactivationsBackward, type LayerInput, type LayerTensors } from './cells.ts';
import { axpy, dot, softmaxNorm, type Chunk } from './rnn.ts';

/** A layer's four tensors as views into `array` (the parameters or a gradient of the same layout). */
export function layerTensors(layout: ParamLayout, l: number, array: FloatArray): LayerTensors {
  const s = layout.layers[l];
  return { wIh: view(array, s.weightIh), wHh: view(array, s.weightHh), bIh: view(array, s.biasIh), bHh: view(array, s.biasHh), inputSize: s.inputSize };
}

export interface StackedState {
  /** [L*B*H], layer-major: h[(l*B + b)*H + k]. */
  h: FloatArray;
  /** The LSTM's memory cells, same shape; null for rnn and gru. */
  c: FloatArray | null;
}

export function zeroState(config: FullModelConfig, batchSize: number, Float: FloatArrayConstructor = Float32Array): StackedState {
  const n = config.layers * batchSize * config.hiddenSize;
  return { h: new Float(n), c: hasCellState(config.cell) ? new Float(n) : null };
}

// ---------------------------------------------------------------------------------------------
// Forward and backward.

export interface StackedResult {
  /** Mean cross-entropy over the chunk, nats per token. */
  loss: number;
  /** Same flat layout as the parameters (paramLayout). */
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
  config: FullModelConfig;
  layout: ParamLayout;
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

function checkShapes(config: FullModelConfig, layout: ParamLayout, params: FloatArray, state0: StackedState, chunk: Chunk, mask: FloatArray | null): void {
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
  config: FullModelConfig, params: FloatArray, state0: StackedState, chunk: Chunk, mask: FloatArray | null, Float: FloatArrayConstructor,
): { loss: number; tape: Tape } {
  const layout = paramLayout(config);
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
 * Loss, gradients for every tensor (paramLayout's flat array), the final state and the gradient
 * with respect to the initial state, for one chunk. `dropoutMask` is [L*T*B*H] (src/model/dropout.ts)
 * for training with dropout, or null for none.
 */
export function stackedForwardBackward(
  config: FullModelConfig, params: FloatArray, state0: StackedState, chunk: Chunk,
  dropoutMask: FloatArray | null = null, Float: FloatArrayConstructor = Float32Array,
): StackedResult {
  const { loss, tape } = forward(config, params, state0, chunk, dropoutMask, Float);
  const { grads, dh0, dc0 } = backward(tape, params);
  return { loss, grads, ...lastState(tape), dh0, dc0 };
}

/** Loss and final state only (validation, finite differences): the forward half. */
export function stackedLoss(
  config: FullModelConfig, params: FloatArray, state0: StackedState, chunk: Chunk,
  dropoutMask: FloatArray | null = null, Float: FloatArrayConstructor = Float32Array,
): { loss: number; hLast: FloatArray; cLast: FloatArray | null } {
  const { loss, tape } = forward(config, params, state0, chunk, dropoutMask, Float);
  return { loss, ...lastState(tape) };
}
