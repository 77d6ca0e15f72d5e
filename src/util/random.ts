/**
 * Seeded randomness shared by both backends.
 *
 * `Rng` (xoshiro128**) drives initialisation and anything the host decides. `uniformAt` is a
 * counter-based hash (PCG-style) so the GPU sampler can draw the same numbers in parallel:
 * shaders/lib/hash.wgsl implements the same function, and the sampling parity test holds the two
 * to the same tokens.
 */
export class Rng {
  private s: Uint32Array;

  constructor(seed: number) {
    // splitmix32 spreads any seed (0 included) over the four words of state.
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  getState(): number[] {
    return Array.from(this.s);
  }

  setState(state: number[]): void {
    if (state.length !== 4) throw new Error('rng state must have 4 words');
    this.s.set(state);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** PCG hash (O'Neill's output permutation), as in shaders/lib/hash.wgsl. */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/**
 * The uniform in [0, 1) that stream `stream` uses at step `step` for seed `seed`: 24 random bits,
 * so the value is exact in f32 on the GPU and in f64 here.
 */
export function uniformAt(seed: number, stream: number, step: number): number {
  const h = pcgHash((pcgHash((pcgHash(seed >>> 0) ^ (stream >>> 0)) >>> 0) ^ (step >>> 0)) >>> 0);
  return (h >>> 8) / 16777216;
}
