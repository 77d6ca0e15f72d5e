import { describe, expect, it } from 'vitest';
import { BatchStream, evalBatches, splitTrainVal } from '../../src/data/split.ts';
import { DataError } from '../../src/data/text.ts';

const iota = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

describe('splitTrainVal', () => {
  it('holds out a fixed tail as views on the same buffer', () => {
    const ids = iota(1000);
    const { train, val } = splitTrainVal(ids);
    expect(train.length).toBe(950);
    expect(val.length).toBe(50);
    expect(val[0]).toBe(950);
    expect(train.buffer).toBe(ids.buffer);
    expect(splitTrainVal(ids, 0.1).val.length).toBe(100);
    expect(splitTrainVal(ids, 0).val.length).toBe(0);
    expect(() => splitTrainVal(ids, 1)).toThrow(DataError);
  });
});

describe('BatchStream', () => {
  it('lays batches out time-major over B contiguous streams, targets shifted by one', () => {
    const B = 3;
    const T = 4;
    const ids = iota(100); // streams of 33 starting at 0, 33, 66
    const s = new BatchStream(ids, B, T);
    expect(s.streamLength).toBe(33);
    const first = s.next();
    expect(first.inputs.length).toBe(B * T);
    expect(first.epoch).toBe(0);
    expect(first.wrapped).toBe(false);
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) {
        expect(first.inputs[t * B + b]).toBe(b * 33 + t);
        expect(first.targets[t * B + b]).toBe(first.inputs[t * B + b]! + 1);
        if (t < T - 1) expect(first.targets[t * B + b]).toBe(first.inputs[(t + 1) * B + b]);
      }
    }
    // The next batch continues each stream where the last one stopped.
    const second = s.next();
    for (let b = 0; b < B; b++) expect(second.inputs[b]).toBe(first.targets[(T - 1) * B + b]);
  });

  it('wraps every stream to its start before running past its end, and counts epochs', () => {
    const s = new BatchStream(iota(30), 2, 4); // streams of 15: batches at 0, 4, 8 (needs 13 <= 15)
    expect(s.batchesPerEpoch).toBe(3);
    const starts = [];
    for (let i = 0; i < 7; i++) {
      const b = s.next();
      starts.push([b.inputs[0], b.inputs[1], b.epoch, b.wrapped]);
      // A target never comes from the next stream.
      for (let k = 0; k < b.targets.length; k += 2) expect(b.targets[k]).toBeLessThan(15);
    }
    expect(starts).toEqual([
      [0, 15, 0, false],
      [4, 19, 0, false],
      [8, 23, 0, false],
      [0, 15, 1, true],
      [4, 19, 1, false],
      [8, 23, 1, false],
      [0, 15, 2, true],
    ]);
  });

  it('uses the last token of a stream when it fits exactly', () => {
    const s = new BatchStream(iota(10), 2, 4); // streams of 5: one batch, last target is 4 and 9
    const b = s.next();
    expect(Array.from(b.targets.subarray(6))).toEqual([4, 9]);
    expect(s.next().wrapped).toBe(true);
  });

  it('resumes exactly from state()', () => {
    const ids = iota(1000);
    const a = new BatchStream(ids, 4, 7);
    for (let i = 0; i < 40; i++) a.next(); // past one wrap (35 batches per epoch)
    const saved = JSON.parse(JSON.stringify(a.state()));
    expect(saved.epoch).toBe(1);
    const b = new BatchStream(ids, 4, 7);
    b.restore(saved);
    for (let i = 0; i < 50; i++) expect(b.next()).toEqual(a.next());
    expect(() => b.restore({ position: 9999, epoch: 0 })).toThrow(DataError);
    expect(() => b.restore({ position: 1.5, epoch: 0 })).toThrow(DataError);
  });

  it('explains a corpus too short for the batch shape', () => {
    expect(() => new BatchStream(iota(100), 10, 10)).toThrow(
      'corpus too short: 100 tokens give 10 streams of 10, need at least T+1 = 11 (lower --batch-size or --seq-length)',
    );
    expect(() => new BatchStream(iota(110), 10, 10)).not.toThrow();
  });
});

describe('evalBatches', () => {
  it('predicts every token of every stream except the first, once, deterministically', () => {
    const ids = iota(103);
    const B = 4;
    const T = 10; // streams of 25: 24 predictions each, as 10 + 10 + 4
    const batches = [...evalBatches(ids, B, T)];
    expect(batches.map((b) => b.steps)).toEqual([10, 10, 4]);
    const predicted: number[] = [];
    for (const { inputs, targets, steps } of batches) {
      expect(inputs.length).toBe(steps * B);
      for (let i = 0; i < steps * B; i++) {
        expect(targets[i]).toBe(inputs[i]! + 1);
        predicted.push(targets[i]!);
      }
    }
    const expected = [];
    for (let b = 0; b < B; b++) for (let k = 1; k < 25; k++) expected.push(b * 25 + k);
    expect(predicted.sort((x, y) => x - y)).toEqual(expected);
    expect([...evalBatches(ids, B, T)]).toEqual(batches);
  });

  it('refuses a split too short to predict anything', () => {
    expect(() => [...evalBatches(iota(5), 4, 10)]).toThrow(DataError);
  });
});
