/**
 * Every WGSL kernel alone against its CPU twin (llm.c's dev/cuda habit), on odd shapes: sizes that
 * are not multiples of 4 nor of the workgroup, single rows and columns, offsets and padded leading
 * dimensions, so edge handling is exercised, not just the interior.
 *
 * The references run in float64 on the same float32 inputs, so each tolerance below only has to
 * cover the GPU's float32 arithmetic (accumulation order, exp/log/tanh rounding); each is stated
 * next to its test with the reason for its size.
 */
import { describe, expect, it } from 'vitest';
import { gpu, noGpu, relError } from './gpu.ts';
import { Kernels, KernelRunner } from '../src/gpu/kernels/common.ts';
import { MATMUL_CANDIDATES, matmulLaunch, matmulVariantFor, resolveMatmulVariant, type MatmulTiling } from '../src/gpu/kernels/matmul.ts';
import { softmaxXentLaunch } from '../src/gpu/kernels/softmax_xent.ts';
import { lossSumLaunch } from '../src/gpu/kernels/loss_sum.ts';
import { columnSumLaunch } from '../src/gpu/kernels/column_sum.ts';
import { EMBEDDING_GRAD_VARIANTS, embeddingGradLaunch, positionsByToken, type EmbeddingGradVariant } from '../src/gpu/kernels/embedding_grad.ts';
import { optimizerLaunch, optimizerSettings, optimizerUniforms, transposedDecoder, transposedWhh, type DecoderCopy } from '../src/gpu/kernels/optimizer.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import { softmaxNorm } from '../src/cpu/rnn.ts';
import { newOptimizerState, optimizerUpdate } from '../src/cpu/optim.ts';
import { sampleTokens } from '../src/cpu/sample.ts';
import { streamState, type SamplingControls } from '../src/model/backend.ts';
import { paramLayout } from '../src/model/layout.ts';
import { initParams } from '../src/model/init.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import { learningRateAt, OPTIMIZERS, type OptimizerOptions } from '../src/model/optimizer.ts';
import { Rng, uniformAt } from '../src/util/random.ts';
import { SAMPLE_DIRECT_MAX_V } from '../src/gpu/kernels/sample.ts';

const kernels = gpu ? new Kernels(gpu.device) : undefined;

/** A runner whose buffers are freed when `fn` ends; pipelines are shared across the file. */
async function withRunner<T>(fn: (r: KernelRunner) => Promise<T>): Promise<T> {
  const r = new KernelRunner(gpu!.device, kernels);
  try {
    return await fn(r);
  } finally {
    r.destroy();
  }
}

function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * scale;
  return a;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

// ---------------------------------------------------------------------------------------------
// matmul.wgsl: C = op(A) op(B) (+ bias)
// ---------------------------------------------------------------------------------------------

interface Case { M: number; N: number; K: number }

/**
 * Runs one product with A, B, C at non-zero offsets inside larger buffers, leading dimensions
 * padded past the minimum, and C pre-filled with a sentinel, then checks the result against a
 * float64 triple loop and that nothing outside C's M x N window changed. `aligned` puts A and B at
 * offsets and leading dimensions that are multiples of 4 (what the vec4 variants need); otherwise
 * they are odd, which only `main` can read.
 */
async function checkMatmul(c: Case, transA: boolean, transB: boolean, withBias: boolean, tiling: MatmulTiling, seed: number, aligned = false) {
  const { M, N, K } = c;
  const rng = new Rng(seed);
  const up4 = (n: number) => Math.ceil(n / 4) * 4;
  const offA = aligned ? 8 : 5, offB = aligned ? 4 : 7, offC = 3;
  const lda = aligned ? up4(transA ? M : K) + 4 : (transA ? M : K) + 3;
  const ldb = aligned ? up4(transB ? K : N) + 4 : (transB ? K : N) + 2;
  const ldc = N + 1;
  const aRows = transA ? K : M;
  const bRows = transB ? N : K;
  const a = randomArray(rng, offA + aRows * lda + 4);
  // B's buffer also holds the bias, after the matrix.
  const offBias = offB + bRows * ldb + 1;
  const b = randomArray(rng, offBias + N + 3);
  const SENTINEL = 12345;
  const cInit = new Float32Array(offC + M * ldc + 5).fill(SENTINEL);
  const opA = (m: number, k: number) => (transA ? a[offA + k * lda + m] : a[offA + m * lda + k]);
  const opB = (k: number, n: number) => (transB ? b[offB + n * ldb + k] : b[offB + k * ldb + n]);
  const ref = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = withBias ? b[offBias + n] : 0;
      for (let k = 0; k < K; k++) s += opA(m, k) * opB(k, n);
      ref[m * N + n] = s;
    }
  }
  let variant = '';
  const out = await withRunner(async (r) => {
    const A = r.storage(a), B = r.storage(b), C = r.storage(cInit);
    const args = { M, N, K, transA, transB, A, offA, lda, B, offB, ldb, C, offC, ldc, bias: withBias ? offBias : undefined };
    variant = resolveMatmulVariant(args, tiling);
    await r.run([r.launch(matmulLaunch(args, tiling))]);
    return r.read(C);
  });
  const got = new Float64Array(M * N);
  let untouched = true;
  for (let i = 0; i < out.length; i++) {
    const rel = i - offC;
    const inside = rel >= 0 && rel < M * ldc && rel % ldc < N;
    if (inside) got[Math.floor(rel / ldc) * N + (rel % ldc)] = out[i];
    else if (out[i] !== SENTINEL) untouched = false;
  }
  return { err: relError(got, ref), untouched, variant };
}

const ODD_SHAPES: Case[] = [
  { M: 1, N: 1, K: 1 },
  { M: 1, N: 37, K: 5 }, // one row
  { M: 37, N: 1, K: 5 }, // one column
  { M: 13, N: 17, K: 19 },
  { M: 67, N: 70, K: 3 }, // more than one 64-row workgroup tile, and main's 64 columns
  { M: 3, N: 130, K: 66 }, // more than main_vb's 128 columns
  { M: 21, N: 9, K: 513 }, // long K
  { M: 5, N: 6, K: 0 }, // K = 0: the result is the bias alone (the backward recurrence uses it)
];
const COMBOS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];
const name = (transA: boolean, transB: boolean) => `${transA ? 'A^T' : 'A'} ${transB ? 'B^T' : 'B'}`;

