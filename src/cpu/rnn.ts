/**
 * Helpers shared by the CPU reference (src/cpu/stacked.ts, src/cpu/cells.ts, src/cpu/sample.ts):
 * a chunk of tokens, dot products, axpy and the numerically safe softmax normaliser. The model
 * itself, for every cell (the vanilla RNN is the one-gate case), is in src/cpu/stacked.ts.
 * Layout: position p = t*B + b (time-major), so the B states of one step are contiguous.
 */
import type { FloatArray } from '../model/layout.ts';

export interface Chunk {
  /** Token ids, time-major [T*B]. */
  inputs: Uint32Array;
  targets: Uint32Array;
  seqLength: number;
  batchSize: number;
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

/** softmax(l)[v] = exp(l[v] - max) / sum; subtracting the max keeps exp from overflowing. */
export function softmaxNorm(logits: FloatArray): { max: number; sum: number } {
  let max = -Infinity;
  for (let v = 0; v < logits.length; v++) max = Math.max(max, logits[v]);
  let sum = 0;
  for (let v = 0; v < logits.length; v++) sum += Math.exp(logits[v] - max);
  return { max, sum };
}

