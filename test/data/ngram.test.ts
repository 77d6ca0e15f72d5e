import { describe, expect, it } from 'vitest';
import { countBaselines, KneserNey, MAX_NGRAM_VOCAB, modifiedKnDiscounts, NgramCounts, PLAIN_KN_DISCOUNT, unigramProb } from '../../src/data/ngram.ts';
import { Rng } from '../../src/util/random.ts';

/**
 * The toy corpus "a b a b a c" as ids 0 1 0 1 0 2, in a vocabulary of 4 (token 3 never occurs).
 * Plain interpolated KN with D = 0.75, by hand:
 * - unigram level, continuation counts N1+(.w): a 1 (after b), b 1 (after a), c 1 (after a), d 0;
 *   total 3, freed 3 x 0.75 = 2.25, so P1(a) = (1 - 0.75 + 2.25/4) / 3 = 13/48 and P1(d) = 0.5625/3 = 3/16.
 * - bigram level (raw counts) after a: b 2, c 1; total 3, freed 2 x 0.75 = 1.5:
 *   P(b|a) = (2 - 0.75 + 1.5 x 13/48) / 3 = 53/96.
 * - trigram model, middle level (continuation counts N1+(.vw)): "b a" 1, "a b" 1, "a c" 1;
 *   after a: b 1, c 1, total 2, freed 1.5: P2(b|a) = (0.25 + 1.5 x 13/48) / 2 = 0.328125.
 * - trigram level after "b a": b 1, c 1, total 2, freed 1.5: P3(b|b a) = (0.25 + 1.5 x 0.328125) / 2 = 0.37109375.
 */
const TOY = Uint32Array.from([0, 1, 0, 1, 0, 2]);
const plain = { discount: PLAIN_KN_DISCOUNT };

describe('Kneser-Ney on a toy corpus, by hand', () => {
  const counts = new NgramCounts(TOY, 4);

  it('bigram model', () => {
    const bi = new KneserNey(counts, 2, plain);
    expect(bi.prob(0, -1)).toBeCloseTo(13 / 48, 15);
    expect(bi.prob(3, -1)).toBeCloseTo(3 / 16, 15);
    expect(bi.prob(1, 0)).toBeCloseTo(53 / 96, 15);
    expect(bi.prob(3, 0)).toBeCloseTo((1.5 * 3 / 16) / 3, 15);
    // "c" never starts a bigram: its context falls through to the unigram level.
    expect(bi.prob(0, 2)).toBeCloseTo(13 / 48, 15);
  });

  it('trigram model', () => {
    const tri = new KneserNey(counts, 3, plain);
    expect(tri.prob(1, 0, 1)).toBeCloseTo(0.37109375, 15);
    // "a a" was never seen: the middle level answers.
    expect(tri.prob(1, 0, 0)).toBeCloseTo(0.328125, 15);
  });

  it('countBaselines scores the held-out tail with the preceding tokens as context', () => {
    // Train on the toy corpus, score "a b" after it: unigram add-one (3+1)/(6+4), (2+1)/(6+4);
    // bigram P1(a) (context c unseen), P(b|a); trigram P1(a), then P2(b|a) (context "c a" unseen).
    const ids = Uint32Array.from([...TOY, 0, 1]);
    const { results, tokens } = countBaselines(ids, 6, 4, plain);
    expect(tokens).toBe(2);
    const nats = (p: number, q: number) => -(Math.log(p) + Math.log(q)) / 2;
    expect(results.map((r) => r.name)).toEqual(['unigram', 'bigram KN', 'trigram KN']);
    expect(results[0]!.nats).toBeCloseTo(nats(0.4, 0.3), 14);
    expect(results[1]!.nats).toBeCloseTo(nats(13 / 48, 53 / 96), 14);
    expect(results[2]!.nats).toBeCloseTo(nats(13 / 48, 0.328125), 14);
  });
});

