/** The trainer's policies: the staggered state-reset schedule, and how much held-out text validation scores. */
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/cpu/backend.ts';
import { streamsToReset, Trainer } from '../src/engine/trainer.ts';

describe('streamsToReset', () => {
  it.each([[32, 16], [4, 16], [5, 3], [1, 7], [16, 16]])('B=%i every=%i: each stream once per window, spread evenly', (B, every) => {
    const perIteration = Array.from({ length: 5 * every }, (_, i) => streamsToReset(i + every, B, every));
    for (let start = 0; start + every <= perIteration.length; start++) {
      const counts = new Array(B).fill(0);
      for (const due of perIteration.slice(start, start + every)) for (const b of due) counts[b]++;
      expect(counts).toEqual(new Array(B).fill(1));
    }
    const sizes = perIteration.map((d) => d.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('never at iteration 0 (the state is fresh) nor when disabled', () => {
    expect(streamsToReset(0, 8, 4)).toEqual([]);
    for (let i = 0; i < 10; i++) expect(streamsToReset(i, 8, 0)).toEqual([]);
    expect(streamsToReset(4, 8, 4)).toEqual([0, 1]);
  });
});

describe('Trainer.validationTokens', () => {
  it.each([[3, 4, 101], [2, 5, 11], [4, 3, 400], [1, 7, 8]])('B=%i T=%i, %i held-out tokens: counts exactly the positions validate() scores', async (B, T, n) => {
    const model = { cell: 'rnn' as const, vocabSize: 5, hiddenSize: 3 };
    const backend = new CpuBackend(model, { seqLength: T, batchSize: B, optimizer: 'adam', learningRate: 0.01, clip: 5 }, 1);
    const val = Uint32Array.from({ length: n }, (_, i) => i % 5);
    const trainer = new Trainer(backend, Uint32Array.from({ length: 200 }, (_, i) => i % 5), val);
    let scored = 0;
    const evaluate = backend.evaluate.bind(backend);
    backend.evaluate = async (chunks) => {
      const list = [...chunks];
      for (const c of list) scored += c.inputs.length;
      return evaluate(list);
    };
    await trainer.validate();
    expect(trainer.validationTokens()).toBe(scored);
    expect(scored).toBeLessThanOrEqual(n - B);
    scored = 0;
    await trainer.validate(1);
    expect(trainer.validationTokens(1)).toBe(scored);
  });
});
