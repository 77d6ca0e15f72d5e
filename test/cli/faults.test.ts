/**
 * Fault suite with property-style inputs (issue 15): the real CLI in a subprocess, stopped by a
 * signal or killed outright at random moments, drawn from a seeded `Rng`. Every case prints the
 * seed and its timing; FAULT_SEED=<n> reruns a failing draw. Moments are relative to the progress
 * the trainer reports (a line on stdout, then a random delay), not absolute, so a loaded machine
 * shifts them less.
 *
 * The properties: a signal ends the run with a documented exit code and no stack trace, and the
 * checkpoint is then absent (stopped before training, and the output says nothing was saved) or
 * whole, at the iteration the output names; SIGKILL during saves leaves the previous or the new
 * checkpoint, whole, and the next save removes any temporary it left behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/cli/checkpoint-files.ts';
import { Rng } from '../../src/util/random.ts';
import { noGpu } from '../gpu.ts';
import { NODE_TRAIN as NODE, ownStderrLines as ours, REPO_ROOT as root, signalExitCode as exitCode, tempDir, tinyCorpus } from './helpers.ts';

const SEED = Number(process.env.FAULT_SEED ?? 15015);
const SMALL = ['--hidden', '16', '--seq-length', '8', '--batch-size', '4', '--sample-every', '0', '--eval-every', '0', '--print-every', '1'];
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

let dir: string;
let corpus: string;

beforeAll(() => {
  dir = tempDir();
  corpus = tinyCorpus(dir, 'words.txt', 1000);
});

const temporaries = (d: string) => readdirSync(d).filter((f) => f.endsWith('.tmp'));

interface Result { code: number | null; signal: NodeJS.Signals | null; out: string; err: string; sentAt?: number; firstOut?: number; ms: number }

/**
 * Runs `train args`; once stdout matches `trigger` (or at spawn when it is undefined), waits
 * `delay` ms and sends `sig` to the trainer. Resolves when the pipes close.
 */
function run(args: string[], trigger: RegExp | undefined, delay: number, sig: NodeJS.Signals): Promise<Result> {
  const t0 = performance.now();
  const child = spawn(NODE[0], [...NODE.slice(1), '--corpus', corpus, ...args], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' },
  });
  let out = '';
  let err = '';
  let sentAt: number | undefined;
  let firstOut: number | undefined;
  let armed = false;
  const arm = () => {
    armed = true;
    setTimeout(() => {
      if (child.exitCode !== null || child.signalCode !== null) return; // finished first
      sentAt = performance.now() - t0;
      child.kill(sig);
    }, delay);
  };
  if (!trigger) arm();
  child.stderr.on('data', (d) => (err += d));
  child.stdout.on('data', (d) => {
    firstOut ??= performance.now() - t0;
    out += d;
    if (!armed && trigger!.test(out)) arm();
  });
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, out, err, sentAt, firstOut, ms: performance.now() - t0 })));
}

const fmt = (r: Result) => `sent at ${r.sentAt === undefined ? '-' : `${r.sentAt.toFixed(0)} ms`}, exit ${r.code ?? r.signal} after ${r.ms.toFixed(0)} ms`;

