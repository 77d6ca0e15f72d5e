/**
 * The engine's training loop (src/engine/training-loop.ts) on the CPU reference: cadences,
 * pipelining, divergence, stop and abort, and an exact resume. No GPU needed: a wrapped backend
 * delays the losses the way a GPU's readbacks do.
 */
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/cpu/backend.ts';
import { splitTrainVal } from '../src/data/split.ts';
import { CharTokenizer } from '../src/data/tokenizer.ts';
import { TrainingLoop, type LoopCheckpoint, type TrainingLoopOptions } from '../src/engine/training-loop.ts';
import { DivergedError, Trainer } from '../src/engine/trainer.ts';
import type { Backend, ModelState, TokenChunk } from '../src/model/backend.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';

const TEXT = 'the quick brown fox jumps over the lazy dog. '.repeat(60);
const tokenizer = CharTokenizer.fromText(TEXT);
const { train: TRAIN_IDS, val: VAL_IDS } = splitTrainVal(tokenizer.encode(TEXT), 0.1);
const MODEL: ModelConfig = { cell: 'rnn', vocabSize: tokenizer.vocab.length, hiddenSize: 16 };
const TRAIN: TrainConfig = { seqLength: 8, batchSize: 4, optimizer: 'adam', learningRate: 0.01, clip: 5, stateReset: 3 };
const SAMPLE = { every: { iterations: 9 }, options: (it: number) => ({ prime: new Uint32Array([0]), length: 5, temperature: 0.8, seed: it }) };

/**
 * The CPU backend with each loss held back for `delay(iteration)` ms (out of order if asked), a
 * chosen loss replaced, and a count of the losses enqueued but not yet resolved.
 */
class SlowBackend implements Backend {
  readonly kind = 'cpu';
  readonly description = 'CPU reference with late losses';
  readonly perStep = { dispatches: 0, readbacks: 0, submits: 0 };
  steps = 0;
  pending = 0;
  constructor(
    readonly inner: CpuBackend,
    private readonly delay: (iteration: number) => number = () => 1,
    private readonly replace: (iteration: number, loss: number) => number = (_, l) => l,
  ) {}
  get model() { return this.inner.model; }
  get train() { return this.inner.train; }
  async trainStep(c: TokenChunk) {
    const { loss } = await this.inner.trainStep(c);
    const i = ++this.steps;
    this.pending++;
    const late = loss.then((l) => new Promise<number>((r) => setTimeout(() => {
      this.pending--;
      r(this.replace(i, l));
    }, this.delay(i))));
    return { loss: late };
  }
  evaluate(chunks: Iterable<TokenChunk>) { return this.inner.evaluate(chunks); }
  gradients(chunk: TokenChunk) { return this.inner.gradients(chunk); }
  resetState(streams?: readonly number[]) { this.inner.resetState(streams); }
  sample(o: Parameters<Backend['sample']>[0]) { return this.inner.sample(o); }
  sampleMany(o: Parameters<Backend['sampleMany']>[0], n: number) { return this.inner.sampleMany(o, n); }
  exportState() { return this.inner.exportState(); }
  importState(s: ModelState) { this.inner.importState(s); }
  destroy() { this.inner.destroy(); }
}

const cpu = (train: TrainConfig = TRAIN) => new CpuBackend(MODEL, train, 3);

/** Runs a loop and records every event, as "kind@iteration". */
async function record(backend: Backend, o: Omit<TrainingLoopOptions, 'trainer' | 'events'> = {}, extra: TrainingLoopOptions['events'] = {}) {
  const trainer = new Trainer(backend, TRAIN_IDS, VAL_IDS);
  const log: string[] = [];
  const losses = new Map<number, number>();
  const checkpoints: { c: LoopCheckpoint; final: boolean }[] = [];
  const loop: TrainingLoop = new TrainingLoop({
    trainer, ...o,
    events: {
      onLoss: (i, l) => losses.set(i, l),
      onEval: (i, _, final) => { log.push(`eval@${i}${final ? ' final' : ''}`); },
      onSample: (i, tokens) => {
        expect(tokens).toHaveLength(5);
        log.push(`sample@${i}`);
      },
      onCheckpoint: (c, final) => {
        checkpoints.push({ c, final });
        log.push(`checkpoint@${c.progress.iteration}${final ? ' final' : ''}`);
      },
      onEnding: (reason) => { log.push(`ending ${reason}`); },
      ...extra,
    },
  });
  return { trainer, loop, log, losses, checkpoints, run: () => loop.run() };
}

