/**
 * Count-based language models, the baselines a recurrent model has to beat: a unigram model and
 * bigram/trigram models with interpolated modified Kneser-Ney smoothing (Chen & Goodman 1998,
 * "An empirical study of smoothing techniques", section 3.4: three discounts per order from the
 * counts of counts). Browser-safe, no I/O.
 *
 * The models see the same token ids as the network, so `<unk>` (word level) is an ordinary token
 * here as it is in the network's softmax: an out-of-vocabulary word costs what predicting `<unk>`
 * costs. A vocabulary token that never occurs in the training ids (a character seen only in the
 * held-out tail) still gets a probability: the lowest order is interpolated with the uniform
 * distribution over the vocabulary, so every distribution sums to 1 over all `vocabSize` tokens.
 *
 * Keys are packed integers (context * V + token), exact in doubles while V^3 < 2^53.
 */
import { DataError } from './text.ts';
import type { TokenIds } from './tokenizer.ts';

/** The largest vocabulary whose packed trigram keys stay exact in doubles (V^3 <= 2^53 - 1). */
export const MAX_NGRAM_VOCAB = 208063;

/** Discounts for counts 1, 2 and 3 or more. */
export type Discounts = readonly [number, number, number];

/** Plain interpolated Kneser-Ney's customary discount, and modified KN's fallback. */
export const PLAIN_KN_DISCOUNT = 0.75;

/**
 * Modified Kneser-Ney's discounts from the number n_k of n-grams seen exactly k times:
 * Y = n1/(n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3. When the counts of
 * counts cannot give them (a tiny corpus with no n-gram seen twice) or give one outside (0, k),
 * every discount is PLAIN_KN_DISCOUNT.
 */
export function modifiedKnDiscounts(n1: number, n2: number, n3: number, n4: number): Discounts {
  const fallback: Discounts = [PLAIN_KN_DISCOUNT, PLAIN_KN_DISCOUNT, PLAIN_KN_DISCOUNT];
  if (n1 === 0 || n2 === 0 || n3 === 0 || n4 === 0) return fallback;
  const y = n1 / (n1 + 2 * n2);
  const d: Discounts = [1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3];
  return d.every((x, k) => x > 0 && x < k + 1) ? d : fallback;
}

/**
 * One order of the interpolated model: counts c(h, w) under packed keys h*V + w, and for every
 * context h its total and the mass its discounts free, D1 N1(h.) + D2 N2(h.) + D3 N3+(h.).
 */
class Level {
  readonly discounts: Discounts;
  private readonly rowOf = new Map<number, number>();
  private readonly total: number[] = [];
  private readonly freed: number[] = [];

  constructor(readonly counts: Map<number, number>, private readonly V: number, discount: number | undefined) {
    const n = [0, 0, 0, 0, 0];
    for (const c of counts.values()) if (c <= 4) n[c]++;
    this.discounts = discount === undefined ? modifiedKnDiscounts(n[1], n[2], n[3], n[4]) : [discount, discount, discount];
    for (const [key, c] of counts) {
      const h = Math.floor(key / V);
      let row = this.rowOf.get(h);
      if (row === undefined) {
        row = this.total.length;
        this.rowOf.set(h, row);
        this.total.push(0);
        this.freed.push(0);
      }
      this.total[row] += c;
      this.freed[row] += this.discount(c);
    }
  }

  private discount(c: number): number {
    return c === 0 ? 0 : this.discounts[Math.min(c, 3) - 1];
  }

  /** P(w | h) at this order, given P(w | shorter h) as `lower`; a context never seen passes `lower` on. */
  prob(h: number, w: number, lower: number): number {
    const row = this.rowOf.get(h);
    if (row === undefined) return lower;
    const c = this.counts.get(h * this.V + w) ?? 0;
    return (Math.max(c - this.discount(c), 0) + this.freed[row]! * lower) / this.total[row]!;
  }
}

/** Raw unigram, bigram and trigram counts of a token sequence, shared by the models built from it. */
export class NgramCounts {
  readonly unigrams: Float64Array;
  readonly bigrams = new Map<number, number>();
  readonly trigrams = new Map<number, number>();

  constructor(readonly ids: ArrayLike<number>, readonly vocabSize: number) {
    const V = vocabSize;
    if (!Number.isInteger(V) || V < 1) throw new Error(`vocabulary size must be a positive integer, got ${V}`);
    if (V ** 3 > Number.MAX_SAFE_INTEGER) {
      throw new DataError(`a vocabulary of ${V} is too large for the count baselines' trigram keys (at most ${MAX_NGRAM_VOCAB}): lower --max-vocab`);
    }
    this.unigrams = new Float64Array(V);
    const n = ids.length;
    for (let i = 0; i < n; i++) {
      const w = ids[i]!;
      if (!(w < V)) throw new Error(`token id ${w} is outside the vocabulary of ${V}`);
      this.unigrams[w]++;
      if (i >= 1) {
        const k2 = ids[i - 1]! * V + w;
        this.bigrams.set(k2, (this.bigrams.get(k2) ?? 0) + 1);
        if (i >= 2) {
          const k3 = ids[i - 2]! * V * V + k2;
          this.trigrams.set(k3, (this.trigrams.get(k3) ?? 0) + 1);
        }
      }
    }
  }
}