describe('matmulVariantFor (host-side choice of the vec4 entry points)', () => {
  const buf = (floats: number) => ({ size: floats * 4 }) as GPUBuffer;
  const base = { M: 10, N: 12, K: 6, lda: 12, ldb: 12, A: buf(200), B: buf(200) };
  it('takes vec4 loads only where offsets, strides and the buffer end allow them', () => {
    expect(matmulVariantFor({ ...base, transA: true })).toBe('main_vab');
    expect(matmulVariantFor(base)).toBe('main_vb');
    expect(matmulVariantFor({ ...base, transB: true })).toBe('main');
    expect(matmulVariantFor({ ...base, offB: 2 })).toBe('main');
    expect(matmulVariantFor({ ...base, ldb: 13 })).toBe('main');
    expect(matmulVariantFor({ ...base, transA: true, lda: 16 })).toBe('main_vab');
    expect(matmulVariantFor({ ...base, transA: true, lda: 10 })).toBe('main_vb');
    // B must hold whole vec4s up to offB + K * ldb (here 72 floats), and the bias too.
    expect(matmulVariantFor({ ...base, B: buf(71) })).toBe('main');
    expect(matmulVariantFor({ ...base, B: buf(72) })).toBe('main_vb');
    expect(matmulVariantFor({ ...base, B: buf(80), bias: 70 })).toBe('main');
    expect(matmulVariantFor({ ...base, B: buf(84), bias: 70 })).toBe('main_vb');
    expect(() => resolveMatmulVariant({ ...base, offB: 1 }, { variant: 'main_vb', wgX: 8, wgY: 8 })).toThrow(/cannot read/);
  });
});

