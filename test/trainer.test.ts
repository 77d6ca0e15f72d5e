/** The training loop's policies that need no backend: the staggered state-reset schedule. */
import { describe, expect, it } from 'vitest';
import { streamsToReset } from '../src/engine/trainer.ts';

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