/** Continuation counts N1+(. g): for every n-gram key (prefix a, rest g), how many distinct a precede g. */
function continuationCounts(counts: Map<number, number>, modulus: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const key of counts.keys()) {
    const g = key % modulus;
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}

export interface KneserNeyOptions {
  /** A fixed discount for every count (plain interpolated KN, e.g. 0.75); default: modified KN's three per order. */
  discount?: number;
}

/**
 * Interpolated (modified) Kneser-Ney of order 2 or 3:
 *   P_n(w | h) = (max(c(h w) - D(c), 0) + gamma(h) P_{n-1}(w | h')) / c(h .)
 *   gamma(h) = D1 N1(h .) + D2 N2(h .) + D3 N3+(h .)      (so the sum over w is exactly 1)
 * with raw counts at the highest order, continuation counts N1+(. h w) below it, and
 * P_0(w) = 1/V under the unigram level. A context never seen falls through to the next order.
 */
export class KneserNey {
  /** Highest order first: [trigram,] bigram, unigram. */
  readonly levels: Level[];
  readonly vocabSize: number;

  constructor(counts: NgramCounts, readonly order: 2 | 3, opts: KneserNeyOptions = {}) {
    const V = counts.vocabSize;
    this.vocabSize = V;
    const d = opts.discount;
    if (d !== undefined && !(d > 0 && d < 1)) throw new Error(`discount must be in (0, 1), got ${d}`);
    // The unigram level counts the distinct tokens seen before w (bigram types), at every order.
    const unigram = new Level(continuationCounts(counts.bigrams, V), V, d);
    const bigram = new Level(order === 3 ? continuationCounts(counts.trigrams, V * V) : counts.bigrams, V, d);
    this.levels = order === 3 ? [new Level(counts.trigrams, V, d), bigram, unigram] : [bigram, unigram];
  }

  /** P(w | u v) (trigram) or P(w | v) (bigram); u or v of -1: no such context (the text's start). */
  prob(w: number, v: number, u = -1): number {
    const V = this.vocabSize;
    const L = this.levels;
    let p = L[L.length - 1]!.prob(0, w, 1 / V);
    if (v < 0) return p;
    p = L[L.length - 2]!.prob(v, w, p);
    if (this.order === 2 || u < 0) return p;
    return L[0]!.prob(u * V + v, w, p);
  }
}

/** Add-one (Laplace) unigram model: (c(w) + 1) / (N + V), so a token unseen in training still has a probability. */
export function unigramProb(counts: NgramCounts, w: number): number {
  return (counts.unigrams[w]! + 1) / (counts.ids.length + counts.vocabSize);
}

export interface BaselineResult {
  name: 'unigram' | 'bigram KN' | 'trigram KN';
  /** Mean negative log-likelihood, nats per token. */
  nats: number;
}

/**
 * Cross-entropy of each count model on ids[from..], trained on ids[0..from): the split the network
 * uses. Every scored token has the tokens before it as context, the first two from the end of the
 * training ids (the network's validation starts its streams cold instead; over a held-out split of
 * thousands of tokens the difference is negligible).
 */
export function countBaselines(ids: TokenIds, from: number, vocabSize: number, opts: KneserNeyOptions = {}): {
  results: BaselineResult[];
  tokens: number;
} {
  if (!(Number.isInteger(from) && from >= 2 && from < ids.length)) {
    throw new DataError(
      `too short for count baselines: they need 2 training tokens and 1 held-out token, and the split is ${from} + ${ids.length - from}`,
    );
  }
  const counts = new NgramCounts(ids.subarray(0, from), vocabSize);
  const bi = new KneserNey(counts, 2, opts);
  const tri = new KneserNey(counts, 3, opts);
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let i = from; i < ids.length; i++) {
    const w = ids[i]!;
    const v = ids[i - 1]!;
    const u = ids[i - 2]!;
    s1 -= Math.log(unigramProb(counts, w));
    s2 -= Math.log(bi.prob(w, v));
    s3 -= Math.log(tri.prob(w, v, u));
  }
  const n = ids.length - from;
  return {
    results: [
      { name: 'unigram', nats: s1 / n },
      { name: 'bigram KN', nats: s2 / n },
      { name: 'trigram KN', nats: s3 / n },
    ],
    tokens: n,
  };
}
