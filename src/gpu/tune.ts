/**
 * Per-adapter kernel tuning, the timing half: runs what a TuningSession (src/gpu/tuner.ts) asks
 * for on the device, each candidate on the product's own shape and leading dimensions (or the
 * recurrent step's own B, H and W_hh alignment) with random operands. A candidate's first run is
 * validated before it is timed (matmul: sampled entries of C against a float64 dot product; cell
 * step: every output against the default blocking's, which test/cell-kernels.test.ts holds to the
 * CPU twin; a pipeline error or a wrong entry refuses it), then its median over `repeats` runs
 * (one submit and wait each: one dispatch for a product, CELL_PER_SUBMIT for a step, as the
 * recurrence runs them back to back) is recorded.
 */
import { cellBlocking, DEFAULT_CELL_CANDIDATE } from './kernels/cell.ts';
import { cellBackwardLaunch } from './kernels/cell_backward.ts';
import { cellForwardLaunch } from './kernels/cell_forward.ts';
import { KernelRunner, kernelsFor, type KernelDispatch } from './kernels/common.ts';
import { MATMUL_CANDIDATES, matmulLaunch, type MatmulTiling } from './kernels/matmul.ts';
import type { PlannedCell, PlannedMatmul } from './plan.ts';
import type { TuningSession } from './tuner.ts';
import { GATES, SAVED } from '../model/cells.ts';
import { Rng } from '../util/random.ts';

/** Relative error (to the largest sampled |C|) above which a candidate's output is refused. */
export const TUNE_TOLERANCE = 1e-4;
const SAMPLES = 48;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One product's shape and leading dimensions, as matmulLaunch takes them. */
export type ProductShape = Pick<PlannedMatmul, 'M' | 'N' | 'K' | 'transA' | 'transB' | 'lda' | 'ldb' | 'ldc'>;

/** One sampled entry of C: its word in C and its float64 reference. */
export interface ProductSample { at: number; ref: number }

/**
 * Float64 references for `count` entries of C = op(A) op(B) (the corners, then entries drawn from
 * `rng`), for checking a product without computing all of it (the tuner; bench/kernels.ts).
 */
export function productSamples(s: ProductShape, a: ArrayLike<number>, b: ArrayLike<number>, rng: Rng, count = SAMPLES): ProductSample[] {
  const opA = (m: number, k: number) => (s.transA ? a[k * s.lda + m] : a[m * s.lda + k]);
  const opB = (k: number, n: number) => (s.transB ? b[n * s.ldb + k] : b[k * s.ldb + n]);
  return Array.from({ length: count }, (_, i) => {
    // The corners, then random entries.
    const m = i === 0 ? 0 : i === 1 ? s.M - 1 : Math.floor(rng.next() * s.M);
    const n = i === 0 ? 0 : i === 1 ? s.N - 1 : Math.floor(rng.next() * s.N);
    let ref = 0;
    for (let k = 0; k < s.K; k++) ref += opA(m, k) * opB(k, n);
    return { at: m * s.ldc + n, ref };
  });
}

/** Random operands for one product, and float64 references for a few entries of C. */
function operands(r: KernelRunner, s: PlannedMatmul, rng: Rng) {
  const aLen = (s.transA ? s.K : s.M) * s.lda + 4, bLen = (s.transB ? s.N : s.K) * s.ldb + 4;
  const a = new Float32Array(aLen), b = new Float32Array(bLen);
  for (let i = 0; i < aLen; i++) a[i] = 2 * rng.next() - 1;
  for (let i = 0; i < bLen; i++) b[i] = 2 * rng.next() - 1;
  const samples = productSamples(s, a, b, rng);
  const cWords = (s.M - 1) * s.ldc + s.N;
  return { A: r.storage(a), B: r.storage(b), C: r.storage(cWords), cWords, samples };
}

/**
 * The largest error of C's sampled entries relative to the largest sampled |reference|
 * (Infinity where an entry is NaN: left unwritten, or garbage).
 */
export function sampledError(c: ArrayLike<number>, samples: readonly ProductSample[]): number {
  return relativeError(samples.map((x) => c[x.at]), samples.map((x) => x.ref));
}

/** Whether C's sampled entries match their references within TUNE_TOLERANCE of the largest. */
const agrees = (c: Float32Array, samples: ProductSample[]): boolean => sampledError(c, samples) <= TUNE_TOLERANCE;