describe('TrainingLoop', () => {
  it('fires iteration cadences at their multiples before the end, then the final evaluation, sample and checkpoint', async () => {
    const r = await record(cpu(), {
      until: 30, evaluate: { every: { iterations: 7 }, batches: 2, atEnd: 'finished' }, sample: { ...SAMPLE, atEnd: true },
      checkpoint: { every: { iterations: 10 } },
    });
    expect(await r.run()).toEqual({ reason: 'finished', iteration: 30 });
    expect(r.log).toEqual([
      'eval@7', 'sample@9', 'checkpoint@10', 'eval@14', 'sample@18', 'checkpoint@20', 'eval@21', 'sample@27', 'eval@28',
      // Not at 30 itself: the run's end does all three once.
      'ending finished', 'eval@30 final', 'sample@30', 'checkpoint@30 final',
    ]);
    expect([...r.losses.keys()]).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('no final sample when the last iteration was just sampled; 0 turns a cadence off', async () => {
    const r = await record(cpu(), { until: 18, evaluate: { every: { iterations: 0 } }, sample: { ...SAMPLE, atEnd: true } });
    await r.run();
    expect(r.log).toEqual(['sample@9', 'ending finished', 'sample@18', 'checkpoint@18 final']);
  });

  it('times cadences in seconds of training: the first after `first`, then at least costFactor x the last one\'s cost', async () => {
    let clock = 0;
    const r = await record(cpu(), {
      until: 50, now: () => clock,
      evaluate: { every: { seconds: 1, first: 0.5, costFactor: 10 }, batches: 1 },
    }, {
      onStep: () => { clock += 100; },
      // Each evaluation takes 300 ms: ignored the first time (pipelines compile), 10 x 300 ms after.
      onEval: (i) => {
        clock += 300;
        r.log.push(`eval@${i}`);
      },
    });
    await r.run();
    expect(r.log.filter((l) => l.startsWith('eval'))).toEqual(['eval@5', 'eval@15', 'eval@45']);
    expect(r.loop.elapsed).toBeCloseTo((50 * 100 + 3 * 300) / 1000, 6);
  });

  it('reads a cadence given as a function at every iteration (a setting changed mid-run)', async () => {
    let every = 0;
    const r = await record(cpu(), { until: 20, sample: { ...SAMPLE, every: () => ({ iterations: every }) } }, {
      onStep: (i) => { if (i === 10) every = 4; },
    });
    await r.run();
    expect(r.log.filter((l) => l.startsWith('sample'))).toEqual(['sample@12', 'sample@16']);
  });

  it.each([1, 3, 5])('keeps %i iteration(s) enqueued ahead of the oldest unread loss, and reports losses in order', async (n) => {
    // Later iterations' losses arrive first, as they could from a device.
    const backend = new SlowBackend(cpu(), (i) => 1 + (i % 4 === 1 ? 12 : 0));
    let last = 0;
    const ahead: number[] = [];
    const r = await record(backend, { until: 24, inFlight: n }, {
      onStep: (i) => { ahead.push(i - last); },
      onLoss: (i) => {
        expect(i).toBe(last + 1);
        last = i;
      },
    });
    await r.run();
    expect(Math.max(...ahead)).toBe(n);
    expect(ahead.slice(n)).toEqual(new Array(24 - n).fill(n));
    expect(last).toBe(24);
    expect(backend.pending).toBe(0);
  });

  it('drains before a safe point: validation, samples, checkpoints and atSafePoint work see every loss', async () => {
    const backend = new SlowBackend(cpu(), () => 2);
    let last = 0;
    const seen: string[] = [];
    const check = (what: string, i: number) => {
      expect(backend.pending).toBe(0);
      expect(last).toBe(i);
      seen.push(what);
    };
    const r = await record(backend, {
      until: 20, evaluate: { every: { iterations: 5 }, batches: 1 }, sample: SAMPLE, checkpoint: { every: { iterations: 7 } },
    }, {
      onLoss: (i) => { last = i; },
      onEval: (i) => check('eval', i),
      onSample: (i) => check('sample', i),
      onCheckpoint: (c) => check('checkpoint', c.progress.iteration),
      onStep: (i) => {
        if (i === 11) {
          void r.loop.atSafePoint(async () => check('hook', r.trainer.iteration));
          r.loop.requestSample();
        }
      },
    });
    await r.run();
    expect(seen).toEqual(['eval', 'checkpoint', 'sample', 'eval', 'hook', 'sample', 'checkpoint', 'eval', 'sample', 'checkpoint']);
  });

  it('stops on a non-finite loss with a one-line DivergedError, without a final checkpoint', async () => {
    const r = await record(new SlowBackend(cpu(), () => 1, (i, l) => (i === 5 ? NaN : l)), { until: 30 });
    const err = await r.run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DivergedError);
    expect((err as Error).message).toBe('the training loss became NaN at iteration 5: lower --lr (now 0.01) or --clip (now 5)');
    expect([...r.losses.keys()]).toEqual([1, 2, 3, 4]);
    expect(r.checkpoints).toEqual([]);
    expect(r.loop.running).toBe(false);
  });

  it('refuses to checkpoint parameters that became NaN', async () => {
    const inner = cpu();
    const backend = new SlowBackend(inner);
    backend.exportState = async () => {
      const s = await inner.exportState();
      s.params[3] = Infinity;
      return s;
    };
    const r = await record(backend, { until: 30, checkpoint: { every: { iterations: 10 } } });
    await expect(r.run()).rejects.toThrow(/^the model's parameters became NaN or infinite by iteration 10: lower --lr \(now 0\.01\) or --clip \(now 5\)$/);
  });

  it('stop() drains, skips the final evaluation unless asked, and yields a final checkpoint; abort() yields none', async () => {
    const stopAt = async (atEnd: 'finished' | 'always') => {
      const backend = new SlowBackend(cpu(), () => 2);
      const r = await record(backend, { until: 40, evaluate: { every: { iterations: 0 }, batches: 1, atEnd } }, {
        onStep: (i) => { if (i === 13) r.loop.stop(); },
      });
      expect(await r.run()).toEqual({ reason: 'stopped', iteration: 13 });
      expect(backend.pending).toBe(0);
      expect(r.losses.size).toBe(13);
      return r;
    };
    expect((await stopAt('finished')).log).toEqual(['ending stopped', 'checkpoint@13 final']);
    const always = await stopAt('always');
    expect(always.log).toEqual(['ending stopped', 'eval@13 final', 'checkpoint@13 final']);
    expect(always.checkpoints[0]!.c.state.params).toEqual((await always.trainer.backend.exportState()).params);

    const lost = new Error('device lost');
    const a = await record(cpu(), { until: 40 }, { onStep: (i) => { if (i === 6) a.loop.abort(lost); } });
    await expect(a.run()).rejects.toBe(lost);
    expect(a.log).toEqual([]);
  });

  it('a run stopped, checkpointed and resumed on a new backend has exactly the losses and weights of one run', async () => {
    const opts = {
      until: 40, evaluate: { every: { iterations: 7 }, batches: 2, atEnd: 'finished' as const },
      sample: { ...SAMPLE, atEnd: true }, checkpoint: { every: { iterations: 10 } },
    };
    const whole = await record(cpu(), opts);
    await whole.run();

    const first = await record(cpu(), opts, { onStep: (i) => { if (i === 13) first.loop.stop(); } });
    await first.run();
    const saved = first.checkpoints.at(-1)!.c;
    const backend = cpu();
    backend.importState(saved.state);
    const second = await record(backend, { ...opts, elapsedBefore: saved.elapsed });
    second.trainer.restore(saved.progress);
    await second.run();

    expect([...first.losses, ...second.losses]).toEqual([...whole.losses]);
    expect(second.checkpoints.at(-1)!.c.state).toEqual(whole.checkpoints.at(-1)!.c.state);
    expect(second.loop.elapsed).toBeGreaterThanOrEqual(saved.elapsed);
  });
});
