/** `train` on the CPU reference: output, checkpoints, exact resume, Ctrl-C and divergence. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/cli/checkpoint-files.ts';
import { cli, oneLineErr, tempDir, tinyCorpus, TINY } from './helpers.ts';

let dir: string;
let corpus: string;
/** About 21 batches of 4 x 8 per epoch: the runs below cross the end of the data and wrap. */
let small: string;

beforeAll(() => {
  dir = tempDir();
  corpus = tinyCorpus(dir);
  small = tinyCorpus(dir, 'small.txt', 16);
});

describe('train', () => {
  it('prints the setup, progress lines, validation and samples, and saves checkpoints', async () => {
    const ck = join(dir, 'run1', 'model.safetensors');
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '40', '--eval-every', '20', '--sample-every', '20',
      '--sample-length', '30', '--print-every', '10', '--checkpoint', ck]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const out = r.out;
    expect(out).toMatch(/^backend: CPU, CPU reference/m);
    expect(out).toMatch(/^corpus: .*tiny\.txt, [\d,]+ chars, vocabulary \d+; [\d,]+ for training, [\d,]+ held out/m);
    expect(out).toMatch(/^model: RNN, hidden 16, [\d,]+ parameters, memory [\d.]+ KiB/m);
    expect(out).toMatch(/^training: 40 iterations of 4 x 8 chars \([\d.]+ epochs\), Adam lr 0\.003, clip 5, state reset every 16, seed 1/m);
    expect(out).toMatch(/^iter 10\/40 \| 25\.0% \| \S+ tok\/s \| train [\d.]+ nats \([\d.]+ bits\/char\) \| val n\/a \| ETA/m);
    expect(out).toMatch(/^iter 40\/40 .* val [\d.]+ nats \([\d.]+ bits\/char\)/m);
    expect(out).toMatch(/^iteration 20: validation loss [\d.]+ nats \([\d.]+ bits\/char\), best so far -> .*model-val[\d.]+\.safetensors/m);
    expect(out.match(/----- sample at iteration (\d+)/g)).toEqual(['----- sample at iteration 20', '----- sample at iteration 40']);
    expect(out).toMatch(/^done: iteration 40 in \d+s; training loss [\d.]+ nats \([\d.]+ bits\/char\), validation loss [\d.]+ nats/m);
    const files = readdirSync(join(dir, 'run1')).sort();
    // Only the best validation checkpoint is kept beside the main one.
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(/^model-val\d+\.\d{3}\.safetensors$/);
    expect(files[1]).toBe('model.safetensors');
    const main = readCheckpoint(ck);
    expect(main.progress.iteration).toBe(40);
    expect(main.progress.valLoss).toBeGreaterThan(0);
    expect(main.progress.iterations).toBe(40);
    const best = readCheckpoint(join(dir, 'run1', files[0]));
    expect(files[0]).toContain(best.progress.bestValLoss!.toFixed(3));
  });

  it('keeps a better model from an earlier run and removes worse ones', async () => {
    const ck = join(dir, 'run2', 'm.safetensors');
    await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '5', '--checkpoint', ck, '--quiet']);
    writeFileSync(join(dir, 'run2', 'm-val9.999.safetensors'), 'worse');
    writeFileSync(join(dir, 'run2', 'm-val0.001.safetensors'), 'better');
    writeFileSync(join(dir, 'run2', 'other-val9.999.safetensors'), 'another run');
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '10', '--checkpoint', ck, '--quiet']);
    expect(r.code).toBe(0);
    const files = readdirSync(join(dir, 'run2'));
    expect(files).not.toContain('m-val9.999.safetensors');
    expect(files).toContain('m-val0.001.safetensors');
    expect(files).toContain('other-val9.999.safetensors');
    expect(files.filter((f) => /^m-val/.test(f))).toHaveLength(2);
  });

  it('--num-samples and the sampling controls apply to the samples taken while training', async () => {
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '10', '--sample-every', '10', '--sample-length', '20',
      '--num-samples', '3', '--top-k', '4', '--repetition-penalty', '1.2', '--repetition-window', '8', '--checkpoint', join(dir, 'ns.safetensors')]);
    expect(r.code).toBe(0);
    expect(r.out.match(/^----- sample \d of 3 at iteration 10 \(temperature 0\.8, top-k 4, repetition penalty 1\.2 over the last 8 tokens\) -----$/gm))
      .toHaveLength(3);
    const texts = r.out.split(/^----- sample \d of 3 .*-----\n/m).slice(1).map((t) => t.replace(/\n-----\n[^]*$/, '').replace(/\n$/, ''));
    expect(texts.map((t) => [...t].length)).toEqual([20, 20, 20]);
    expect(new Set(texts).size).toBe(3);
  });

  it('--quiet prints only the result', async () => {
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '5', '--sample-every', '2',
      '--checkpoint', join(dir, 'q.safetensors'), '--quiet']);
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(2);
    expect(r.out).toMatch(/^done: iteration 5/);
  });

  it('--epochs sets the iterations from the data', async () => {
    const r = await cli(['train', '--corpus', small, ...TINY, '--epochs', '1', '--checkpoint', join(dir, 'e.safetensors')]);
    expect(r.code).toBe(0);
    const n = Number(/training: (\d+) iterations .*\(1\.\d\d epochs\)/.exec(r.out)?.[1]);
    expect(n).toBeGreaterThan(10);
    expect(r.out).toContain(`done: iteration ${n} `);
  });

  it('draws a progress bar on a terminal, with samples above it', async () => {
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '30', '--sample-every', '15', '--sample-length', '20',
      '--checkpoint', join(dir, 'tty.safetensors')], { tty: true });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/iter 30\/30 \| █{24} 100\.0% \| .* tok\/s \| train [\d.]+ \([\d.]+ b\/c\) \| val - \| ETA/);
    expect(r.out).toContain('----- sample at iteration 15');
    expect(r.out).not.toMatch(/^iter \d+\/30 \| /m);
  });

  it('trains at word level and samples words', async () => {
    const ck = join(dir, 'words.safetensors');
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--level', 'word', '--iterations', '40', '--checkpoint', ck, '--sample-every', '40']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/tokens \(words, spaces and punctuation\), vocabulary 20;/);
    expect(r.out).toMatch(/bits\/word/);
    const s = await cli(['sample', '--checkpoint', ck, '--prime', 'the', '--length', '20', '--seed', '1', '--backend', 'cpu']);
    expect(s.code).toBe(0);
    expect(s.out).toMatch(/^the/);
    expect(s.out).toMatch(/^the[a-z <>\n]+$/);
  });
});