describe.skipIf(noGpu)('matmul.wgsl vs a float64 triple loop', () => {
  // Tolerance: max |C - ref| <= 1e-5 * max |ref| for K up to ~500. float32 accumulation of K
  // products in a different order than the reference: the rounding error is about sqrt(K) * 6e-8
  // of the typical |a b| sum for random signs (1e-6 at K = 513), well inside 1e-5; a wrong index,
  // a missed edge row or column, or a dropped k term gives errors of order 1.
  const MAIN: MatmulTiling = { variant: 'main', wgX: 8, wgY: 8 };
  for (const [transA, transB] of COMBOS) {
    for (const withBias of [false, true]) {
      it(`main (8x8 register block): ${name(transA, transB)}${withBias ? ' + bias' : ''}`, async () => {
        let seed = 1;
        for (const c of ODD_SHAPES) {
          const { err, untouched } = await checkMatmul(c, transA, transB, withBias, MAIN, seed++);
          expect(err, `M=${c.M} N=${c.N} K=${c.K}`).toBeLessThan(1e-5);
          expect(untouched, `M=${c.M} N=${c.N} K=${c.K}: wrote outside C`).toBe(true);
        }
      });
    }
  }

  // The vec4 variants, on aligned layouts ('auto' must pick them there, and `main` on odd ones).
  const vecCases: [string, boolean, boolean][] = [['main_vb', false, false], ['main_vb', true, false], ['main_vab', true, false]];
  for (const [variant, transA, transB] of vecCases) {
    it(`${variant} (vec4 loads): ${name(transA, transB)}, with and without bias`, async () => {
      let seed = 50;
      for (const c of ODD_SHAPES) {
        for (const withBias of [false, true]) {
          const t: MatmulTiling = { variant: variant as MatmulTiling['variant'], wgX: 8, wgY: 8 };
          const { err, untouched } = await checkMatmul(c, transA, transB, withBias, t, seed++, true);
          expect(err, `M=${c.M} N=${c.N} K=${c.K}`).toBeLessThan(1e-5);
          expect(untouched, `M=${c.M} N=${c.N} K=${c.K}: wrote outside C`).toBe(true);
        }
      }
      const auto: MatmulTiling = { variant: 'auto', wgX: 8, wgY: 8 };
      expect((await checkMatmul(ODD_SHAPES[3], transA, transB, true, auto, 1, true)).variant).toBe(transA ? 'main_vab' : 'main_vb');
      expect((await checkMatmul(ODD_SHAPES[3], transA, transB, true, auto, 1, false)).variant).toBe('main');
    });
  }

  // The same products under other launch shapes: the workgroup shape only changes which
  // invocation computes what, so the results must stay within the same tolerance.
  const tilings: MatmulTiling[] = [
    { variant: 'main', wgX: 16, wgY: 4 },
    { variant: 'auto', wgX: 32, wgY: 2 },
    { variant: 'auto', wgX: 4, wgY: 16 },
  ];
  for (const t of tilings) {
    it(`${t.variant} ${t.wgX}x${t.wgY}: all four layouts`, async () => {
      let seed = 100;
      for (const [transA, transB] of COMBOS) {
        for (const c of [ODD_SHAPES[1], ODD_SHAPES[2], ODD_SHAPES[4], ODD_SHAPES[6], ODD_SHAPES[7]]) {
          const withBias = seed % 2 === 0;
          const { err, untouched } = await checkMatmul(c, transA, transB, withBias, t, seed++, t.variant === 'auto');
          expect(err, `${name(transA, transB)} M=${c.M} N=${c.N} K=${c.K}`).toBeLessThan(1e-5);
          expect(untouched).toBe(true);
        }
      }
    });
  }

  // Every candidate the tuner may pick (src/gpu/tuner.ts), workgroup-memory tiles included, on
  // every odd shape and layout, aligned (the vec4 entry points where 'registers' runs them) and not:
  // same tolerance, since only the order of the float32 sums differs.
  for (const [cand, t] of Object.entries(MATMUL_CANDIDATES)) {
    it(`tuner candidate ${cand}: all four layouts, odd shapes, aligned and not`, async () => {
      let seed = 200;
      for (const [transA, transB] of COMBOS) {
        for (const c of ODD_SHAPES) {
          for (const aligned of [false, true]) {
            const withBias = seed % 2 === 0;
            const { err, untouched } = await checkMatmul(c, transA, transB, withBias, t, seed++, aligned);
            expect(err, `${name(transA, transB)} M=${c.M} N=${c.N} K=${c.K}`).toBeLessThan(1e-5);
            expect(untouched).toBe(true);
          }
        }
      }
    });
  }
  it('main_tiled 4x4 (tiles smaller than the shapes): all four layouts', async () => {
    let seed = 300;
    for (const [transA, transB] of COMBOS) {
      for (const c of ODD_SHAPES) {
        const { err, untouched, variant } = await checkMatmul(c, transA, transB, seed % 2 === 0, { variant: 'main_tiled', wgX: 4, wgY: 4 }, seed++);
        expect(variant).toBe('main_tiled');
        expect(err, `${name(transA, transB)} M=${c.M} N=${c.N} K=${c.K}`).toBeLessThan(1e-5);
        expect(untouched).toBe(true);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// softmax_xent.wgsl + loss_sum.wgsl
// ---------------------------------------------------------------------------------------------

describe.skipIf(noGpu)('softmax_xent.wgsl vs the CPU softmax cross-entropy', () => {
  /**
   * Reference per row (float64, softmaxNorm from src/cpu/rnn.ts): loss = log(sum) - (l[t] - max),
   * grad = (softmax - onehot(t)) * scale.
   */
  function reference(logits: Float32Array, targets: Uint32Array, rows: number, cols: number, scale: number) {
    const loss = new Float64Array(rows);
    const grad = new Float64Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const row = Float64Array.from(logits.subarray(r * cols, (r + 1) * cols));
      const { max, sum } = softmaxNorm(row);
      loss[r] = Math.log(sum) - (row[targets[r]] - max);
      for (let c = 0; c < cols; c++) grad[r * cols + c] = (Math.exp(row[c] - max) / sum - (c === targets[r] ? 1 : 0)) * scale;
    }
    return { loss, grad };
  }

  const cases = [
    { rows: 1, cols: 1, spread: 3 },
    { rows: 3, cols: 87, spread: 3 },
    { rows: 200, cols: 5, spread: 3 }, // rows > cols
    { rows: 7, cols: 301, spread: 3 }, // several columns per invocation (workgroup of 64)
    { rows: 9, cols: 64, spread: 80 }, // large logits: e^80 = 5.5e34, near float32's 3.4e38
    { rows: 6, cols: 40, spread: 100 }, // e^100 overflows float32: only max-subtraction keeps this finite
    { rows: 4, cols: 33, spread: 1000 },
    { rows: 130, cols: 1500, spread: 3 }, // wider than a row-per-invocation is chosen for
  ];
  for (const { rows, cols, spread } of cases) {
    it(`rows=${rows} cols=${cols} logits in [-${spread}, ${spread}]`, async () => {
      const rng = new Rng(rows * 31 + cols + spread);
      const logits = randomArray(rng, rows * cols, spread);
      if (spread >= 80) {
        // One row of equal large logits, one with a single dominant one, one with the target far below the max.
        logits.fill(spread, 0, cols);
        logits[cols + 3] = spread;
        logits[2 * cols] = -spread;
      }
      const targets = new Uint32Array(rows);
      for (let r = 0; r < rows; r++) targets[r] = Math.floor(rng.next() * cols);
      const scale = 1 / rows;
      const ref = reference(logits, targets, rows, cols, scale);
      const { grad, loss } = await withRunner(async (r) => {
        // Whole vec4s (the kernel reads a vec4 view), and a sentinel past the logits.
        const L = r.storage(Float32Array.from({ length: Math.ceil((rows * cols + 1) / 4) * 4 }, (_, i) => (i < rows * cols ? logits[i] : 7)));
        const T = r.storage(targets), RL = r.storage(rows + 2);
        await r.run([r.launch(softmaxXentLaunch({ logits: L, targets: T, rowLoss: RL, rows, cols, scale }, r.maxPerDim))]);
        const past = await r.read(L, rows * cols);
        expect(Array.from(past), 'nothing written past the logits').toEqual(Array.from(past, () => 7));
        return { grad: await r.read(L, 0, rows * cols), loss: await r.read(RL, 0, rows) };
      });
      expect(grad.every(Number.isFinite) && loss.every(Number.isFinite)).toBe(true);
      // Loss tolerance: float32 log-sum-exp relative to the row max. The loss is a difference of
      // terms of size up to max|l - max| (2 * spread), each rounded to ~6e-8 relative, so allow
      // 1e-6 * (1 + 2 * spread) absolute (2e-4 at spread 80, still 1e-6 relative to the logits).
      const lossTol = 1e-6 * (1 + 2 * spread);
      for (let r = 0; r < rows; r++) expect(Math.abs(loss[r] - ref.loss[r]), `row ${r}`).toBeLessThan(lossTol);
      // Gradient tolerance: softmax - onehot lies in [-1, 1]; float32 exp of (l - max) is off by
      // ~1e-7 relative plus ulp(l - max) / 2 in the exponent (1e-5 at |l - max| ~ 2000), and
      // dividing by the float32 sum adds cols * 6e-8. So 1e-5 of max |grad| for ordinary logits,
      // 3e-5 for the +-1000 case. A wrong max, a missed column or a wrong target give order 1.
      expect(relError(grad, ref.grad)).toBeLessThan(spread > 100 ? 3e-5 : 1e-5);
    });
  }
});

describe('softmax_xent: the buffer it needs', () => {
  it('refuses a logits buffer whose last logits a vec4 view cannot reach', () => {
    const launch = (bytes: number) => softmaxXentLaunch({ logits: { size: bytes }, targets: { size: 12 }, rowLoss: { size: 12 }, rows: 3, cols: 87, scale: 1 }, 65535);
    expect(() => launch(4 * 3 * 87)).toThrow(/whole vec4s/);
    expect(launch(4 * 3 * 88).entryPoint).toBe('main');
  });
});

describe.skipIf(noGpu)('loss_sum.wgsl vs a float64 sum', () => {
  // Tolerance: relative 1e-6. Positive terms summed in float32 by a 256-wide strided loop then a
  // tree: error <= (n / 256 + 8) * 6e-8 relative, 3e-7 at n = 3000.
  for (const n of [1, 5, 255, 256, 257, 3 * 256 + 7, 3001]) {
    it(`n=${n}`, async () => {
      const rng = new Rng(n);
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = rng.next() * 5;
      const scale = 1 / n;
      let ref = 0;
      for (let i = 0; i < n; i++) ref += x[i];
      ref *= scale;
      const got = await withRunner(async (r) => {
        const X = r.storage(x), O = r.storage(new Float32Array([7, 7, 7, 7]));
        await r.run([r.launch(lossSumLaunch({ rowLoss: X, out: O, n, scale }))]);
        return r.read(O);
      });
      expect(Math.abs(got[0] - ref) / ref).toBeLessThan(1e-6);
      expect(Array.from(got.subarray(1))).toEqual([7, 7, 7]);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// column_sum.wgsl, embedding_grad.wgsl
// ---------------------------------------------------------------------------------------------

describe.skipIf(noGpu)('column_sum.wgsl vs a float64 column sum', () => {
  // Tolerance: 1e-5 of max |ref|. A float32 running sum over `rows` values in [-1, 1]: the error
  // is at most rows * 6e-8 * max|x| = 2e-5 absolute at rows = 300 in the worst case, against
  // column sums of order sqrt(rows) ~ 17 in size, so ~1e-6 relative. main_v4 (where cols and offX
  // are multiples of 4) must give main's bits: it sums each column in the same order.
  const cases = [
    { rows: 1, cols: 1, offX: 3 }, { rows: 1, cols: 70, offX: 3 }, { rows: 70, cols: 1, offX: 3 }, { rows: 129, cols: 65, offX: 3 }, { rows: 300, cols: 3, offX: 3 },
    { rows: 7, cols: 8, offX: 4 }, { rows: 33, cols: 1028, offX: 0 }, { rows: 2, cols: 300, offX: 12 },
    // Grids wider than maxPerDim workgroups continue in y.
    { rows: 33, cols: 1028, offX: 0, maxPerDim: 3 }, { rows: 2, cols: 300, offX: 12, maxPerDim: 2 },
  ];
  for (const { rows, cols, offX, maxPerDim } of cases) {
    const variants = cols % 4 === 0 && offX % 4 === 0 ? ['main', 'main_v4'] as const : ['main'] as const;
    it(`rows=${rows} cols=${cols} offX=${offX}${maxPerDim ? ` maxPerDim=${maxPerDim}` : ''}: ${variants.join(', ')}`, async () => {
      const rng = new Rng(rows * 13 + cols);
      const offOut = 5;
      const x = randomArray(rng, offX + rows * cols + 2);
      const outInit = new Float32Array(offOut + cols + 4).fill(-9);
      const ref = new Float64Array(cols);
      for (let rr = 0; rr < rows; rr++) for (let c = 0; c < cols; c++) ref[c] += x[offX + rr * cols + c];
      const results = await withRunner(async (r) => {
        const X = r.storage(x);
        const out: Float32Array[] = [];
        for (const variant of variants) {
          const O = r.storage(outInit);
          const launch = columnSumLaunch({ X, out: O, rows, cols, offX, offOut, variant }, maxPerDim);
          if (maxPerDim) expect(launch.x).toBeLessThanOrEqual(maxPerDim);
          await r.run([r.launch(launch)]);
          out.push(await r.read(O));
        }
        return out;
      });
      results.forEach((got, k) => {
        expect(relError(got.subarray(offOut, offOut + cols), ref), variants[k]).toBeLessThan(1e-5);
        expect([...got.subarray(0, offOut), ...got.subarray(offOut + cols)].every((v) => v === -9), variants[k]).toBe(true);
        expect(Array.from(got), `${variants[k]}: main's bits`).toEqual(Array.from(results[0]));
      });
    });
  }
  it('main_v4 from 1024 columns where the layout allows it', () => {
    const pick = (rows: number, cols: number, offX: number, words = offX + rows * cols) =>
      columnSumLaunch({ X: { size: 4 * words }, out: { size: 4 * cols }, rows, cols, offX }).entryPoint;
    expect([pick(2048, 10_000, 0), pick(2048, 256, 0), pick(3, 1025, 0), pick(3, 1024, 2), pick(3, 1024, 0, 3 * 1024 - 1)]).toEqual(['main_v4', 'main', 'main', 'main', 'main']);
    expect(() => columnSumLaunch({ X: { size: 4 * 30 }, out: { size: 4 * 10 }, rows: 3, cols: 10, variant: 'main_v4' })).toThrow(/cannot read/);
  });
});

describe.skipIf(noGpu)('embedding_grad.wgsl vs a direct scatter-add', () => {
  // dWxh[i, v] = sum over positions p with input token v of dZ[p, i]. Tokens that never occur
  // must get exactly 0 (the kernel writes every entry). Tolerance: 1e-6 of max |ref|: each entry
  // is a float32 sum of the few positions holding that token (at most 40 here). Every variant the
  // shape allows runs, and all give main's bits (they add a token's positions in the same order).
  const cases = [
    { H: 7, V: 13, N: 23, used: 5, offOut: 3 },
    { H: 1, V: 1, N: 1, used: 1, offOut: 3 },
    { H: 37, V: 87, N: 200, used: 40, offOut: 3 },
    { H: 12, V: 87, N: 61, used: 9, offOut: 3 }, // main_r4: H a multiple of 4, V not
    { H: 8, V: 44, N: 100, used: 30, offOut: 4 }, // main_4x4
    { H: 20, V: 16, N: 37, used: 7, offOut: 8 },
    // H * V > 65535 * 64: the grid spills into y (grid1D), as for large word-level vocabularies.
    { H: 64, V: 65537, N: 50, used: 30, offOut: 3 },
    { H: 64, V: 65536, N: 50, used: 30, offOut: 0 },
  ];
  for (const { H, V, N, used, offOut } of cases) {
    const variants = (Object.keys(EMBEDDING_GRAD_VARIANTS) as EmbeddingGradVariant[]).filter((v) =>
      v === 'main' || (H % 4 === 0 && (v === 'main_r4' || (V % 4 === 0 && offOut % 4 === 0))));
    it(`H=${H} V=${V} positions=${N}, ${used} distinct tokens, offOut=${offOut}: ${variants.join(', ')}`, async () => {
      const rng = new Rng(H + V + N);
      const vocab = Array.from({ length: used }, () => Math.floor(rng.next() * V));
      const tokens = new Uint32Array(N);
      for (let p = 0; p < N; p++) tokens[p] = vocab[Math.floor(rng.next() * used)];
      const dZ = randomArray(rng, N * H);
      const ref = new Float64Array(H * V);
      for (let p = 0; p < N; p++) for (let i = 0; i < H; i++) ref[i * V + tokens[p]] += dZ[p * H + i];
      const { start, positions } = positionsByToken(tokens, V);
      const size = Math.ceil((offOut + H * V + 2) / 4) * 4;
      const results = await withRunner(async (r) => {
        const Z = r.storage(dZ), S = r.storage(start), P = r.storage(positions);
        const out: Float32Array[] = [];
        for (const variant of variants) {
          const O = r.storage(new Float32Array(size).fill(5));
          const l = embeddingGradLaunch({ dZ: Z, start: S, positions: P, out: O, H, V, N, offOut, variant }, r.maxPerDim);
          expect(l.entryPoint).toBe(variant);
          await r.run([r.launch(l)]);
          out.push(await r.read(O));
        }
        expect(embeddingGradLaunch({ dZ: Z, start: S, positions: P, out: r.storage(size), H, V, N, offOut }, r.maxPerDim).entryPoint).toBe(variants[variants.length - 1]);
        return out;
      });
      results.forEach((got, k) => {
        const g = got.subarray(offOut, offOut + H * V);
        expect(relError(g, ref), variants[k]).toBeLessThan(1e-6);
        // Loops, not toEqual: these arrays reach 4M entries.
        expect(got.findIndex((x, i) => !Object.is(x, results[0][i])), `${variants[k]}: first entry that differs from main's`).toBe(-1);
        const seen = new Set(tokens);
        const unseen = (v: number) => !seen.has(v) && Array.from({ length: H }, (_, i) => g[i * V + v]).some((x) => x !== 0);
        expect(Array.from({ length: Math.min(V, 500) }, (_, v) => v).filter(unseen), `${variants[k]}: tokens never seen, not zero`).toEqual([]);
        expect([...got.subarray(0, offOut), ...got.subarray(offOut + H * V)].every((x) => x === 5), `${variants[k]}: nothing else written`).toBe(true);
      });
    });
  }
  it('refuses a variant the layout does not allow', () => {
    const b = (n: number) => ({ size: 4 * n });
    expect(() => embeddingGradLaunch({ dZ: b(40), start: b(14), positions: b(4), out: b(200), H: 10, V: 13, N: 4, variant: 'main_r4' }, 65535)).toThrow(/cannot run/);
    expect(embeddingGradLaunch({ dZ: b(48), start: b(14), positions: b(4), out: b(160), H: 12, V: 13, N: 4 }, 65535).entryPoint).toBe('main_r4');
    expect(embeddingGradLaunch({ dZ: b(48), start: b(17), positions: b(4), out: b(192), H: 12, V: 16, N: 4 }, 65535).entryPoint).toBe('main_4x4');
    expect(embeddingGradLaunch({ dZ: b(48), start: b(17), positions: b(4), out: b(193), H: 12, V: 16, N: 4, offOut: 1 }, 65535).entryPoint).toBe('main_r4');
  });
});

// ---------------------------------------------------------------------------------------------
// optimizer.wgsl
// ---------------------------------------------------------------------------------------------

describe.skipIf(noGpu)('optimizer.wgsl vs optimizerUpdate', () => {
  // Several steps with gradients up to 4x the clip, compared after every step with the float64
  // twin. Tolerances: the moments within 1e-6 of their max (a few float32 roundings per step);
  // the parameters' total change within 1e-5 of its max: each step's lr * g / sqrt(m) (or Adam's
  // m_hat / (sqrt(v_hat) + eps), RMSprop's g / (sqrt(v) + eps), SGD's buf or g + mu * buf) carries
  // ~4 float32 roundings (sqrt, divide, the bias corrections rounded to float32), ~3e-7 relative,
  // accumulated over the steps. Each runs under a step schedule that decays the rate every 2 steps,
  // through optimizerSettings as the backend calls it, so the uniforms carry the scheduled rate.
  const optimizers: OptimizerOptions[] = [
    { optimizer: 'adagrad' }, { optimizer: 'adam' }, { optimizer: 'rmsprop' }, { optimizer: 'rmsprop', rmsDecay: 0.7 },
    { optimizer: 'sgd' }, { optimizer: 'sgd', momentum: 0.5, nesterov: true }, { optimizer: 'sgd', momentum: 0 },
  ];
  optimizers.forEach((o, k) => {
    it(`${JSON.stringify(o)}: 6 steps over 1003 parameters, gradients beyond the clip`, async () => {
      const n = 1003;
      const lr = 0.05, clip = 5, kind = o.optimizer;
      const train: TrainConfig = { ...o, seqLength: 1, batchSize: 1, learningRate: lr, clip, lrSchedule: { kind: 'step', decay: 0.5, every: 2, after: 2 } };
      const rng = new Rng(k + 1);
      const p0 = randomArray(rng, n);
      const cpuParams = Float64Array.from(p0);
      const state = newOptimizerState(n, Float64Array);
      await withRunner(async (r) => {
        const P = r.storage(p0), G = r.storage(n), Mb = r.storage(n), Vb = r.storage(n);
        for (let step = 1; step <= 6; step++) {
          const g = randomArray(rng, n, 4 * clip);
          g[0] = 1e6; g[1] = -1e6; g[2] = 0; // far beyond the clip both ways, and zero
          g[3] = 1e-7; // so small that where eps sits (inside or outside the square root) decides the step
          r.write(G, g);
          const settings = { ...optimizerSettings(train, n, { layers: 0, rows: 0, cols: 0 }, step), whh: undefined };
          expect(settings.lr).toBe(learningRateAt(lr, train.lrSchedule, step));
          optimizerUpdate(o, cpuParams, Float64Array.from(g), state, settings.lr, clip);
          const uniforms = optimizerUniforms(settings, r.maxPerDim);
          // No W_hh copies to keep: whhT and whhAt are bound to buffers it leaves alone.
          await r.run([r.launch(optimizerLaunch({ params: P, grads: G, m: Mb, v: Vb, whhT: r.storage(4), whhAt: r.storage(4), n, kind, uniforms }, r.maxPerDim))]);
          const [params, m, v] = [await r.read(P, 0, n), await r.read(Mb, 0, n), await r.read(Vb, 0, n)];
          const dGpu = params.map((x, i) => x - p0[i]);
          const dCpu = cpuParams.map((x, i) => x - p0[i]);
          expect(relError(dGpu, dCpu), `step ${step}`).toBeLessThan(1e-5);
          if (kind === 'rmsprop') expect(m.every((x) => x === 0), 'RMSprop leaves m alone').toBe(true);
          else expect(relError(m, state.m), `step ${step} m`).toBeLessThan(1e-6);
          if (kind === 'adam' || kind === 'rmsprop') expect(relError(v, state.v), `step ${step} v`).toBeLessThan(1e-6);
          else expect(v.every((x) => x === 0), `${kind} leaves v alone`).toBe(true);
          // The clip: the first moments saw exactly +-clip (Adagrad: clip^2 per step).
          if (kind === 'adagrad') expect(m[0]).toBeCloseTo(step * clip * clip, 3);
          // SGD without momentum is plain SGD: each step moves by exactly lr * clip at the clipped element.
          if (kind === 'sgd' && o.momentum === 0) expect(m[0]).toBe(clip);
        }
      });
    });
  });
});

describe.skipIf(noGpu)('optimizer.wgsl: the transposed W_hh and decoder copies cell_forward and the logits product read', () => {
  // Exact: each copy is the updated parameter itself, moved. Two layers' W_hh [rows, cols] at odd
  // offsets, and a decoder [9, 7] with its bias, copied with a padded row stride (12); everything
  // else in whhT (the spare floats, the padding columns) must stay as it was.
  it.each(OPTIMIZERS)('%s: match transposedWhh and transposedDecoder of the updated parameters after each of 3 steps, and nothing else is written', async (kind) => {
    const n = 301, rows = 12, cols = 7, offsets = [5, 140];
    const decoder: DecoderCopy = { at: 201, biasAt: 283, rows: 9, cols: 7, off: offsets.length * rows * cols + 20, ld: 12 };
    const train: TrainConfig = { optimizer: kind, seqLength: 1, batchSize: 1, learningRate: 0.01, clip: 5 };
    const rng = new Rng(9);
    await withRunner(async (r) => {
      const P = r.storage(randomArray(rng, n)), G = r.storage(n), Mb = r.storage(n), Vb = r.storage(n);
      const size = decoder.off + (decoder.cols + 1) * decoder.ld + 4;
      const whhT = r.storage(new Float32Array(size).fill(7)), whhAt = r.storage(Uint32Array.from(offsets));
      for (let step = 1; step <= 3; step++) {
        r.write(G, randomArray(rng, n));
        const before = await r.read(P, 0, n);
        const whh = { layers: offsets.length, rows, cols, decoder };
        const uniforms = optimizerUniforms(optimizerSettings(train, n, whh, step), r.maxPerDim);
        await r.run([r.launch(optimizerLaunch({ params: P, grads: G, m: Mb, v: Vb, whhT, whhAt, n, kind, whh, uniforms }, r.maxPerDim))]);
        const updated = await r.read(P, 0, n);
        const want = new Float32Array(size).fill(7);
        want.set(transposedWhh(updated, offsets, rows, cols).subarray(0, offsets.length * rows * cols));
        const dec = transposedDecoder(updated, decoder);
        for (let k = 0; k <= decoder.cols; k++) want.set(dec.subarray(k * decoder.ld, k * decoder.ld + decoder.rows), decoder.off + k * decoder.ld);
        expect(Array.from(await r.read(whhT)), `step ${step}`).toEqual(Array.from(want));
        expect(Array.from(updated), `step ${step}: the parameters moved`).not.toEqual(Array.from(before));
      }
    });
  });
  it('transposedDecoder: W^T with the bias as the last row', () => {
    const params = Float32Array.from({ length: 20 }, (_, i) => i);
    // W [2, 3] at 1: rows (1 2 3), (4 5 6); bias [2] at 10.
    const out = transposedDecoder(params, { at: 1, biasAt: 10, rows: 2, cols: 3, off: 0, ld: 4 });
    expect(Array.from(out)).toEqual([1, 4, 0, 0, 2, 5, 0, 0, 3, 6, 0, 0, 10, 11, 0, 0]);
  });
});

// ---------------------------------------------------------------------------------------------
// sample.wgsl (through GpuBackend.sampleWithProbs) vs sampleTokens
// ---------------------------------------------------------------------------------------------

describe.skipIf(noGpu)('sample.wgsl vs sampleTokens', () => {
  type Net = Pick<ModelConfig, 'cell' | 'layers'>;
  interface Extra { controls?: SamplingControls; streams?: number }
  async function sampleBoth(H: number, V: number, primeLen: number, length: number, temperature: number, seed: number, net: Net = { cell: 'rnn' }, carried = false, extra: Extra = {}) {
    const model: ModelConfig = { ...net, vocabSize: V, hiddenSize: H };
    const L = net.layers ?? 1;
    const streams = extra.streams ?? 1;
    const params = initParams(model, seed) as Float32Array;
    // Sharper distributions than the initialisation gives, so sampling is not near-uniform.
    const { decoderWeight: Why, decoderBias: by } = paramLayout(model);
    const rng = new Rng(seed + 1);
    for (let i = 0; i < Why.size; i++) params[Why.offset + i] *= 6;
    for (let i = 0; i < by.size; i++) params[by.offset + i] = 2 * rng.next() - 1;
    const prime = new Uint32Array(primeLen);
    for (let i = 0; i < primeLen; i++) prime[i] = Math.floor(rng.next() * V);
    const opts = { prime, length, temperature, seed, controls: extra.controls };

    // With `carried`, a training state of 3 streams: sampling must start from stream 0's slice of it.
    const B = carried ? 3 : 1;
    const state = (scale: number) => Float32Array.from({ length: L * B * H }, () => scale * (2 * rng.next() - 1));
    const carriedState = { hidden: state(carried ? 0.9 : 0), ...(net.cell === 'lstm' ? { cellState: state(carried ? 2 : 0) } : {}) };
    const start = streamState(model, B, carriedState);
    // The CPU twin, stream by stream (sample n draws uniformAt(seed, n, k)).
    const cpu = Array.from({ length: streams }, (_, stream) => {
      const probs = new Map<number, Float64Array>();
      const tokens = sampleTokens(model, params, { ...opts, start, stream, onProbs: (k, p) => probs.set(k, p.slice()) });
      return { tokens, probs };
    });
    if (carried) {
      // The start state must matter: from zeros the first distribution differs.
      const fromZero = new Map<number, Float64Array>();
      sampleTokens(model, params, { ...opts, onProbs: (k, p) => fromZero.set(k, p.slice()) });
      expect(maxAbsDiff(fromZero.get(primeLen - 1)!, cpu[0].probs.get(primeLen - 1)!)).toBeGreaterThan(1e-3);
    }
    const backend = await GpuBackend.create(gpu!, model, { seqLength: 2, batchSize: B, optimizer: 'adam', learningRate: 1e-3, clip: 5 }, seed);
    try {
      backend.importState({ params, optM: new Float32Array(params.length), optV: new Float32Array(params.length), optStep: 0, ...carriedState });
      const g = await backend.sampleStreams(opts, streams, true);
      const seqLen = primeLen + length;
      return {
        cpuTokens: cpu[0].tokens, cpuProbs: cpu[0].probs, tokens: g.tokens[0], probs: g.probs!, primeLen, V,
        streams: cpu.map((c, n) => ({ cpuTokens: c.tokens, cpuProbs: c.probs, tokens: g.tokens[n], probs: g.probs!.subarray(n * seqLen * V, (n + 1) * seqLen * V), primeLen, V })),
      };
    } finally {
      backend.destroy();
    }
  }

  /**
   * Walks the generated steps: probabilities must agree within `tol`; a token may differ only
   * where the uniform lands within 1e-5 of a CDF boundary (float32 vs float64 rounding can move
   * the boundary that much), after which the two sequences legitimately part ways. Returns how
   * many steps were compared. With the filters a float32 logit or mass can also land on the other
   * side of a kept set's edge: a step whose supports differ ends the walk too (the callers require
   * most steps compared, and the distribution test below checks the draws statistically).
   */
  function compare(s: Omit<Awaited<ReturnType<typeof sampleBoth>>, 'streams'>, seed: number, tol: number, stream = 0): number {
    const { primeLen, V } = s;
    let compared = 0;
    for (let j = 0; j < s.tokens.length; j++) {
      const k = primeLen - 1 + j; // the step that drew output token j
      const p = s.cpuProbs.get(k)!;
      const g = s.probs.subarray(k * V, (k + 1) * V);
      // A kept set's edge moved (not an exp underflowing in float32 only): the walk ends here.
      if (p.some((x, v) => (x > 0) !== (g[v] > 0) && Math.max(x, g[v]) > 1e-6)) return compared;
      expect(maxAbsDiff(g, p), `step ${k} probabilities`).toBeLessThan(tol);
      compared++;
      if (s.tokens[j] !== s.cpuTokens[j]) {
        const u = uniformAt(seed, stream, k);
        let cdf = 0;
        let nearest = Infinity;
        for (let v = 0; v < V; v++) {
          cdf += p[v];
          nearest = Math.min(nearest, Math.abs(u - cdf));
        }
        expect(nearest, `step ${k}: GPU drew ${s.tokens[j]}, CPU ${s.cpuTokens[j]}, u=${u}`).toBeLessThan(1e-5);
        break;
      }
    }
    return compared;
  }

  // Probability tolerance: 2e-5 absolute. The GPU runs the recurrence in float32 (h, a dot of
  // length H per unit) and the CPU in float64; after hundreds of steps h differs by ~1e-6, the
  // logits (dots of length H with weights scaled x6) by ~1e-5 * |Why| and the probabilities,
  // which move by at most p (1 - p) / 2 per unit of logit, by well under 2e-5.
  const cases: { H: number; V: number; primeLen: number; length: number; temperature: number; seed: number; net?: Net; carried?: boolean }[] = [
    { H: 37, V: 11, primeLen: 1, length: 300, temperature: 1, seed: 7 },
    { H: 300, V: 300, primeLen: 200, length: 150, temperature: 0.7, seed: 8 }, // > WG units and classes per invocation; long prime
    { H: 16, V: 5, primeLen: 3, length: 140, temperature: 1.6, seed: 9 },
    { H: 37, V: 11, primeLen: 5, length: 200, temperature: 1, seed: 10, net: { cell: 'lstm' } },
    { H: 29, V: 13, primeLen: 2, length: 200, temperature: 0.9, seed: 12, net: { cell: 'gru' } },
    { H: 300, V: 40, primeLen: 130, length: 60, temperature: 1, seed: 13, net: { cell: 'lstm', layers: 2 } }, // > WG units, two layers
    { H: 21, V: 9, primeLen: 3, length: 150, temperature: 1.2, seed: 14, net: { cell: 'gru', layers: 3 } },
    // From stream 0 of a carried training state (Backend.sample), not from zeros.
    { H: 19, V: 7, primeLen: 1, length: 100, temperature: 1, seed: 15, net: { cell: 'rnn', layers: 2 }, carried: true },
    { H: 23, V: 10, primeLen: 2, length: 100, temperature: 1, seed: 16, net: { cell: 'lstm', layers: 2 }, carried: true },
  ];
  for (const c of cases) {
    it(`${c.net ? `${c.net.cell} L=${c.net.layers ?? 1} ` : ''}H=${c.H} V=${c.V} prime ${c.primeLen} + ${c.length} steps, temperature ${c.temperature}${c.carried ? ', from a carried state' : ''}`, async () => {
      const s = await sampleBoth(c.H, c.V, c.primeLen, c.length, c.temperature, c.seed, c.net, c.carried);
      const compared = compare(s, c.seed, 2e-5);
      // A boundary hit is rare (probability ~2e-5 per step): most steps must have been compared.
      expect(compared).toBeGreaterThan(c.length / 2);
      // Not degenerate: several distinct tokens were drawn.
      expect(new Set(s.tokens).size).toBeGreaterThan(2);
    });
  }

  it('temperature 0 takes the argmax (GPU tokens equal the CPU argmax sequence)', async () => {
    const s = await sampleBoth(45, 23, 130, 170, 0, 11); // prime and generation both span dispatches (128 steps each)
    expect(Array.from(s.tokens)).toEqual(Array.from(s.cpuTokens));
  });

  // The sampling controls, several streams side by side in the same dispatches: each GPU stream n
  // against sampleTokens' stream n, same tolerance and boundary rule as above.
  const controlled: { H: number; V: number; primeLen: number; length: number; temperature: number; seed: number; net: Net; streams: number; controls: SamplingControls }[] = [
    { H: 37, V: 11, primeLen: 1, length: 80, temperature: 1, seed: 21, net: { cell: 'rnn' }, streams: 4, controls: { topK: 4 } },
    { H: 29, V: 40, primeLen: 2, length: 80, temperature: 1.2, seed: 22, net: { cell: 'gru' }, streams: 3, controls: { topP: 0.8 } },
    { H: 23, V: 30, primeLen: 3, length: 60, temperature: 1, seed: 23, net: { cell: 'lstm', layers: 2 }, streams: 3, controls: { topK: 10, topP: 0.9, repetitionPenalty: 1.4, repetitionWindow: 6 } },
    { H: 19, V: 25, primeLen: 2, length: 60, temperature: 0.9, seed: 24, net: { cell: 'rnn' }, streams: 2, controls: { repetitionPenalty: 0.7 } },
    // More classes than invocations (2 per slice), a long prime spanning dispatches, the whole-sequence window.
    { H: 40, V: 300, primeLen: 130, length: 60, temperature: 1, seed: 25, net: { cell: 'rnn' }, streams: 2, controls: { topK: 20, topP: 0.7, repetitionPenalty: 1.2 } },
    // Past SAMPLE_DIRECT_MAX_V: the filters by binary search over the logits' keys.
    { H: 16, V: SAMPLE_DIRECT_MAX_V + 77, primeLen: 2, length: 40, temperature: 1, seed: 28, net: { cell: 'rnn' }, streams: 2, controls: { topK: 30 } },
    { H: 16, V: SAMPLE_DIRECT_MAX_V + 77, primeLen: 2, length: 40, temperature: 1.3, seed: 29, net: { cell: 'gru' }, streams: 2, controls: { topK: 50, topP: 0.6, repetitionPenalty: 1.3, repetitionWindow: 10 } },
    // The decoder's own dispatch (V past what the draw computes itself), two layers, 11 streams: blocks of 8, the last one clamped.
    { H: 20, V: SAMPLE_DIRECT_MAX_V + 9, primeLen: 3, length: 30, temperature: 1, seed: 30, net: { cell: 'lstm', layers: 2 }, streams: 11, controls: { topP: 0.9 } },
  ];
  for (const c of controlled) {
    it(`${c.net.cell} L=${c.net.layers ?? 1} H=${c.H} V=${c.V}, ${c.streams} streams, ${JSON.stringify(c.controls)}`, async () => {
      const s = await sampleBoth(c.H, c.V, c.primeLen, c.length, c.temperature, c.seed, c.net, false, { controls: c.controls, streams: c.streams });
      let compared = 0;
      for (const [n, one] of s.streams.entries()) {
        compared += compare(one, c.seed, 2e-5, n);
        expect(new Set(one.tokens).size, `stream ${n} draws several tokens`).toBeGreaterThan(2);
      }
      expect(compared).toBeGreaterThan((c.streams * c.length) / 2);
      // The streams are independent samples, not copies.
      expect(Array.from(s.streams[1].tokens)).not.toEqual(Array.from(s.streams[0].tokens));
      // The filters bite: some step kept fewer tokens than the vocabulary.
      if (c.controls.topK || c.controls.topP) expect([...s.cpuProbs.values()].some((p) => p.some((x) => x === 0))).toBe(true);
    });
  }

  it('temperature 0 with top-k, top-p and a penalty: the argmax of the penalised logits, token for token', async () => {
    const controls = { topK: 3, topP: 0.5, repetitionPenalty: 3, repetitionWindow: 8 };
    const s = await sampleBoth(31, 17, 3, 150, 0, 26, { cell: 'gru' }, false, { controls, streams: 2 });
    expect(Array.from(s.tokens)).toEqual(Array.from(s.cpuTokens));
    expect(Array.from(s.streams[1].tokens)).toEqual(Array.from(s.tokens)); // argmax draws nothing
    // The penalty changed the text: plain argmax differs.
    const plain = await sampleBoth(31, 17, 3, 150, 0, 26, { cell: 'gru' });
    expect(Array.from(plain.tokens)).not.toEqual(Array.from(s.tokens));
  });

  /**
   * Pearson's chi-square of observed counts against expected probabilities, bins with an expected
   * count under 5 pooled into one; with its degrees of freedom.
   */
  function chiSquare(counts: number[], probs: ArrayLike<number>, n: number): { stat: number; df: number } {
    let stat = 0, bins = 0, restObs = 0, restExp = 0;
    for (let v = 0; v < counts.length; v++) {
      const e = probs[v] * n;
      if (e >= 5) {
        stat += (counts[v] - e) ** 2 / e;
        bins++;
      } else {
        restObs += counts[v];
        restExp += e;
      }
    }
    if (restExp > 0) {
      stat += (restObs - restExp) ** 2 / restExp;
      bins++;
    }
    return { stat, df: bins - 1 };
  }
  /** The chi-square quantile 1 - alpha by Wilson-Hilferty (z = 3.719 for alpha = 1e-4), accurate to a few percent from df = 3. */
  const chiCritical = (df: number, z = 3.719) => df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;

  for (const V of [40, SAMPLE_DIRECT_MAX_V + 77]) it(`distribution, V=${V} (${V > SAMPLE_DIRECT_MAX_V ? 'binary search' : 'ranks'}): 2048 streams side by side draw their first token from the CPU's filtered distribution (chi-square, alpha 1e-4)`, async () => {
    const streams = 2048;
    const controls = { topK: 12, topP: 0.85, repetitionPenalty: 1.3, repetitionWindow: 3 };
    // Temperature 1.5 spreads the mass so that many tokens survive the filters; each stream draws one token.
    const s = await sampleBoth(24, V, 4, 1, 1.5, 27, { cell: 'lstm' }, false, { controls, streams });
    const k = 3; // the step that draws the first token
    const p = s.cpuProbs.get(k)!;
    const support = [...p.keys()].filter((v) => p[v] > 0);
    expect(support.length).toBeGreaterThan(4);
    expect(support.length).toBeLessThan(12 + 1);
    const counts = new Array<number>(s.V).fill(0);
    for (const one of s.streams) counts[one.tokens[0]]++;
    // Nothing outside the kept set, and the GPU's own recorded distribution is the CPU's.
    for (let v = 0; v < s.V; v++) if (p[v] === 0) expect(counts[v], `token ${v} was filtered out`).toBe(0);
    expect(maxAbsDiff(s.probs.subarray(k * s.V, (k + 1) * s.V), p)).toBeLessThan(2e-5);
    const { stat, df } = chiSquare(counts, p, streams);
    expect(stat, `chi-square ${stat.toFixed(1)} on ${df} degrees of freedom`).toBeLessThan(chiCritical(df));
    // Total variation within 4 standard errors of the empirical distribution's: sum_v sqrt(p(1-p)/n).
    const tv = support.reduce((a, v) => a + Math.abs(counts[v] / streams - p[v]), 0) / 2;
    const tvBound = 4 * support.reduce((a, v) => a + Math.sqrt((p[v] * (1 - p[v])) / streams), 0) / 2;
    expect(tv).toBeLessThan(tvBound);
    // The test can fail: the unfiltered distribution would have put many of these draws outside
    // the kept set, where there are none.
    const unfiltered = (await sampleBoth(24, V, 4, 1, 1.5, 27, { cell: 'lstm' })).cpuProbs.get(k)!;
    const outside = unfiltered.reduce((a, q, v) => a + (p[v] === 0 ? q : 0), 0);
    expect(outside * streams).toBeGreaterThan(100);
    // Same seed, same text: almost every stream's token is the CPU's own stream's.
    const same = s.streams.filter((one) => one.tokens[0] === one.cpuTokens[0]).length;
    expect(same).toBeGreaterThan(streams - 5);
  });
});
