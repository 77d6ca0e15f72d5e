/**
 * Each WGSL kernel alone against its CPU twin, over shapes and launch parameters (llm.c's
 * dev/cuda habit): GFLOP/s for matmul, GB/s (bytes each kernel must read and write at least)
 * for the elementwise kernels and reductions.
 *
 * Every variant is validated before it is timed: the warm-up dispatch's output (pipeline
 * compilation, first-touch) is checked against a reference, the CPU twin's or float64 dot products
 * (the tuner's candidates: the default's), and a mismatch stops the bench with one line
 * (bench/validate.ts); the tolerances are stated below, and where each row is checked.
 *
 * GPU time: after the warm-up, N repetitions encoded in one compute pass, one submit, and
 * `queue.onSubmittedWorkDone()`; time / N. That includes one submit's overhead (~70 us here)
 * spread over N, which is why N grows until the batch takes a sizeable time. (Timestamp queries would exclude it but need the 'timestamp-query' feature,
 * which the shared device does not request.) CPU time: the twin in plain JS, best of a few runs.
 *
 *   npx tsx --import ./src/node/register-raw.mjs bench/kernels.ts [--quick]
 * or from bench/run.ts through runKernelBench(ctx, { quick, allTilings }).
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { GpuContext } from '../src/gpu/device.ts';
import { KernelRunner, type KernelDispatch } from '../src/gpu/kernels/common.ts';
import { DEFAULT_MATMUL_TILING, MATMUL_CANDIDATES, matmulCandidatesFor, matmulLaunch, resolveMatmulVariant, type MatmulTiling } from '../src/gpu/kernels/matmul.ts';
import { cellBlock, cellBlocking, cellCandidatesFor, DEFAULT_CELL_CANDIDATE, type CellKernel } from '../src/gpu/kernels/cell.ts';
import { cellForwardLaunch } from '../src/gpu/kernels/cell_forward.ts';
import { cellBackwardLaunch } from '../src/gpu/kernels/cell_backward.ts';
import { softmaxLogitsWords, softmaxXentLaunch } from '../src/gpu/kernels/softmax_xent.ts';
import { lossSumLaunch } from '../src/gpu/kernels/loss_sum.ts';
import { columnSumLaunch, columnSumVariantFor } from '../src/gpu/kernels/column_sum.ts';
import { EMBEDDING_GRAD_VARIANTS, embeddingGradLaunch, embeddingGradVariantFor, positionsByToken, type EmbeddingGradVariant } from '../src/gpu/kernels/embedding_grad.ts';
import { optimizerLaunch, optimizerSettings, optimizerUniforms, transposedWhh } from '../src/gpu/kernels/optimizer.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import { sampleDispatchesPerToken } from '../src/gpu/kernels/sample.ts';
import { softmaxNorm } from '../src/cpu/rnn.ts';
import { cellPointwise, gatePreactivations, type LayerTensors } from '../src/cpu/cells.ts';
import { type CellType, GATES, SAVED } from '../src/model/cells.ts';
import { newOptimizerState, optimizerUpdate } from '../src/cpu/optim.ts';
import { OPTIMIZERS } from '../src/model/optimizer.ts';
import { sampleTokens } from '../src/cpu/sample.ts';
import { productSamples, relativeError, sampledError, TUNE_TOLERANCE } from '../src/gpu/tune.ts';
import { expectWithin, stopOnMismatch } from './validate.ts';
import { initParams } from '../src/model/init.ts';
import { paramLayout } from '../src/model/layout.ts';
import { fullModelConfig, type ModelConfig } from '../src/model/config.ts';
import { Rng } from '../src/util/random.ts';

export interface KernelRow {
  kernel: string;
  shape: string;
  variant: string;
  /** Milliseconds per dispatch on the GPU, in the fastest batch (timeGpu). */
  gpuMs: number;
  /** Milliseconds per call of the CPU twin (left out where it would take too long). */
  cpuMs?: number;
  /** From the fastest batch; gflopsMedian from the median one (timeGpu). */
  gflops?: number;
  gflopsMedian?: number;
  gbps?: number;
}

export interface KernelBenchOptions {
  /** A smoke run: two shapes at 512, two tilings. */
  quick?: boolean;
  /** Every workgroup shape, not just what training uses and `main`, and every blocking the tuner may pick for the recurrent steps. */
  allTilings?: boolean;
  /** Called with each row as it is measured (the direct run prints progress). */
  onRow?: (row: KernelRow) => void;
}

