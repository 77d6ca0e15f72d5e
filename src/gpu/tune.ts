/**
 * Per-adapter kernel tuning, the timing half: runs what a TuningSession (src/gpu/tuner.ts) asks
 * for on the device, each candidate on the product's own shape and leading dimensions with random
 * operands. A candidate's first run is validated before it is timed (sampled entries of C against
 * a float64 dot product; a pipeline error or a wrong entry refuses it), then its median over
 * `repeats` runs (one dispatch, submit and wait each) is recorded.
 */
import { KernelRunner, kernelsFor } from './kernels/common.ts';
import { MATMUL_CANDIDATES, matmulLaunch, type MatmulTiling } from './kernels/matmul.ts';
import type { PlannedMatmul } from './plan.ts';
import type { TuningSession } from './tuner.ts';
import { Rng } from '../util/random.ts';

/** Relative error (to the largest sampled |C|) above which a candidate's output is refused. */
export const TUNE_TOLERANCE = 1e-4;
const SAMPLES = 48;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Random operands for one product, and float64 references for a few entries of C. */
function operands(r: KernelRunner, s: PlannedMatmul, rng: Rng) {
  const aLen = (s.transA ? s.K : s.M) * s.lda + 4, bLen = (s.transB ? s.N : s.K) * s.ldb + 4;
  const a = new Float32Array(aLen), b = new Float32Array(bLen);
  for (let i = 0; i < aLen; i++) a[i] = 2 * rng.next() - 1;
  for (let i = 0; i < bLen; i++) b[i] = 2 * rng.next() - 1;
  const opA = (m: number, k: number) => (s.transA ? a[k * s.lda + m] : a[m * s.lda + k]);
  const opB = (k: number, n: number) => (s.transB ? b[n * s.ldb + k] : b[k * s.ldb + n]);
  const samples = Array.from({ length: SAMPLES }, (_, i) => {
    // The corners, then random entries.
    const m = i === 0 ? 0 : i === 1 ? s.M - 1 : Math.floor(rng.next() * s.M);
    const n = i === 0 ? 0 : i === 1 ? s.N - 1 : Math.floor(rng.next() * s.N);
    let ref = 0;
    for (let k = 0; k < s.K; k++) ref += opA(m, k) * opB(k, n);
    return { at: m * s.ldc + n, ref };
  });
  const cWords = (s.M - 1) * s.ldc + s.N;
  return { A: r.storage(a), B: r.storage(b), C: r.storage(cWords), cWords, samples };
}

/** Whether C's sampled entries match their references within TUNE_TOLERANCE of the largest. */
function agrees(c: Float32Array, samples: { at: number; ref: number }[]): boolean {
  const scale = Math.max(1e-30, ...samples.map((x) => Math.abs(x.ref)));
  return samples.every((x) => Math.abs(c[x.at] - x.ref) <= TUNE_TOLERANCE * scale);
}

/** Runs the session to its end or its budget on `device`. */
export async function timeMatmuls(device: GPUDevice, session: TuningSession, repeats: number, now = () => performance.now()): Promise<void> {
  const start = now();
  const rng = new Rng(0x7e57);
  let current: { key: string; r: KernelRunner; ops: ReturnType<typeof operands> } | undefined;
  try {
    for (let step = session.next(0); step; step = session.next(now() - start)) {
      const { shape, candidate } = step;
      if (current?.key !== shape.key) {
        current?.r.destroy();
        current = undefined;
        const r = new KernelRunner(device, kernelsFor(device));
        device.pushErrorScope('out-of-memory');
        device.pushErrorScope('validation');
        const ops = operands(r, shape, rng);
        const invalid = await device.popErrorScope();
        const oom = await device.popErrorScope();
        const failed = invalid ?? oom;
        if (failed) {
          r.destroy();
          session.abandon(shape.key);
          continue;
        }
        current = { key: shape.key, r, ops };
      }
      const { r, ops } = current;
      const t = MATMUL_CANDIDATES[candidate];
      // 'registers' candidates run the entry point the real product's layout allows, not a better one these buffers would.
      const tiling: MatmulTiling = t.variant === 'auto' ? { ...t, variant: shape.variant } : t;
      r.write(ops.C, new Float32Array(ops.cWords).fill(NaN));
      device.pushErrorScope('validation');
      const d = r.launch(matmulLaunch({ ...shape, A: ops.A, B: ops.B, C: ops.C }, tiling));
      // The validation run also compiles the pipeline: it is not timed.
      await r.run([d]);
      const error = await device.popErrorScope();
      if (error || !agrees(await r.read(ops.C, 0, ops.cWords), ops.samples)) {
        session.refuse(shape.key, candidate);
        continue;
      }
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const t0 = now();
        await r.run([d]);
        times.push(now() - t0);
        // One run already far slower than the best cannot win: no more repeats.
        if (i === 0 && !session.worthRepeating(shape.key, times[0])) break;
      }
      session.record(shape.key, candidate, median(times));
    }
  } finally {
    current?.r.destroy();
  }
}