/**
 * How one kind of shape is timed: its operands (allocated once per shape), a candidate's dispatch
 * on them (resetting what the run reads and filling its outputs with NaN), and the check of the
 * first run's outputs.
 */
interface Harness<S, O> {
  setup(r: KernelRunner, shape: S): O | Promise<O>;
  launch(r: KernelRunner, ops: O, shape: S, candidate: string): KernelDispatch;
  check(r: KernelRunner, ops: O): Promise<boolean>;
  /** Dispatches per timed submit; the recorded ms is per dispatch. */
  perSubmit: number;
}

/** Runs the session to its end or its budget on `device`. */
async function drive<S extends { key: string }, O>(
  device: GPUDevice, session: TuningSession<S>, repeats: number, now: () => number, h: Harness<S, O>,
): Promise<void> {
  const start = now();
  let current: { key: string; r: KernelRunner; ops: O } | undefined;
  try {
    for (let step = session.next(0); step; step = session.next(now() - start)) {
      const { shape, candidate } = step;
      if (current?.key !== shape.key) {
        current?.r.destroy();
        current = undefined;
        const r = new KernelRunner(device, kernelsFor(device));
        device.pushErrorScope('out-of-memory');
        device.pushErrorScope('validation');
        let ops: O | undefined;
        try {
          ops = await h.setup(r, shape);
        } catch {
          ops = undefined;
        }
        const invalid = await device.popErrorScope();
        const oom = await device.popErrorScope();
        if (invalid ?? oom ?? ops === undefined) {
          r.destroy();
          session.abandon(shape.key);
          continue;
        }
        current = { key: shape.key, r, ops };
      }
      const { r, ops } = current;
      device.pushErrorScope('validation');
      const d = h.launch(r, ops, shape, candidate);
      // The validation run also compiles the pipeline: it is not timed.
      await r.run([d]);
      const error = await device.popErrorScope();
      if (error || !(await h.check(r, ops))) {
        session.refuse(shape.key, candidate);
        continue;
      }
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const t0 = now();
        await r.run([d], h.perSubmit);
        times.push((now() - t0) / h.perSubmit);
        // One run already far slower than the best cannot win: no more repeats. Nor when another
        // run would end past the budget: the median of fewer runs is a pick all the same.
        if (i === 0 && !session.worthRepeating(shape.key, times[0])) break;
        if (now() - start + times[i] * h.perSubmit > session.budgetMs) break;
      }
      session.record(shape.key, candidate, median(times));
    }
  } finally {
    current?.r.destroy();
  }
}

/** Times the products a session asks for. */
export function timeMatmuls(device: GPUDevice, session: TuningSession, repeats: number, now = () => performance.now()): Promise<void> {
  const rng = new Rng(0x7e57);
  return drive(device, session, repeats, now, {
    perSubmit: 1,
    setup: (r, shape) => operands(r, shape, rng),
    launch: (r, ops, shape, candidate) => {
      const t = MATMUL_CANDIDATES[candidate];
      // 'registers' candidates run the entry point the real product's layout allows, not a better one these buffers would.
      const tiling: MatmulTiling = t.variant === 'auto' ? { ...t, variant: shape.variant } : t;
      r.write(ops.C, new Float32Array(ops.cWords).fill(NaN));
      return r.launch(matmulLaunch({ ...shape, A: ops.A, B: ops.B, C: ops.C }, tiling));
    },
    check: async (r, ops) => agrees(await r.read(ops.C, 0, ops.cWords), ops.samples),
  });
}

/** Recurrent steps per timed submit: the recurrence runs its steps back to back, so one submit's overhead is shared. */
export const CELL_PER_SUBMIT = 8;

/**
 * One recurrent step's buffers, laid out as the plan's (W_hh offset 0 where the plan reads it as
 * vec4s, 1 where it cannot although H allows), and the default blocking's outputs to check against.
 */