const randomArray = (rng: Rng, n: number, scale = 1) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * scale;
  return a;
};

/**
 * Warm-up, `check` of what the warm-up wrote (it throws on a mismatch), then BATCHES batches of N
 * dispatches per submit, N sized so that the batches together take about `targetMs`; ms per
 * repetition in the fastest batch and in the median one. Other work
 * on a shared machine only ever adds time, so the fastest batch is the closest to the kernel's own
 * cost, and the median shows how far the noise moved it.
 */
export const BATCHES = 5;
async function timeGpu(r: KernelRunner, list: KernelDispatch[], targetMs: number, check: () => Promise<void>, maxReps = 200): Promise<{ ms: number; medianMs: number }> {
  await r.run(list, 1);
  await check();
  let t = performance.now();
  await r.run(list, 1);
  const once = performance.now() - t;
  const reps = Math.max(1, Math.min(maxReps, Math.round(targetMs / BATCHES / Math.max(once, 1e-3))));
  const times = [once];
  // A dispatch longer than the whole target (workgroup-memory tiles on a CPU driver: seconds) gets one batch, not BATCHES.
  for (let b = 0; b < (once > targetMs ? 1 : BATCHES); b++) {
    t = performance.now();
    await r.run(list, reps);
    times.push((performance.now() - t) / reps);
  }
  times.sort((a, b) => a - b);
  return { ms: times[0], medianMs: times[Math.floor(times.length / 2)] };
}

/** Best of a few runs of a CPU function, until `targetMs` is spent (at least once). */
function timeCpu(fn: () => void, targetMs: number): number {
  let best = Infinity;
  const start = performance.now();
  do {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  } while (performance.now() - start < targetMs);
  return best;
}

/** The matmul CPU twin: op(A) op(B), i-k-j order (the fastest plain-JS loop order). */
function cpuMatmul(M: number, N: number, K: number, a: Float32Array, b: Float32Array, c: Float32Array, transA: boolean, transB: boolean): void {
  c.fill(0);
  for (let i = 0; i < M; i++) {
    const ci = i * N;
    for (let k = 0; k < K; k++) {
      const av = transA ? a[k * M + i] : a[i * K + k];
      if (transB) for (let j = 0; j < N; j++) c[ci + j] += av * b[j * K + k];
      else {
        const bk = k * N;
        for (let j = 0; j < N; j++) c[ci + j] += av * b[bk + j];
      }
    }
  }
}

interface MatmulShape {
  label: string; M: number; N: number; K: number; transA: boolean; transB: boolean;
  /** Word-level products (seconds each on a CPU driver): the default tiling only, no JS twin. */
  word?: boolean;
}

// Tolerances of the checks before timing (bench/validate.ts), each relative to the largest entry
// of the reference. TOLERANCE: float32 kernels against their twins (float64, or float32 sums in
// another order), or the tuner's candidates against the default, differ by float32 rounding
// only: a few roundings per entry, or sums of up to 30,000 terms in some order, stay within about
// 1e-5 of that scale (measured on lavapipe over every shape of the full run: 0 to 3.8e-6, the
// most for the word-level dh = dy W_dec at K = 30,000), while a wrong offset, tile, transpose or
// constant moves entries by 2e-4 to O(1) of it. It is the tuner's own (src/gpu/tune.ts), for the same reason.
// CHANGE_TOLERANCE: the optimizer's change to the parameters (below).
const TOLERANCE = TUNE_TOLERANCE;
const CHANGE_TOLERANCE = 1e-3;

const tilingName = (t: MatmulTiling) => `${t.variant} ${t.wgX}x${t.wgY}`;

