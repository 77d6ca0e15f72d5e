/**
 * The checks a kernel variant passes before the kernel bench times it (bench/validate.ts over
 * src/gpu/tune.ts's comparisons, which the tuner uses too), without a device: the errors they
 * measure, and the one line that stops the bench.
 */
import { describe, expect, it } from 'vitest';
import { expectWithin, KernelMismatch } from '../bench/validate.ts';
import { productSamples, relativeError, sampledError } from '../src/gpu/tune.ts';
import { Rng } from '../src/util/random.ts';

describe('relativeError', () => {
  it('is the largest difference over the largest reference magnitude', () => {
    expect(relativeError([1, -2, 4.5], [1, -2, 4])).toBeCloseTo(0.5 / 4, 12);
    expect(relativeError([0, 0], [0, -8])).toBe(1);
    expect(relativeError(Float32Array.of(3, 7), Float64Array.of(3, 7))).toBe(0);
  });

  it('is Infinity where an entry was left unwritten (NaN) or overflowed', () => {
    expect(relativeError([1, NaN, 3], [1, 2, 3])).toBe(Infinity);
    expect(relativeError([NaN, 2], [1, 2])).toBe(Infinity);
    expect(relativeError([1, Infinity], [1, 2])).toBe(Infinity);
  });
});

describe('productSamples and sampledError', () => {
  // Every layout on odd shapes with padded leading dimensions, against the full product.
  it.each([[false, false], [true, false], [false, true], [true, true]])('transA %s, transB %s: references are op(A) op(B) entries; a wrong entry shows', (transA, transB) => {
    const rng = new Rng(3);
    const M = 7, N = 5, K = 9;
    const s = { M, N, K, transA, transB, lda: (transA ? M : K) + 2, ldb: (transB ? K : N) + 1, ldc: N + 3 };
    const a = Float32Array.from({ length: (transA ? K : M) * s.lda }, () => 2 * rng.next() - 1);
    const b = Float32Array.from({ length: (transB ? N : K) * s.ldb }, () => 2 * rng.next() - 1);
    const c = new Float32Array(M * s.ldc);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += (transA ? a[k * s.lda + m] : a[m * s.lda + k]) * (transB ? b[n * s.ldb + k] : b[k * s.ldb + n]);
        c[m * s.ldc + n] = sum;
      }
    }
    const samples = productSamples(s, a, b, rng, 20);
    expect(samples).toHaveLength(20);
    expect(samples[0].at).toBe(0);
    expect(samples[1].at).toBe((M - 1) * s.ldc + N - 1);
    expect(sampledError(c, samples)).toBeLessThan(1e-6);
    const wrong = c.slice();
    wrong[samples[1].at] += 0.5;
    expect(sampledError(wrong, samples)).toBeGreaterThan(0.05);
    wrong[samples[1].at] = NaN;
    expect(sampledError(wrong, samples)).toBe(Infinity);
  });
});

describe('expectWithin', () => {
  const row = { kernel: 'column_sum', shape: '2048 x 512', variant: 'main_v4, WG 64 (auto)' };

  it('passes errors at or under the tolerance', () => {
    expect(() => expectWithin(row, { a: 1e-4, b: 0 }, 1e-4)).not.toThrow();
    expect(() => expectWithin(row, {}, 0)).not.toThrow();
  });

  it('stops on the worst output over it, in one line naming kernel, shape, variant and the error', () => {
    let thrown: unknown;
    try {
      expectWithin(row, { h: 2e-4, c: 0.25, saved: 1e-9 }, 1e-4);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(KernelMismatch);
    const message = (thrown as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toBe("kernel bench: column_sum 2048 x 512, main_v4, WG 64 (auto): wrong output before timing: c off by 0.250 of the reference's largest entry (tolerance 1.00e-4)");
  });

  it('never passes NaN or Infinity', () => {
    expect(() => expectWithin(row, { ok: 0, h: NaN }, 1)).toThrow(/h off by NaN/);
    expect(() => expectWithin(row, { h: NaN, ok: 0 }, 1)).toThrow(/h off by NaN/);
    expect(() => expectWithin(row, { h: Infinity }, 1e9)).toThrow(/h off by Infinity/);
  });
});