describe('modified Kneser-Ney discounts', () => {
  it('follow Chen and Goodman\'s formulas', () => {
    // Y = 10/(10 + 2*5) = 0.5; D1 = 1 - 2Y*5/10, D2 = 2 - 3Y*3/5, D3+ = 3 - 4Y*2/3.
    const [d1, d2, d3] = modifiedKnDiscounts(10, 5, 3, 2);
    expect(d1).toBeCloseTo(0.5, 15);
    expect(d2).toBeCloseTo(1.1, 15);
    expect(d3).toBeCloseTo(3 - 4 / 3, 15);
  });

  it('fall back to 0.75 where the counts of counts cannot give them', () => {
    expect(modifiedKnDiscounts(3, 0, 0, 0)).toEqual([0.75, 0.75, 0.75]);
    // n3 much larger than n2 would give D2 < 0.
    expect(modifiedKnDiscounts(10, 1, 50, 1)).toEqual([0.75, 0.75, 0.75]);
  });
});

describe('every distribution sums to 1 over the vocabulary', () => {
  const V = 30;
  // Tokens 0-28, skewed so that n-grams seen 1, 2, 3 and 4 times all occur at every order; 29 never occurs.
  const random = new Rng(7);
  const ids = Uint32Array.from({ length: 3000 }, () => Math.min(V - 2, Math.floor(-Math.log(1 - random.next()) * 4)));
  const counts = new NgramCounts(ids, V);

  for (const [label, opts] of [['modified KN', {}], ['plain KN', plain]] as const) {
    for (const order of [2, 3] as const) {
      it(`${label}, order ${order}, every context (seen or not)`, () => {
        const model = new KneserNey(counts, order, opts);
        if (label === 'modified KN') {
          // The test must exercise the estimated discounts, not the fallback.
          for (const l of model.levels) expect(l.discounts[0]).not.toBe(PLAIN_KN_DISCOUNT);
        }
        let worst = 0;
        let least = 1;
        for (let u = -1; u < V; u++) {
          for (let v = -1; v < V; v++) {
            if (v < 0 && u >= 0) continue;
            let sum = 0;
            for (let w = 0; w < V; w++) {
              const p = model.prob(w, v, u);
              least = Math.min(least, p);
              sum += p;
            }
            worst = Math.max(worst, Math.abs(sum - 1));
          }
        }
        expect(worst).toBeLessThan(1e-9);
        expect(least).toBeGreaterThan(0);
      });
    }
  }

  it('the add-one unigram too', () => {
    let sum = 0;
    for (let w = 0; w < V; w++) sum += unigramProb(counts, w);
    expect(Math.abs(sum - 1)).toBeLessThan(1e-9);
    expect(unigramProb(counts, V - 1)).toBeCloseTo(1 / (3000 + V), 15);
  });
});

describe('unseen tokens', () => {
  it('<unk> (id 0) is an ordinary token; a token never in training still gets a finite cost', () => {
    // Word level maps out-of-vocabulary words to <unk> = 0 before counting, as the network sees them.
    const ids = Uint32Array.from([0, 1, 2, 0, 1, 2, 0, 1, 3, 0]);
    const { results } = countBaselines(ids, 8, 5);
    for (const r of results) expect(Number.isFinite(r.nats)).toBe(true);
    // "<unk> b" was seen twice: P(b | <unk>) is well above the uniform 1/5.
    const bi = new KneserNey(new NgramCounts(ids.subarray(0, 8), 5), 2);
    expect(bi.prob(1, 0)).toBeGreaterThan(0.5);
    expect(bi.prob(4, 0)).toBeGreaterThan(0);
  });

  it('refuses ids outside the vocabulary and a split without held-out tokens', () => {
    expect(() => new NgramCounts(Uint32Array.from([0, 5]), 5)).toThrow(/outside the vocabulary/);
    expect(() => countBaselines(TOY, 6, 4)).toThrow(/held-out/);
    expect(MAX_NGRAM_VOCAB ** 3).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
    expect((MAX_NGRAM_VOCAB + 1) ** 3).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
    expect(() => new NgramCounts(TOY, MAX_NGRAM_VOCAB + 1)).toThrow(/too large .* lower --max-vocab/);
  });
});