export async function runKernelBench(ctx: GpuContext, opts: KernelBenchOptions = {}): Promise<KernelRow[]> {
  const quick = opts.quick ?? false;
  const target = quick ? 150 : 600;
  const rows: KernelRow[] = [];
  const push = (row: KernelRow) => {
    rows.push(row);
    opts.onRow?.(row);
  };
  const r = new KernelRunner(ctx.device);
  const rng = new Rng(1);
  try {
    // --- matmul -------------------------------------------------------------------------------
    // Training shapes for H = 512, T*B = 2048 (T = 64, B = 32), V = 87: the output projection
    // (T*B x V from H), dL/dh from the outputs, the weight gradients (A transposed, K = T*B). The
    // recurrent steps run on cell_forward / cell_backward (below).
    const H = 512, N = 2048, V = 87, Bt = 32;
    const square = quick ? 512 : 1024;
    const shapes: MatmulShape[] = [
      { label: `square`, M: square, N: square, K: square, transA: false, transB: false },
      { label: 'dWhh = dZ^T h', M: H, N: H, K: N, transA: true, transB: false },
      ...(quick ? [] : [
        { label: 'logits = h Why^T', M: N, N: V, K: H, transA: false, transB: true },
        { label: 'dWhy = dy^T h', M: V, N: H, K: N, transA: true, transB: false },
        { label: 'dh = dy Why', M: N, N: H, K: V, transA: false, transB: false },
        { label: 'square A^T B^T', M: 512, N: 512, K: 512, transA: true, transB: true },
        // Word level, H = 256: the vocabulary-sized products. Training computes the logits from the
        // decoder's transposed copy (A B); the A B^T row is the same product read from W_dec itself,
        // as before that copy. V = 30,000 at 1024 positions keeps dy within a 128 MiB binding.
        ...[[2048, 10_000], [1024, 30_000]].flatMap(([Nw, Vw]) => [
          { label: `word logits = h Wdec^T (copy)`, M: Nw, N: Vw, K: 256, transA: false, transB: false, word: true },
          { label: `word logits = h Wdec^T`, M: Nw, N: Vw, K: 256, transA: false, transB: true, word: true },
          { label: `word dWdec = dy^T h`, M: Vw, N: 256, K: Nw, transA: true, transB: false, word: true },
          { label: `word dh = dy Wdec`, M: Nw, N: 256, K: Vw, transA: false, transB: false, word: true },
        ]),
      ]),
    ];
    // 'auto' is what training uses untuned (the vec4 entry point the layout allows); `main` alone
    // shows what the vec4 loads bring; then every candidate the tuner (src/gpu/tuner.ts) chooses
    // among, workgroup-memory tiles included, and with allTilings more workgroup shapes.
    const auto = (wgX: number, wgY: number): MatmulTiling => ({ variant: 'auto', wgX, wgY });
    const candidates = matmulCandidatesFor(ctx.limits).filter((c) => MATMUL_CANDIDATES[c] !== DEFAULT_MATMUL_TILING).map((c) => MATMUL_CANDIDATES[c]);
    const tilings: MatmulTiling[] = !opts.allTilings
      ? [DEFAULT_MATMUL_TILING, { variant: 'main', wgX: 8, wgY: 8 }, ...candidates]
      : [DEFAULT_MATMUL_TILING, { variant: 'main', wgX: 8, wgY: 8 }, ...candidates, auto(4, 16), auto(16, 16), auto(32, 2)];
    const candidateName = (t: MatmulTiling) => Object.entries(MATMUL_CANDIDATES).find(([, c]) => c === t)?.[0];
    // Each tiling's product is checked on 48 sampled entries (the corners, then random ones)
    // against float64 dot products, as the tuner checks its candidates (src/gpu/tune.ts), within
    // TOLERANCE of the largest sampled |C|: float32 sums of K products of operands in [-1, 1]
    // stay within about sqrt(K) * 6e-8 of it (below 1e-5 at K = 30,000; 3.8e-6 measured there).
    const sampleRng = new Rng(0x5a3);
    for (const s of shapes) {
      const a = randomArray(rng, s.M * s.K), b = randomArray(rng, s.K * s.N);
      const A = r.storage(a), B = r.storage(b), C = r.storage(s.M * s.N);
      const shapeArgs = { M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, lda: s.transA ? s.M : s.K, ldb: s.transB ? s.K : s.N, ldc: s.N };
      const samples = productSamples(shapeArgs, a, b, sampleRng);
      const unwritten = new Float32Array(s.M * s.N).fill(NaN);
      const flops = 2 * s.M * s.N * s.K;
      const c = new Float32Array(s.M * s.N);
      // The JS twin at 1024^3 takes seconds: time it once.
      const cpuMs = s.word ? undefined : timeCpu(() => cpuMatmul(s.M, s.N, s.K, a, b, c, s.transA, s.transB), flops > 1e9 ? 0 : target);
      // --quick times the workgroup-memory tiles (seconds per product on CPU drivers) on the square only.
      const run = s.word ? [DEFAULT_MATMUL_TILING] : quick && s.label !== 'square' ? tilings.filter((x) => x.variant !== 'main_tiled') : tilings;
      for (const t of run) {
        const args = { ...shapeArgs, A, B, C };
        const layout = `${s.transA ? 'A^T' : 'A'}${s.transB ? ' B^T' : ' B'}`;
        const name = candidateName(t);
        const variant = tilingName({ ...t, variant: resolveMatmulVariant(args, t) }) + (t === DEFAULT_MATMUL_TILING ? ' (default)' : '') +
          (name ? ` [${name}]` : '');
        const row = { kernel: 'matmul', shape: `${s.label} ${s.M}x${s.N}x${s.K} ${layout}`, variant };
        r.write(C, unwritten);
        const { ms: gpuMs, medianMs } = await timeGpu(r, [r.launch(matmulLaunch(args, t))], target, async () =>
          expectWithin(row, { C: sampledError(await r.read(C), samples) }, TOLERANCE));
        push({
          ...row, gpuMs, cpuMs,
          gflops: flops / gpuMs / 1e6, gflopsMedian: flops / medianMs / 1e6,
        });
      }
    }

    // --- cell_forward, cell_backward: one timestep of one layer, the 2T sequential dispatches ------
    // of an iteration (a B x G*H by H product with the cell's pointwise math fused in). The CPU twin
    // of the forward step is the reference's gatePreactivations + cellPointwise per sequence; the
    // backward one has none to time alone (the reference accumulates dW_hh in the same loop).
    const cellShapes: { cell: CellType; B: number; H: number }[] = quick
      ? [{ cell: 'rnn', B: 8, H: 64 }]
      : [{ cell: 'rnn', B: Bt, H }, { cell: 'lstm', B: Bt, H: 256 }, { cell: 'gru', B: Bt, H: 256 }];
    for (const { cell, B, H: Hc } of cellShapes) {
      const GH = GATES[cell] * Hc, BH = B * Hc;
      const p = randomArray(rng, GH * Hc + GH + 16, 1 / Math.sqrt(Hc));
      const h = randomArray(rng, 2 * BH, 0.9), cState = randomArray(rng, 2 * BH), savedAll = randomArray(rng, B * 4 * Hc, 0.5);
      const giData = randomArray(rng, B * GH), dStateStart = randomArray(rng, 3 * BH, 0.1);
      const params = r.storage(p), hBuf = r.storage(h), cBuf = r.storage(cState), saved = r.storage(savedAll);
      const gi = r.storage(giData), dGh = r.storage(randomArray(rng, 2 * B * GH, 0.1));
      const dGi = r.storage(B * GH), dAbove = r.storage(randomArray(rng, BH, 0.1)), dState = r.storage(dStateStart);
      const offs = { B, H: Hc, offWhh: 0, offHin: 0, offHout: BH, offSaved: 0, offCin: 0, offCout: BH };
      const whhT = r.storage(transposedWhh(p, [0], GH, Hc));
      // The default blocking, or one of the tuner's others (src/gpu/kernels/cell.ts: CELL_CANDIDATES).
      const stepLaunch = (kernel: CellKernel, c = DEFAULT_CELL_CANDIDATE) => {
        const t = cellBlocking(kernel, cell, B, c);
        return kernel === 'cell_forward'
          ? cellForwardLaunch(cell, { ...offs, offWhhT: 0, offBhh: GH * Hc, offGi: 0 }, { params, gi, hAll: hBuf, cAll: cBuf, saved, whhT }, t)
          : cellBackwardLaunch(cell, { ...offs, offDGhNext: B * GH, offDG: 0, offDAbove: 0, offDState: 0 }, { params, dGh, dGi, dAbove, hAll: hBuf, cAll: cBuf, saved, dState }, t);
      };
      // What each step writes: filled with NaN before a variant's warm-up (an entry it leaves
      // unwritten fails the check), the backward's carried dState reset to its start (it reads and
      // rewrites it). The forward runs first: the backward reads the gates it saves.
      const lstm = cell === 'lstm';
      const written: Record<CellKernel, { name: string; buf: GPUBuffer; off: number; n: number }[]> = {
        cell_forward: [{ name: 'h_t', buf: hBuf, off: BH, n: BH }, { name: 'c_t', buf: cBuf, off: BH, n: lstm ? BH : 0 }, { name: 'saved gates', buf: saved, off: 0, n: B * SAVED[cell] * Hc }],
        cell_backward: [{ name: 'dgh_t', buf: dGh, off: 0, n: B * GH }, { name: 'dgi_t', buf: dGi, off: 0, n: B * GH }, { name: 'dState', buf: dState, off: 0, n: (lstm ? 2 : 1) * BH }],
      };
      const clear = (kernel: CellKernel) => {
        for (const o of written[kernel]) if (o.n > 0) r.write(o.buf, new Float32Array(o.n).fill(NaN), o.off);
        if (kernel === 'cell_backward') r.write(dState, dStateStart);
      };
      const readWritten = async (kernel: CellKernel) => {
        const out: Record<string, Float32Array> = {};
        for (const o of written[kernel]) if (o.n > 0) out[o.name] = await r.read(o.buf, o.off, o.n);
        return out;
      };
      const w: LayerTensors = {
        wIh: new Float64Array(GH), wHh: Float64Array.from(p.subarray(0, GH * Hc)),
        bIh: new Float64Array(GH), bHh: Float64Array.from(p.subarray(GH * Hc, GH * Hc + GH)), inputSize: 1,
      };
      const giRow = new Float64Array(GH), ghRow = new Float64Array(GH);
      const hRef = new Float32Array(BH), cRef = new Float32Array(BH), savedRow = new Float32Array(4 * Hc);
      const cpuMs = timeCpu(() => {
        for (let b = 0; b < B; b++) {
          const at = (x: Float32Array) => x.subarray(b * Hc, (b + 1) * Hc);
          gatePreactivations(w, GH, Hc, { tokens: [0] }, 0, at(h), giRow, ghRow);
          // The step reads gi (W_ih x + b_ih, the input product's) from its buffer: the same here.
          giRow.set(giData.subarray(b * GH, (b + 1) * GH));
          cellPointwise(cell, Hc, giRow, ghRow, at(h), at(cState), at(hRef), at(cRef), savedRow);
        }
      }, target);
      const flops = 2 * B * GH * Hc;
      const shape = `${cell} B=${B} H=${Hc} (${B}x${GH}x${Hc})`;
      for (const kernel of ['cell_forward', 'cell_backward'] as const) {
        const launch = stepLaunch(kernel);
        const row = { kernel, shape, variant: `${launch.entryPoint}, ${cellBlock(kernel, cell, B).rows} sequences per invocation` };
        // The default: the forward step against the CPU twin above (h_t; c_t for the lstm), within
        // TOLERANCE (a float32 dot product over H, then float32 tanh and sigmoid). The backward has
        // no twin here: test/cell-kernels.test.ts holds its default to the CPU reference; here its
        // outputs are what the tuner's candidates below are held to, as src/gpu/tune.ts (timeCells)
        // holds them.
        let ref: Record<string, Float32Array> = {};
        clear(kernel);
        const { ms: gpuMs, medianMs } = await timeGpu(r, [r.launch(launch)], target, async () => {
          ref = await readWritten(kernel);
          if (kernel === 'cell_forward') expectWithin(row, { h_t: relativeError(ref.h_t, hRef), ...(lstm ? { c_t: relativeError(ref.c_t, cRef) } : {}) }, TOLERANCE);
        });
        push({ ...row, gpuMs, cpuMs: kernel === 'cell_forward' ? cpuMs : undefined, gflops: flops / gpuMs / 1e6, gflopsMedian: flops / medianMs / 1e6 });
        // The tuner's other blockings: every output within TOLERANCE of the default's (the same
        // sums in another order).
        for (const c of opts.allTilings ? cellCandidatesFor(kernel, cell, B, Hc, r.maxPerDim).filter((x) => x !== DEFAULT_CELL_CANDIDATE) : []) {
          const l = stepLaunch(kernel, c);
          const tuned = { kernel, shape, variant: `${l.entryPoint}, tuner candidate ${c}` };
          clear(kernel);
          const t = await timeGpu(r, [r.launch(l)], target, async () => {
            const got = await readWritten(kernel);
            expectWithin(tuned, Object.fromEntries(Object.keys(ref).map((k) => [k, relativeError(got[k], ref[k])])), TOLERANCE);
          });
          push({ ...tuned, gpuMs: t.ms, gflops: flops / t.ms / 1e6, gflopsMedian: flops / t.medianMs / 1e6 });
        }
      }
    }

    // --- softmax_xent, loss_sum, column_sum -----------------------------------------------------
    // Word level: all 2048 positions over V = 10,000 (the training shape) and 30,000.
    for (const [rowsN, cols] of quick ? [[N, V]] : [[N, V], [N, 10_000], [512, 30_000]]) {
      const logits = randomArray(rng, rowsN * cols, 3);
      const targets = Uint32Array.from({ length: rowsN }, () => Math.floor(rng.next() * cols));
      const L = r.storage(softmaxLogitsWords(rowsN, cols)), T = r.storage(targets), RL = r.storage(rowsN);
      const d = r.launch(softmaxXentLaunch({ logits: L, targets: T, rowLoss: RL, rows: rowsN, cols, scale: 1 / rowsN }, r.maxPerDim));
      // The twin, in float64 per row: the loss and dL/dlogits (the kernel's in-place gradient).
      const loss = new Float64Array(rowsN), grad = new Float32Array(rowsN * cols);
      const cpuMs = timeCpu(() => {
        for (let p = 0; p < rowsN; p++) {
          const row = logits.subarray(p * cols, (p + 1) * cols);
          const { max, sum } = softmaxNorm(row);
          loss[p] = Math.log(sum) - (row[targets[p]] - max);
          for (let v = 0; v < cols; v++) grad[p * cols + v] = (Math.exp(row[v] - max) / sum - (v === targets[p] ? 1 : 0)) / rowsN;
        }
      }, target);
      // The kernel overwrites the logits with their gradient: time it on the logits each time.
      const timed = async () => {
        r.write(L, logits);
        const t = performance.now();
        await r.run([d]);
        return performance.now() - t;
      };
      r.write(RL, new Float32Array(rowsN).fill(NaN));
      await timed();
      // The warm-up's row losses and gradient against the twin's, within TOLERANCE (float32 exp,
      // sums over the row).
      const row = { kernel: 'softmax_xent', shape: `${rowsN} rows x ${cols}`, variant: 'row per invocation, vec4' };
      expectWithin(row, { 'row loss': relativeError(await r.read(RL), loss), gradient: relativeError(await r.read(L, 0, rowsN * cols), grad) }, TOLERANCE);
      let gpuMs = Infinity;
      for (let k = 0; k < (quick ? 2 : 4); k++) gpuMs = Math.min(gpuMs, await timed());
      push({ ...row, gpuMs, cpuMs, gbps: (rowsN * cols * 8 + rowsN * 8) / gpuMs / 1e6 });
    }
    // loss_sum and column_sum are float32 sums of 2048 words, checked against the twins within
    // TOLERANCE (loss_sum's adds in float64; column_sum's in float32 as it always has, to time it as
    // before: 2048 terms in any order stay within ~2e-6 of the largest sum, 1.7e-6 measured at
    // 2048 x 10,000). Row losses are non-negative (a cross-entropy): their mean is far from 0, its
    // relative error meaningful.
    {
      const x = randomArray(rng, N).map(Math.abs);
      const X = r.storage(x), O = r.storage(4);
      let mean = 0;
      const cpuMs = timeCpu(() => {
        let s = 0;
        for (let i = 0; i < N; i++) s += x[i];
        mean = s / N;
      }, target);
      const row = { kernel: 'loss_sum', shape: `${N}`, variant: 'WG 256' };
      r.write(O, Float32Array.of(NaN));
      const gpuMs = (await timeGpu(r, [r.launch(lossSumLaunch({ rowLoss: X, out: O, n: N, scale: 1 / N }))], target, async () =>
        expectWithin(row, { mean: relativeError(await r.read(O, 0, 1), [mean]) }, TOLERANCE))).ms;
      push({ ...row, gpuMs, cpuMs, gbps: N * 4 / gpuMs / 1e6 });
    }
    // Word level: db_dec = the column sums of dlogits, 2048 x 10,000 (main_v4; main for comparison).
    for (const cols of quick ? [H] : [V, H, 10_000]) {
      const x = randomArray(rng, N * cols);
      const X = r.storage(x), O = r.storage(cols);
      const out = new Float32Array(cols);
      const cpuMs = timeCpu(() => {
        out.fill(0);
        for (let p = 0; p < N; p++) for (let j = 0; j < cols; j++) out[j] += x[p * cols + j];
      }, target);
      const auto = columnSumVariantFor({ X, rows: N, cols });
      for (const variant of auto === 'main' ? ['main'] as const : ['main_v4', 'main'] as const) {
        const row = { kernel: 'column_sum', shape: `${N} x ${cols}`, variant: `${variant}, WG 64${variant === auto ? ' (auto)' : ''}` };
        r.write(O, new Float32Array(cols).fill(NaN));
        const gpuMs = (await timeGpu(r, [r.launch(columnSumLaunch({ X, out: O, rows: N, cols, variant }))], target, async () =>
          expectWithin(row, { 'column sums': relativeError(await r.read(O, 0, cols), out) }, TOLERANCE))).ms;
        push({ ...row, gpuMs, cpuMs, gbps: (N * cols + cols) * 4 / gpuMs / 1e6 });
      }
    }

    // --- embedding_grad ---------------------------------------------------------------------------
    // Each variant the layout allows (main_4x4 needs V a multiple of 4); '(auto)' marks training's.
    // Checked against the twin (float32 sums of each token's positions, a few dozen at most at
    // V = 87: within ~1e-6) within TOLERANCE.
    for (const [He, vocab] of quick ? [[H, V]] : [[H, V], [256, 10_000], [H, 10_000], [256, 30_000]]) {
      const tokens = Uint32Array.from({ length: N }, () => Math.floor(rng.next() * vocab));
      const dZ = randomArray(rng, N * He);
      const { start, positions } = positionsByToken(tokens, vocab);
      const Z = r.storage(dZ), S = r.storage(start), P = r.storage(positions), O = r.storage(Math.ceil((He * vocab) / 4) * 4);
      const args = { dZ: Z, start: S, positions: P, out: O, H: He, V: vocab, N };
      const auto = embeddingGradVariantFor(args);
      const out = new Float32Array(He * vocab);
      const cpuMs = timeCpu(() => {
        out.fill(0);
        for (let p = 0; p < N; p++) for (let i = 0; i < He; i++) out[i * vocab + tokens[p]] += dZ[p * He + i];
      }, target);
      const rank = Object.keys(EMBEDDING_GRAD_VARIANTS);
      for (const variant of rank.slice(0, rank.indexOf(auto) + 1) as EmbeddingGradVariant[]) {
        const row = { kernel: 'embedding_grad', shape: `H=${He} V=${vocab} positions=${N}`, variant: `${variant}, WG 64${variant === auto ? ' (auto)' : ''}` };
        r.write(O, new Float32Array(He * vocab).fill(NaN));
        const gpuMs = (await timeGpu(r, [r.launch(embeddingGradLaunch({ ...args, variant }, r.maxPerDim))], target, async () =>
          expectWithin(row, { 'dW_emb': relativeError(await r.read(O, 0, He * vocab), out) }, TOLERANCE))).ms;
        push({ ...row, gpuMs, cpuMs, gbps: (N * He + He * vocab) * 4 / gpuMs / 1e6 });
      }
    }

    // --- optimizer --------------------------------------------------------------------------------
    // The model-sized rows also refresh W_hh's transposed copy, as training does. The warm-up is
    // update number 3 from zero moments: the twin (optimizerUpdate) makes the same one, its state's
    // step set to 2, at the rate optimizerSettings gives step 3. Checked: the change to the
    // parameters, within CHANGE_TOLERANCE of the largest change (0.64 lr = 6.4e-4 for Adam's third
    // step; float32 rounding of parameters near 1, 6e-8 on each side, is up to 1.9e-4 of it, 9.3e-5
    // measured; a wrong rate, step, bias correction or clip is off by 0.1 of it or more); the
    // moments it keeps, within TOLERANCE (a few float32 operations each); the transposed W_hh
    // copy, exactly (a copy of the updated parameters).
    const layout = paramLayout({ cell: 'rnn', vocabSize: V, hiddenSize: H });
    const nParams = layout.length;
    const step = 3;
    for (const n of quick ? [nParams] : [nParams, 5_000_000]) {
      for (const kind of OPTIMIZERS) {
        const p = randomArray(rng, n), g = randomArray(rng, n, 10);
        const Pb = r.storage(p), G = r.storage(g), M = r.storage(n), Vb = r.storage(n);
        const whh = n === nParams ? { layers: 1, rows: H, cols: H } : undefined;
        const whhOff = layout.layers[0].weightHh.offset;
        const whhT = r.storage(whh ? H * H + 16 : 4), whhAt = r.storage(whh ? Uint32Array.of(whhOff) : 4);
        const train = { seqLength: 1, batchSize: 1, optimizer: kind, learningRate: 1e-3, clip: 5 };
        const settings = { ...optimizerSettings(train, n, whh ?? { layers: 0, rows: 0, cols: 0 }, step), whh };
        const uniforms = optimizerUniforms(settings, r.maxPerDim);
        const d = r.launch(optimizerLaunch({ params: Pb, grads: G, m: M, v: Vb, whhT, whhAt, n, kind, whh, uniforms }, r.maxPerDim));
        const ref = p.slice(), refState = { ...newOptimizerState(n), step: step - 1 };
        optimizerUpdate(kind, ref, g, refState, settings.lr, train.clip);
        const row = { kernel: 'optimizer', shape: `${n} params`, variant: `${kind}${whh ? ' + W_hh copy' : ''}` };
        const gpuMs = (await timeGpu(r, [d], target, async () => {
          const got = await r.read(Pb, 0, n);
          const change = (x: Float32Array) => x.map((v, i) => v - p[i]);
          expectWithin(row, { 'parameter change': relativeError(change(got), change(ref)) }, CHANGE_TOLERANCE);
          const moments: Record<string, number> = {};
          if (kind !== 'rmsprop') moments.m = relativeError(await r.read(M, 0, n), refState.m);
          if (kind === 'adam' || kind === 'rmsprop') moments.v = relativeError(await r.read(Vb, 0, n), refState.v);
          expectWithin(row, moments, TOLERANCE);
          if (whh) expectWithin(row, { 'W_hh^T': relativeError(await r.read(whhT, 0, H * H), transposedWhh(got, [whhOff], H, H).subarray(0, H * H)) }, 0);
        })).ms;
        const state = newOptimizerState(n);
        const cpuMs = timeCpu(() => optimizerUpdate(kind, p, g, state, 1e-3, 5), target);
        const words = kind === 'adam' ? 7 : 5; // read params, grads, m and/or v; write params, m and/or v
        push({ ...row, gpuMs, cpuMs, gbps: words * 4 * n / gpuMs / 1e6 });
      }
    }

    // --- sample (per token: a dispatch per layer, the logits and the draw; ms per generated token) --
    // Not validated here: its output is a token stream that depends on the whole model and the
    // draws; test/kernels.test.ts ('sample.wgsl vs sampleTokens') holds it to the CPU sampler.
    {
      const Hs = quick ? 128 : 512, length = quick ? 64 : 256;
      const model: ModelConfig = { cell: 'rnn', vocabSize: V, hiddenSize: Hs };
      const backend = await GpuBackend.create(ctx, model, { seqLength: 2, batchSize: 1, optimizer: 'adam', learningRate: 1e-3, clip: 5 }, 1);
      try {
        const o = { prime: Uint32Array.from([1, 2, 3]), length, temperature: 1, seed: 5 };
        await backend.sample(o);
        const t = performance.now();
        await backend.sample(o);
        const gpuMs = (performance.now() - t) / length;
        const params = initParams(model, 1);
        const cpuMs = timeCpu(() => sampleTokens(model, params, o), target) / length;
        push({ kernel: 'sample', shape: `H=${Hs} V=${V}, ${length} tokens`, variant: `ms/token, ${sampleDispatchesPerToken(fullModelConfig(model))} dispatches/token`, gpuMs, cpuMs });
      } finally {
        backend.destroy();
      }
    }
  } finally {
    r.destroy();
  }
  return rows;
}

