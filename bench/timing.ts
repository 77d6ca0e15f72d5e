/** What every bench runner shares: how a round waits for the GPU, and the median. */

/** How a round waits for the GPU: 'pipelined' enqueues PIPELINE_DEPTH iterations and reads the last loss, as training does; 'sync' reads every loss. */
export type Timing = 'pipelined' | 'sync';

/** Iterations in flight when pipelined: the training loop's default (src/engine/training-loop.ts). */
export const PIPELINE_DEPTH = 3;

/** Median of a list of timings. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
