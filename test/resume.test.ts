/**
 * Resume exactness on the CPU reference: N iterations in one run against N/2 (or so), a
 * checkpoint (encodeCheckpoint -> bytes -> decodeCheckpoint, as the CLI writes and reads it) into a
 * fresh backend, and the rest. The losses, parameters, both optimizer moments, the step count and
 * the carried state (hidden and memory cells) must match bit for bit, for every cell and
 * optimizer, with dropout, staggered state resets, the data wrapping around, and validation and
 * sampling done before the checkpoint.
 */
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint } from '../src/checkpoint/model-checkpoint.ts';
import { CpuBackend } from '../src/cpu/backend.ts';
import { CharTokenizer } from '../src/data/tokenizer.ts';
import { Trainer } from '../src/engine/trainer.ts';
import type { ModelState } from '../src/model/backend.ts';
import type { CellType } from '../src/model/cells.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import type { OptimizerName, OptimizerOptions } from '../src/model/optimizer.ts';

const TEXT = 'the quick brown fox jumps over the lazy dog. '.repeat(4);
const tokenizer = CharTokenizer.fromText(TEXT);
const IDS = tokenizer.encode(TEXT);
/** 110 training tokens in 3 streams of 6 steps: 5 batches an epoch, so 12 iterations wrap twice. */
const TRAIN_IDS = IDS.slice(0, 110);
const VAL_IDS = IDS.slice(110);
const SEED = 7;
const N = 12;

/** The bits of a float array, so that -0, NaN payloads and one-ulp differences all count. */
const bits = (a: Float32Array | undefined) => (a ? Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length)) : a);

function expectSameBits(got: ModelState, want: ModelState) {
  expect(got.optStep).toBe(want.optStep);
  for (const k of ['params', 'optM', 'optV', 'hidden', 'cellState'] as const) {
    if (want[k]) expect(got[k], k).toBeInstanceOf(Float32Array);
    expect(bits(got[k]), k).toEqual(bits(want[k]));
  }
}

async function steps(trainer: Trainer, until: number, losses: number[]) {
  while (trainer.iteration < until) {
    const { loss } = await trainer.step();
    losses.push(await loss);
  }
}

/** An optimizer, or one with its hyperparameters and a learning-rate schedule. */
type Opt = OptimizerName | (OptimizerOptions & Pick<TrainConfig, 'lrSchedule'>);

function setup(cell: CellType, optimizer: Opt, layers: number, dropout: number) {
  const model: ModelConfig = { cell, vocabSize: tokenizer.vocab.length, hiddenSize: 8, layers, dropout };
  const o = typeof optimizer === 'string' ? { optimizer } : optimizer;
  const train: TrainConfig = { seqLength: 6, batchSize: 3, ...o, learningRate: 0.05, clip: 1, stateReset: 4 };
  return { model, train, trainer: () => new Trainer(new CpuBackend(model, train, SEED), TRAIN_IDS, VAL_IDS) };
}

/** What the CLI does at a checkpoint and on --resume: state and progress through the file's bytes into a new backend. */
async function throughCheckpoint(model: ModelConfig, train: TrainConfig, from: Trainer): Promise<Trainer> {
  const bytes = encodeCheckpoint({
    model, train, tokenizer: tokenizer.toJSON(), state: await from.backend.exportState(),
    progress: { ...from.progress(), seed: SEED, corpus: 'test', lowercase: false },
  });
  const saved = decodeCheckpoint(bytes);
  const backend = new CpuBackend(saved.model, saved.train, saved.progress.seed);
  backend.importState(saved.state);
  const trainer = new Trainer(backend, TRAIN_IDS, VAL_IDS);
  trainer.restore(saved.progress);
  return trainer;
}

// The schedules change the rate across both splits (5 and 6): a resumed run must pick them up mid-way.
const cases: [CellType, Opt, number, number][] = [
  ['rnn', 'adam', 1, 0], ['rnn', 'adagrad', 2, 0.25], ['lstm', 'adam', 2, 0.25], ['lstm', 'adagrad', 1, 0],
  ['gru', 'adam', 2, 0.25], ['gru', 'adagrad', 1, 0],
  ['rnn', { optimizer: 'rmsprop', lrSchedule: { kind: 'step', decay: 0.5, every: 2, after: 3 } }, 1, 0],
  ['lstm', { optimizer: 'rmsprop', rmsDecay: 0.9, lrSchedule: { kind: 'cosine', min: 0.01, iterations: 10 } }, 2, 0.25],
  ['gru', { optimizer: 'sgd', momentum: 0.9, nesterov: true, lrSchedule: { kind: 'step', decay: 0.7, every: 1, after: 0 } }, 2, 0.25],
  ['rnn', { optimizer: 'sgd', momentum: 0 }, 1, 0],
];

describe('CPU resume through a checkpoint', () => {
  it.each(cases)('%s %j, %i layer(s), dropout %f: losses, parameters, moments and state are bit-identical to one run', async (cell, optimizer, layers, dropout) => {
    const { model, train, trainer } = setup(cell, optimizer, layers, dropout);
    const whole = trainer();
    const wholeLosses: number[] = [];
    await steps(whole, N, wholeLosses);
    const want = await whole.backend.exportState();

    // 5: just before the data wraps (and a staggered reset is due); 6: just after.
    for (const split of [5, 6]) {
      const first = trainer();
      const losses: number[] = [];
      await steps(first, split, losses);
      // The CLI validates and samples before it saves; neither may touch the training state.
      expect(first.canValidate).toBe(true);
      await first.validate(1);
      await first.backend.sample({ prime: new Uint32Array([0]), length: 4, temperature: 0.8, seed: 1 });
      const second = await throughCheckpoint(model, train, first);
      expect(second.iteration).toBe(split);
      await steps(second, N, losses);
      expect(losses).toEqual(wholeLosses);
      expectSameBits(await second.backend.exportState(), want);
    }
  });

  it('a state handed over in wider arrays is carried as the float32 a checkpoint would store', async () => {
    const { model, train, trainer } = setup('lstm', 'adam', 1, 0);
    const first = trainer();
    await steps(first, 4, []);
    const saved = await first.backend.exportState();
    // Float64Array copies, each value nudged by less than half a float32 ulp: they round back to the saved bits.
    const wide = (a: Float32Array) => Float64Array.from(a, (x) => x + x * 2 ** -30) as unknown as Float32Array;
    const nudged: ModelState = {
      params: wide(saved.params), optM: wide(saved.optM), optV: wide(saved.optV), optStep: saved.optStep,
      hidden: wide(saved.hidden), cellState: wide(saved.cellState!),
    };
    const a = new CpuBackend(model, train, SEED);
    a.importState(nudged);
    expectSameBits(await a.exportState(), saved);
    const b = new CpuBackend(model, train, SEED);
    b.importState(saved);
    const ta = new Trainer(a, TRAIN_IDS, VAL_IDS), tb = new Trainer(b, TRAIN_IDS, VAL_IDS);
    ta.restore(first.progress());
    tb.restore(first.progress());
    const la: number[] = [], lb: number[] = [];
    await steps(ta, 8, la);
    await steps(tb, 8, lb);
    expect(la).toEqual(lb);
    expectSameBits(await a.exportState(), await b.exportState());
  });
});