/** "best (median)" GFLOP/s, or '-'. */
export function gflopsText(k: KernelRow): string {
  if (k.gflops === undefined) return '-';
  return k.gflopsMedian === undefined ? k.gflops.toFixed(2) : `${k.gflops.toFixed(2)} (${k.gflopsMedian.toFixed(2)})`;
}

function format(k: KernelRow): string[] {
  const f = (v: number | undefined, d: number) => (v === undefined ? '-' : v.toFixed(d));
  return [k.kernel, k.shape, k.variant, f(k.gpuMs, 3), f(k.cpuMs, 3), gflopsText(k), f(k.gbps, 2), k.cpuMs === undefined ? '-' : `${(k.cpuMs / k.gpuMs).toFixed(1)}x`];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
  const { acquireNodeGpu, releaseNodeGpu } = await import('../src/node/webgpu.ts');
  const { table } = await import('./report.ts');
  const ctx = await acquireNodeGpu();
  try {
    console.log(`kernels on ${ctx.adapterName}${ctx.isFallback ? ' (software)' : ''}${values.quick ? ', quick' : ''}`);
    const t = performance.now();
    const rows = await runKernelBench(ctx, {
      quick: values.quick,
      allTilings: !values.quick,
      onRow: (k) => console.log(`  ${format(k).slice(0, 4).join('  ')}`),
    });
    const headers = ['kernel', 'shape', 'variant', 'GPU ms', 'CPU ms', 'GFLOP/s best (median)', 'GB/s', 'CPU/GPU'];
    console.log(`\n${table(headers, rows.map(format))}\n(${((performance.now() - t) / 1000).toFixed(1)} s)`);
  } finally {
    releaseNodeGpu(ctx);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await stopOnMismatch(main);