describe('resume', () => {
  const flags = ['--corpus', '', ...TINY, '--iterations', '40', '--eval-every', '7', '--sample-every', '9', '--sample-length', '5'];
  const withCorpus = () => flags.map((f) => (f === '' ? small : f));

  // Adam, and the other optimizers under schedules whose rate changes on both sides of the
  // interruption (about 21 updates an epoch: a decay every 5, from update 5 on; cosine over the 40).
  it.each([
    [[]],
    [['--optimizer', 'sgd', '--nesterov', '--lr', '0.05', '--lr-schedule', 'step', '--lr-decay', '0.8', '--lr-decay-every', '0.25', '--lr-decay-after', '0.25']],
    [['--optimizer', 'rmsprop', '--rms-decay', '0.9', '--lr-schedule', 'cosine', '--lr-min', '1e-4']],
  ])('an interrupted and resumed run has exactly the losses and weights of an uninterrupted one: %j', async (extra: string[]) => {
    const tag = extra[1] ?? 'adam';
    const full = join(dir, `full-${tag}.safetensors`);
    const a = await cli(['train', ...withCorpus(), ...extra, '--checkpoint', full]);
    expect(a.code).toBe(0);
    expect(a.losses.size).toBe(40);

    const part = join(dir, `part-${tag}.safetensors`);
    const b = await cli(['train', ...withCorpus(), ...extra, '--checkpoint', part], {
      onStep: (i, t) => {
        if (i === 13) t.interrupt();
      },
    });
    expect(b.code).toBe(130);
    expect(b.out).toContain(`interrupted at iteration 13: saved ${part}`);
    expect(b.out).toContain(`resume with: npm run rnn -- train --resume ${part}`);
    expect(readCheckpoint(part).progress.iteration).toBe(13);

    // Nothing but --resume: the corpus, the shape and the 40-iteration goal come from the checkpoint.
    const c = await cli(['train', '--resume', part, '--backend', 'cpu', '--sample-every', '0']);
    expect(c.err).toBe('');
    expect(c.code).toBe(0);
    expect(c.out).toContain(`resuming ${part} at iteration 13`);
    expect([...c.losses.keys()][0]).toBe(14);
    const resumed = new Map([...b.losses, ...c.losses]);
    expect([...resumed.keys()]).toEqual([...a.losses.keys()]);
    expect([...resumed.values()]).toEqual([...a.losses.values()]);
    const wa = readCheckpoint(full).state;
    const wc = readCheckpoint(part).state;
    expect(wc.params).toEqual(wa.params);
    expect(wc.optM).toEqual(wa.optM);
    expect(wc.optV).toEqual(wa.optV);
    expect(wc.optStep).toBe(40);
    expect(wc.hidden).toEqual(wa.hidden);
    expect(readCheckpoint(part).train).toEqual(readCheckpoint(full).train);
    expect(readCheckpoint(part).progress.stream).toEqual(readCheckpoint(full).progress.stream);
    // Streams' states were zeroed on both sides of the interruption (B = 4, every 16: iterations 4, 8, 12, 16, ...).
    expect(readCheckpoint(full).train.stateReset).toBe(16);
  });

  it('the optimizer and schedule are stored, printed, and a resumed run refuses flags that contradict them', async () => {
    const p = join(dir, 'rmsprop-step.safetensors');
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '5', '--checkpoint', p, '--optimizer', 'rmsprop',
      '--lr-schedule', 'step', '--lr-decay-every', '0.5', '--lr-decay-after', '1']);
    expect(r.code).toBe(0);
    const { train } = readCheckpoint(p);
    expect(train).toMatchObject({ optimizer: 'rmsprop', rmsDecay: 0.95, lrSchedule: { kind: 'step', decay: 0.97 } });
    const s = train.lrSchedule as { every: number; after: number };
    expect(s.after).toBe(2 * s.every);
    expect(r.out).toContain(`RMSprop (alpha 0.95) lr 0.003, step decay x0.97 every ${s.every} updates after ${s.after}, clip 5`);
    const resume = (...f: string[]) => cli(['train', '--resume', p, '--iterations', '6', '--backend', 'cpu', ...f]);
    const refused: [string[], RegExp][] = [
      [['--rms-decay', '0.9'], /^error: --rms-decay 0\.9 does not match the checkpoint .*, which has RMSprop decay 0\.95: leave --rms-decay out/],
      [['--lr-schedule', 'cosine'], /--lr-schedule cosine does not match .*learning-rate schedule step/],
      [['--lr-decay', '0.5'], /--lr-decay 0\.5 does not match .*decay factor 0\.97/],
      [['--lr-decay-every', '1'], new RegExp(`--lr-decay-every 1 \\(= ${2 * s.every} updates\\) does not match .*a decay every ${s.every} updates`)],
      [['--momentum', '0.5'], /--momentum applies only to --optimizer sgd, and .* was trained with rmsprop, schedule step/],
      [['--lr-min', '0'], /--lr-min applies only to --lr-schedule cosine/],
    ];
    for (const [f, want] of refused) {
      const x = await resume(...f);
      expect(x.code, f.join(' ')).not.toBe(0);
      expect(x.err, f.join(' ')).toMatch(want);
      expect(oneLineErr(x.err)).toBe(true);
    }
    // The same values, given again, are no contradiction.
    const ok = await resume('--rms-decay', '0.95', '--lr-schedule', 'step', '--lr-decay', '0.97', '--lr-decay-after', '1');
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
  });

  it('a cosine schedule resumed past its end stays at its floor, said in a note; a --lr below the floor is refused', async () => {
    const p = join(dir, 'cosine.safetensors');
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '5', '--checkpoint', p, '--lr-schedule', 'cosine', '--lr-min', '1e-4', '--quiet']);
    expect(r.code).toBe(0);
    expect(readCheckpoint(p).train.lrSchedule).toEqual({ kind: 'cosine', min: 1e-4, iterations: 5 });
    const low = await cli(['train', '--resume', p, '--lr', '1e-5', '--iterations', '8', '--backend', 'cpu']);
    expect(low.code).toBe(1);
    expect(low.err).toMatch(/^error: --lr 0\.00001 is below the cosine schedule's floor 0\.0001 in .*cosine\.safetensors: the rate would rise$/m);
    const more = await cli(['train', '--resume', p, '--iterations', '8', '--backend', 'cpu']);
    expect(more.code).toBe(0);
    expect(more.err).toContain('note: the cosine schedule ends at iteration 5: the iterations after it use the floor rate 0.0001');
    expect(more.out).toContain('Adam lr 0.003, cosine to 0.0001 over 5 updates, clip 5');
  });

  it('--resume with a lower --lr or another --state-reset is allowed and noted', async () => {
    const p = join(dir, 'lr.safetensors');
    await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '5', '--checkpoint', p, '--quiet']);
    const r = await cli(['train', '--resume', p, '--lr', '0.001', '--state-reset', '0', '--iterations', '8', '--backend', 'cpu']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('note: learning rate changed from 0.003 to 0.001');
    expect(r.err).toContain('note: state reset changed from every 16 to every 0 iterations');
    expect(r.out).toMatch(/clip 5, state carried, seed/);
    expect(readCheckpoint(p).train.learningRate).toBe(0.001);
    expect(readCheckpoint(p).train.stateReset).toBe(0);
  });

  it('a second Ctrl-C quits at once', async () => {
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '20', '--checkpoint', join(dir, 'twice.safetensors')], {
      onStep: async (i, t) => {
        if (i === 3) {
          t.interrupt();
          t.interrupt(); // the same key press relayed twice (tsx does that): still one
          await new Promise((r) => setTimeout(r, 400));
          t.interrupt();
        }
      },
    });
    expect(r.exits).toEqual([130]);
    expect(r.err).toContain('interrupted again: quitting without saving');
  });
});

describe('divergence', () => {
  it('a loss that becomes NaN stops training, says what to change, and keeps the last good checkpoint', async () => {
    const p = join(dir, 'good.safetensors');
    expect((await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '10', '--checkpoint', p, '--quiet'])).code).toBe(0);
    const before = readFileSync(p);
    const r = await cli(['train', '--resume', p, '--lr', '1e38', '--iterations', '200', '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(oneLineErr(r.err.replace(/^note: .*\n/gm, ''))).toBe(true);
    expect(r.err).toMatch(/error: the training loss became NaN at iteration \d+: lower --lr \(now 1e\+38\) or --clip \(now 5\); the last good checkpoint is kept: .*good\.safetensors \(iteration 10\)/);
    expect(readFileSync(p).equals(before)).toBe(true);
  });

  it('a fresh run that diverges writes no checkpoint', async () => {
    const p = join(dir, 'diverged.safetensors');
    const r = await cli(['train', '--corpus', corpus, ...TINY, '--lr', '1e38', '--iterations', '200', '--checkpoint', p]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error: the (training loss|model's parameters) became (NaN|Infinity|-Infinity|NaN or infinite) .*lower --lr .*; no checkpoint was written$/m);
    expect(existsSync(p)).toBe(false);
  });
});