async function cellOperands(r: KernelRunner, s: PlannedCell, rng: Rng) {
  const { cell, B, H } = s;
  const G = GATES[cell], GH = G * H, BH = B * H;
  const rand = (n: number, scale: number) => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * scale);
  const off = s.vec4 || H % 4 !== 0 ? 0 : 1;
  const wLen = off + GH * H + 16;
  const w = rand(wLen + GH, 1 / Math.sqrt(H)); // W_hh (or W_hh^T), then b_hh
  const hAll = rand(2 * BH, 0.9), cAll = rand(2 * BH, 2);
  const forward = s.kernel === 'cell_forward';
  const dGh = forward ? new Float32Array(0) : rand(2 * B * GH, 1);
  const dState = forward ? new Float32Array(0) : rand(3 * BH, 1);
  const bufs = {
    w: r.storage(w), gi: r.storage(rand(B * GH, 1.5)), hAll: r.storage(hAll), cAll: r.storage(cAll),
    saved: r.storage(forward ? B * 4 * H : Float32Array.from({ length: B * 4 * H }, () => rng.next())),
    dGh: r.storage(Math.max(1, dGh.length)), dGi: r.storage(Math.max(1, B * GH)), dAbove: r.storage(rand(BH, 1)), dState: r.storage(Math.max(1, dState.length)),
  };
  /** What the step writes: forward h_t, c_t, saved; backward dgh_t, dgi_t, dState. */
  const lstm = cell === 'lstm';
  const outputs = forward
    ? [{ buf: bufs.hAll, off: BH, n: BH }, { buf: bufs.cAll, off: BH, n: lstm ? BH : 0 }, { buf: bufs.saved, off: 0, n: B * SAVED[cell] * H }]
    : [{ buf: bufs.dGh, off: 0, n: B * GH }, { buf: bufs.dGi, off: 0, n: B * GH }, { buf: bufs.dState, off: 0, n: (lstm ? 2 : 1) * BH }];
  const launch = (candidate: string) => {
    for (const o of outputs) if (o.n > 0) r.write(o.buf, new Float32Array(o.n).fill(NaN), o.off);
    if (!forward) {
      r.write(bufs.dGh, dGh.subarray(B * GH), B * GH); // dgh of step t+1 (the NaNs above cover step t's)
      r.write(bufs.dState, dState);
    }
    const tuned = cellBlocking(s.kernel, cell, B, candidate);
    const step = { B, H, offHin: 0, offHout: BH, offCin: 0, offCout: BH, offSaved: 0 };
    return r.launch(forward
      ? cellForwardLaunch(cell, { ...step, offWhhT: off, offBhh: wLen, offGi: 0 }, { params: bufs.w, gi: bufs.gi, hAll: bufs.hAll, cAll: bufs.cAll, saved: bufs.saved, whhT: bufs.w }, tuned)
      : cellBackwardLaunch(cell, { ...step, offWhh: off, offDGhNext: B * GH, offDG: 0, offDAbove: 0, offDState: 0 }, {
        params: bufs.w, dGh: bufs.dGh, dGi: bufs.dGi, dAbove: bufs.dAbove, hAll: bufs.hAll, cAll: bufs.cAll, saved: bufs.saved, dState: bufs.dState,
      }, tuned));
  };
  const read = () => Promise.all(outputs.map((o) => (o.n > 0 ? r.read(o.buf, o.off, o.n) : Promise.resolve(new Float32Array(0)))));
  await r.run([launch(DEFAULT_CELL_CANDIDATE)]);
  return { launch, read, ref: await read() };
}

/** Times the recurrent steps a session asks for. */
export function timeCells(device: GPUDevice, session: TuningSession<PlannedCell>, repeats: number, now = () => performance.now()): Promise<void> {
  const rng = new Rng(0xce11);
  return drive(device, session, repeats, now, {
    perSubmit: CELL_PER_SUBMIT,
    setup: (r, shape) => cellOperands(r, shape, rng),
    launch: (_r, ops, _shape, candidate) => ops.launch(candidate),
    check: async (_r, ops) => (await ops.read()).every((got, i) => agreesAll(got, ops.ref[i])),
  });
}

/**
 * The largest |got - ref| over the largest |ref| (1e-30 at least): the error relative to the
 * output's own scale, so one tolerance serves outputs of any magnitude. Infinity where an entry is
 * NaN or infinite (an entry left unwritten: the checks fill outputs with NaN first).
 */
export function relativeError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let scale = 1e-30, worst = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(got[i] - ref[i]);
    if (!(e <= worst)) worst = Number.isFinite(e) ? e : Infinity;
  }
  return worst / scale;
}

/** Whether every entry matches the reference within TUNE_TOLERANCE of its largest magnitude (NaN: an entry left unwritten). */
const agreesAll = (got: Float32Array, ref: Float32Array): boolean => relativeError(got, ref) <= TUNE_TOLERANCE;
