/**
 * The CPU reference: a vanilla RNN trained with full backpropagation through time over a chunk
 * of T steps, for B sequences side by side. This file is the specification the WGSL kernels are
 * held to, so it is written to be read (min-char-rnn's algorithm, batched), and it runs in
 * float64 for the finite-difference gradient check or float32 to mirror the GPU.
 *
 *   h_t = tanh(Wxh[:, x_t] + Whh h_{t-1} + bh)      (Wxh x_t for a one-hot x_t is a column gather)
 *   y_t = Why h_t + by,   p_t = softmax(y_t)
 *   loss = mean over the T*B positions of -log p_t[target_t]   (nats per token)
 *
 * Layout: position p = t*B + b (time-major), so the B hidden states of one step are contiguous.
 */
import type { ModelConfig } from '../model/config.ts';
import { paramLayout, type ParamLayout } from '../model/layout.ts';
import type { FloatArray, FloatArrayConstructor } from '../model/init.ts';

export interface Chunk {
  /** Token ids, time-major [T*B]. */
  inputs: Uint32Array;
  targets: Uint32Array;
  seqLength: number;
  batchSize: number;
}

export interface ForwardBackwardResult {
  /** Mean cross-entropy over the chunk, nats per token. */
  loss: number;
  /** Same flat layout as the parameters. */
  grads: FloatArray;
  /** Hidden state after the last step [B*H]: the next chunk's h0. */
  hLast: FloatArray;
  /** Gradient of the loss with respect to h0 [B*H]. */
  dh0: FloatArray;
}

export function dot(a: FloatArray, aOff: number, b: FloatArray, bOff: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[aOff + i] * b[bOff + i];
  return s;
}

/** y[yOff..] += alpha * x[xOff..] */
export function axpy(alpha: number, x: FloatArray, xOff: number, y: FloatArray, yOff: number, n: number): void {
  for (let i = 0; i < n; i++) y[yOff + i] += alpha * x[xOff + i];
}

/** One recurrent step for B sequences: hOut = tanh(Wxh[:, x] + Whh hIn + bh). */
export function rnnStep(
  params: FloatArray, layout: ParamLayout, H: number, V: number,
  tokens: ArrayLike<number>, tokOff: number, B: number,
  hIn: FloatArray, hInOff: number, hOut: FloatArray, hOutOff: number,
): void {
  const { Wxh, Whh, bh } = layout.byName;
  for (let b = 0; b < B; b++) {
    const x = tokens[tokOff + b];
    for (let i = 0; i < H; i++) {
      const z = params[bh.offset + i] + params[Wxh.offset + i * V + x] +
        dot(params, Whh.offset + i * H, hIn, hInOff + b * H, H);
      hOut[hOutOff + b * H + i] = Math.tanh(z);
    }
  }
}

/** logits[v] = by[v] + Why[v,:] . h */
export function outputLogits(params: FloatArray, layout: ParamLayout, H: number, V: number, h: FloatArray, hOff: number, logits: FloatArray): void {
  const { Why, by } = layout.byName;
  for (let v = 0; v < V; v++) logits[v] = params[by.offset + v] + dot(params, Why.offset + v * H, h, hOff, H);
}

/** softmax(l)[v] = exp(l[v] - max) / sum; subtracting the max keeps exp from overflowing. */
export function softmaxNorm(logits: FloatArray): { max: number; sum: number } {
  let max = -Infinity;
  for (let v = 0; v < logits.length; v++) max = Math.max(max, logits[v]);
  let sum = 0;
  for (let v = 0; v < logits.length; v++) sum += Math.exp(logits[v] - max);
  return { max, sum };
}

export function forwardBackward(
  config: ModelConfig, params: FloatArray, h0: FloatArray, chunk: Chunk, Float: FloatArrayConstructor = Float32Array,
): ForwardBackwardResult {
  const { hiddenSize: H, vocabSize: V } = config;
  const { inputs, targets, seqLength: T, batchSize: B } = chunk;
  const layout = paramLayout(config);
  const { Wxh, Whh, bh, Why, by } = layout.byName;
  const N = T * B;

  // hs holds h_{-1} = h0 in its first B rows, then h_0 .. h_{T-1}: hs[(t+1)*B + b] is h_t of sequence b.
  const hs = new Float((T + 1) * B * H);
  hs.set(h0);
  for (let t = 0; t < T; t++) rnnStep(params, layout, H, V, inputs, t * B, B, hs, t * B * H, hs, (t + 1) * B * H);

  // Output layer, softmax and cross-entropy for every position; dy = (p - onehot) / N.
  const grads = new Float(layout.length);
  const dhs = new Float(N * H); // gradient reaching each h_t from its own output
  const logits = new Float(V);
  let loss = 0;
  for (let p = 0; p < N; p++) {
    const hOff = (B + p) * H;
    outputLogits(params, layout, H, V, hs, hOff, logits);
    const { max, sum } = softmaxNorm(logits);
    const target = targets[p];
    loss += Math.log(sum) - (logits[target] - max);
    for (let v = 0; v < V; v++) {
      const dy = (Math.exp(logits[v] - max) / sum - (v === target ? 1 : 0)) / N;
      grads[by.offset + v] += dy;
      axpy(dy, hs, hOff, grads, Why.offset + v * H, H);
      axpy(dy, params, Why.offset + v * H, dhs, p * H, H);
    }
  }

  // Backward through time. dnext carries dL/dh_t from step t+1 into step t.
  const dnext = new Float(B * H);
  const dz = new Float(B * H);
  for (let t = T - 1; t >= 0; t--) {
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < H; i++) {
        const h = hs[((t + 1) * B + b) * H + i];
        dz[b * H + i] = (dhs[(t * B + b) * H + i] + dnext[b * H + i]) * (1 - h * h);
      }
    }
    dnext.fill(0);
    for (let b = 0; b < B; b++) {
      const x = inputs[t * B + b];
      const hPrevOff = (t * B + b) * H;
      for (let i = 0; i < H; i++) {
        const g = dz[b * H + i];
        grads[bh.offset + i] += g;
        grads[Wxh.offset + i * V + x] += g;
        axpy(g, hs, hPrevOff, grads, Whh.offset + i * H, H); // dWhh[i,:] += dz_i h_{t-1}
        axpy(g, params, Whh.offset + i * H, dnext, b * H, H); // dh_{t-1} += Whh[i,:] dz_i
      }
    }
  }

  return { loss: loss / N, grads, hLast: hs.slice(T * B * H), dh0: dnext };
}

/** Loss only (validation, finite differences): the forward half of forwardBackward. */
export function chunkLoss(config: ModelConfig, params: FloatArray, h0: FloatArray, chunk: Chunk, Float: FloatArrayConstructor = Float32Array): { loss: number; hLast: FloatArray } {
  const { hiddenSize: H, vocabSize: V } = config;
  const { inputs, targets, seqLength: T, batchSize: B } = chunk;
  const layout = paramLayout(config);
  let h = Float.from(h0);
  let hNext = new Float(B * H);
  const logits = new Float(V);
  let loss = 0;
  for (let t = 0; t < T; t++) {
    rnnStep(params, layout, H, V, inputs, t * B, B, h, 0, hNext, 0);
    [h, hNext] = [hNext, h];
    for (let b = 0; b < B; b++) {
      outputLogits(params, layout, H, V, h, b * H, logits);
      const { max, sum } = softmaxNorm(logits);
      loss += Math.log(sum) - (logits[targets[t * B + b]] - max);
    }
  }
  return { loss: loss / (T * B), hLast: h };
}