describe(`faults at random moments (seed ${SEED}; FAULT_SEED=${SEED} reproduces)`, () => {
  it('a signal at a random moment: a documented exit code, no stack, and no checkpoint or a whole one', async () => {
    const rng = new Rng(SEED);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng.next() * xs.length)];
    const N = 8;
    const ITER = 20;
    const outcomes = new Set<string>();
    // Every phase is drawn, in a seeded order: module loading (from spawn), just before the first
    // line, setup (after one of its lines), training (after an iteration's line: in the next iteration or its save), after the end.
    const phases = ['spawn', 'prestart', 'setup', 'training', 'training', 'training', 'after', 'after'] as const;
    const order = phases.map((ph) => ({ ph, key: rng.next() })).sort((x, y) => x.key - y.key).map((x) => x.ph);
    console.log(`signal faults: seed ${SEED}`);
    const firstLine = { cpu: 600, gpu: 900 };
    for (let c = 0; c < N; c++) {
      const backend = c % 2 === 1 && !noGpu ? 'gpu' : 'cpu';
      const sig = pick(SIGNALS);
      const phase = order[c % order.length];
      let trigger: RegExp | undefined;
      let delay: number;
      // Module loading and the backend's start: a fraction of the time the last run took to print its first line.
      if (phase === 'spawn') delay = rng.next() * firstLine[backend];
      // Just before it: the handler is there, training is not (reading the corpus, opening the backend).
      else if (phase === 'prestart') delay = (0.8 + 0.2 * rng.next()) * firstLine[backend];
      else if (phase === 'setup') {
        trigger = new RegExp(`^${pick(['backend', 'corpus', 'model', 'training', 'checkpoint'])}: `, 'm');
        delay = rng.next() * 30;
      } else if (phase === 'training') {
        const k = 1 + Math.floor(rng.next() * (ITER - 1));
        trigger = new RegExp(`^iter ${k}/`, 'm');
        delay = rng.next() * 30;
      } else {
        trigger = /^saved /m;
        delay = rng.next() * 100;
      }
      const d = join(dir, `sig-${c}`);
      const ck = join(d, 'm.safetensors');
      const r = await run([...SMALL, '--backend', backend, '--iterations', String(ITER), '--checkpoint-every', '1', '--checkpoint', ck],
        trigger, delay, sig);
      if (r.firstOut !== undefined) firstLine[backend] = r.firstOut;
      const what = `case ${c}: ${backend} ${sig} ${phase} ${trigger ? `${trigger.source} + ` : 'spawn + '}${delay.toFixed(1)} ms; ${fmt(r)}`;
      console.log(`${what}${/nothing saved/.test(r.out) ? ' (said: nothing saved)' : ''}`);
      const ctx = `${what}\n--- stdout\n${r.out}\n--- stderr\n${r.err}`;

      expect(r.err, ctx).not.toContain('\n    at ');
      const done = /^done: iteration (\d+)/m.exec(r.out);
      const interrupted = /^interrupted at iteration (\d+): saved (.*)$/m.exec(r.out);
      const nothing = /stopped before training started, nothing saved$/m.test(r.out);
      if (done) {
        // Finished first; a signal after the last line may still end the process as a signal does.
        expect([0, exitCode(sig)], ctx).toContain(r.code ?? exitCode(r.signal!));
        expect(readCheckpoint(ck).progress.iteration, ctx).toBe(ITER);
        outcomes.add('finished'); console.log(`case ${c}: finished`);
      } else {
        expect(r.sentAt, ctx).toBeDefined();
        // A handled signal exits with 128 + its number; before the handler exists (module loading) it kills.
        expect(r.code ?? exitCode(r.signal!), ctx).toBe(exitCode(sig));
        if (interrupted) {
          expect(interrupted[2], ctx).toBe(ck);
          expect(readCheckpoint(ck).progress.iteration, ctx).toBe(Number(interrupted[1]));
          outcomes.add('saved'); console.log(`case ${c}: saved`);
        } else if (existsSync(ck)) {
          // Killed between a periodic save and its report (or before the handler existed): still whole.
          readCheckpoint(ck);
          outcomes.add('whole'); console.log(`case ${c}: whole`);
        } else {
          // Before training started: nothing saved, and saying so unless the handler did not exist yet.
          expect(nothing || r.code === null, ctx).toBe(true);
          outcomes.add('nothing'); console.log(`case ${c}: nothing`);
        }
      }
      if (existsSync(d)) expect(temporaries(d), ctx).toEqual([]);
      else expect(/saved /.test(r.out), ctx).toBe(false);
      if (r.code !== null) expect(ours(r.err).filter((l) => !/^(interrupted again|warning)/i.test(l)), ctx).toEqual([]);
    }
    console.log(`signal faults: outcomes ${[...outcomes].join(', ')}`);
  }, 120_000);

  it('SIGKILL during saves leaves a whole checkpoint (old or new); the next save removes the stale temporary', async () => {
    const rng = new Rng(SEED ^ 0x5eed);
    const N = 6;
    const base = 3;
    console.log(`kill faults: seed ${SEED}`);
    let staleSeen = 0;
    for (let c = 0; c < N; c++) {
      const d = join(dir, `kill-${c}`);
      const ck = join(d, 'm.safetensors');
      const backend = c % 3 === 2 && !noGpu ? 'gpu' : 'cpu';
      const first = await run([...SMALL, '--backend', backend, '--iterations', String(base), '--checkpoint', ck, '--quiet'], /$^/, 0, 'SIGKILL');
      expect(first.code, first.err).toBe(0);
      expect(readCheckpoint(ck).progress.iteration).toBe(base);

      // Resume with a save after every iteration and kill it a random moment after a random progress line.
      const k = base + 1 + Math.floor(rng.next() * 15);
      const delay = rng.next() * 20;
      const r = await run(['--resume', ck, '--iterations', '100000', '--checkpoint-every', '1', '--print-every', '1'], new RegExp(`^iter ${k}/`, 'm'), delay, 'SIGKILL');
      const stale = temporaries(d);
      staleSeen += stale.length;
      const what = `case ${c}: ${backend} SIGKILL at iter ${k} + ${delay.toFixed(1)} ms; ${fmt(r)}; temporaries left: ${stale.length}`;
      const ctx = `${what}\n--- stdout\n${r.out}\n--- stderr\n${r.err}`;
      expect(r.signal, ctx).toBe('SIGKILL');
      const saved = readCheckpoint(ck).progress.iteration;
      console.log(`${what}; checkpoint at iteration ${saved}`);
      expect(saved, ctx).toBeGreaterThanOrEqual(base);
      expect(saved, ctx).toBeGreaterThanOrEqual(k - 1); // a save after every iteration: at most one lost

      // The next run's save removes whatever the killed one left.
      const next = await run(['--resume', ck, '--iterations', String(saved + 1), '--quiet'], /$^/, 0, 'SIGKILL');
      expect(next.code, `${ctx}\n--- next\n${next.out}\n${next.err}`).toBe(0);
      expect(readCheckpoint(ck).progress.iteration).toBe(saved + 1);
      expect(temporaries(d), ctx).toEqual([]);
    }
    console.log(`kill faults: ${staleSeen} stale temporaries left by kills, all removed by the next save`);
  }, 150_000);
});
