/**
 * Interruptions, as a user or a supervisor causes them, against the real CLI in a subprocess:
 * SIGINT, SIGTERM and SIGHUP on both backends (on the CPU with iterations of more than a second,
 * which block the event loop), through plain node and through npm, a killed npm, a second
 * signal, a closed stdout pipe, a full stdout device, and a killed save's temporary file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/cli/checkpoint-files.ts';
import { noGpu } from '../gpu.ts';
import {
  cli, NODE_TRAIN as NODE, ownStderrLines as ours, REPO_ROOT as root, signalExitCode as code, tempDir, tinyCorpus, TINY,
} from './helpers.ts';

const NPM = ['npm', 'run', '--silent', 'rnn', '--', 'train'];
/** A CPU model whose iterations take over a second: the event loop is blocked that long. */
const SLOW_CPU = ['--backend', 'cpu', '--hidden', '256', '--batch-size', '32', '--seq-length', '64', '--sample-every', '0', '--eval-every', '0'];
const SMALL_GPU = ['--backend', 'gpu', '--hidden', '16', '--seq-length', '8', '--batch-size', '4', '--sample-every', '0', '--eval-every', '0'];

let dir: string;
let corpus: string;

beforeAll(() => {
  dir = tempDir();
  corpus = tinyCorpus(dir, 'words.txt', 1000);
});


interface Result { code: number | null; signal: NodeJS.Signals | null; out: string; err: string; child: ChildProcess }

/**
 * Starts `command` (which ends in `train`) in its own process group (a terminal's foreground job) and calls `act` once a
 * progress line matching `ready` is out. Resolves when the child's pipes close, which the trainer
 * holds until it has exited, even when npm above it is gone.
 */
function train(command: string[], args: string[], ready: RegExp, act: (child: ChildProcess) => void, stdout: 'pipe' | number = 'pipe'): Promise<Result> {
  const child = spawn(command[0], [...command.slice(1), '--corpus', corpus, '--iterations', '100000', '--print-every', '1', ...args], {
    cwd: root, detached: true, stdio: ['ignore', stdout, 'pipe'], env: { ...process.env, FORCE_COLOR: '0' },
  });
  let out = '';
  let err = '';
  let acted = false;
  const check = () => {
    if (!acted && ready.test(out)) {
      acted = true;
      act(child);
    }
  };
  child.stderr!.on('data', (d) => (err += d));
  child.stdout?.on('data', (d) => {
    out += d;
    check();
  });
  return new Promise((resolve) => child.on('close', (c, s) => resolve({ code: c, signal: s, out, err, child })));
}

/** Alive and not a zombie waiting for its new parent to reap it. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const atIter = (n: number) => new RegExp(`^iter ${n}/`, 'm');
const groupKill = (sig: NodeJS.Signals) => (child: ChildProcess) => process.kill(-child.pid!, sig);
/**
 * A moment after a progress line, so that the signal lands while the next CPU iteration is
 * computing (the event loop blocked), not in the pause between two iterations.
 */
const midIteration = (act: (child: ChildProcess) => void) => (child: ChildProcess) => setTimeout(() => act(child), 300);

function expectSaved(r: Result, ck: string, minIteration: number) {
  const m = /^interrupted at iteration (\d+): saved (.*)$/m.exec(r.out);
  expect(m, `${r.out}\n${r.err}`).not.toBeNull();
  expect(m![2]).toBe(ck);
  expect(r.out).toContain(`resume with: npm run rnn -- train --resume ${ck}`);
  const saved = readCheckpoint(ck).progress.iteration;
  expect(saved).toBe(Number(m![1]));
  expect(saved).toBeGreaterThanOrEqual(minIteration);
}

describe('signals stop training at the next iteration and save', () => {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${sig}, CPU backend, iterations over a second, plain node`, async () => {
      const ck = join(dir, `cpu-${sig}.safetensors`);
      const r = await train(NODE, [...SLOW_CPU, '--checkpoint', ck], atIter(1), midIteration(groupKill(sig)));
      expect(ours(r.err)).toEqual([]);
      expect(r.code).toBe(code(sig));
      expect(r.out).toMatch(new RegExp(`^(Ctrl-C \\(SIGINT\\)|${sig}): stopping after the iterations in flight to save a checkpoint`, 'm'));
      expectSaved(r, ck, 1);
    }, 60_000);

    it.skipIf(noGpu)(`${sig}, GPU backend, plain node`, async () => {
      const ck = join(dir, `gpu-${sig}.safetensors`);
      const r = await train(NODE, [...SMALL_GPU, '--checkpoint', ck], atIter(20), groupKill(sig));
      expect(ours(r.err)).toEqual([]);
      expect(r.code).toBe(code(sig));
      expectSaved(r, ck, 20);
    }, 60_000);
  }

  it('Ctrl-C under npm run on the CPU backend (before: tsx killed the busy trainer, nothing saved)', async () => {
    const ck = join(dir, 'npm-int.safetensors');
    const r = await train(NPM, [...SLOW_CPU, '--checkpoint', ck], atIter(1), midIteration(groupKill('SIGINT')));
    // The scripts exec node: npm waits for the trainer to save, then exits with its code.
    expect(r.code).toBe(130);
    expect(ours(r.err)).toEqual([]);
    expectSaved(r, ck, 1);
  }, 60_000);

  for (const sig of ['SIGTERM', 'SIGHUP', 'SIGKILL'] as const) {
    it(`kill -${sig.slice(3)} of the npm process alone still saves, and leaves no trainer behind`, async () => {
      const ck = join(dir, `npm-${sig}.safetensors`);
      let trainer = 0;
      const r = await train(NPM, [...SLOW_CPU, '--checkpoint', ck], atIter(1), midIteration((child) => {
        trainer = Number(spawnSync('pgrep', ['-g', String(child.pid), '-x', 'node'], { encoding: 'utf8' }).stdout.trim().split('\n').pop());
        process.kill(child.pid!, sig);
      }));
      expect(ours(r.err)).toEqual([]);
      expectSaved(r, ck, 1);
      expect(trainer).toBeGreaterThan(0);
      expect(running(trainer)).toBe(false); // 'close' came after it exited
    }, 60_000);
  }

  const TSX = [join(root, 'node_modules/.bin/tsx'), '--import', './src/node/register-raw.mjs', 'src/cli/main.ts', 'train'];

  it('Ctrl-C under the tsx CLI (npx tsx src/cli/main.ts) on the CPU backend', async () => {
    const ck = join(dir, 'tsx-int.safetensors');
    const r = await train(TSX, [...SLOW_CPU, '--checkpoint', ck], atIter(1), midIteration(groupKill('SIGINT')));
    expect(r.code).toBe(130);
    expect(ours(r.err)).toEqual([]);
    expectSaved(r, ck, 1);
  }, 60_000);

  for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
    it(`kill -${sig.slice(3)} of the tsx CLI process alone`, async () => {
      const ck = join(dir, `tsx-${sig}.safetensors`);
      const r = await train(TSX, [...SLOW_CPU, '--checkpoint', ck], atIter(1), midIteration((child) => process.kill(child.pid!, sig)));
      // tsx relays SIGTERM and exits with the trainer's code; SIGHUP kills tsx, and the trainer notices.
      if (sig === 'SIGTERM') expect(r.code).toBe(143);
      expect(ours(r.err)).toEqual([]);
      expectSaved(r, ck, 1);
    }, 60_000);
  }

  it('npm start passes the signal on too', async () => {
    const ck = join(dir, 'start.safetensors');
    const r = await train(['npm', 'start', '--silent', '--'], [...SLOW_CPU, '--checkpoint', ck], atIter(1), midIteration(groupKill('SIGTERM')));
    expect(ours(r.err)).toEqual([]);
    expectSaved(r, ck, 1);
  }, 60_000);

  it('a second signal quits without saving, in one line', async () => {
    const ck = join(dir, 'twice.safetensors');
    // Both while an iteration of a second or more is computing: the CPU backend acts on them when
    // it ends, and then quits instead of saving. (Further apart, the first would have saved already.)
    const r = await train(NODE, [...SLOW_CPU, '--checkpoint', ck], atIter(1), midIteration((child) => {
      process.kill(-child.pid!, 'SIGINT');
      setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGTERM');
        } catch {
          // Already gone: the assertions below say so.
        }
      }, 50);
    }));
    expect(r.code).toBe(code('SIGTERM'));
    expect(ours(r.err)).toEqual(['interrupted again: quitting without saving (SIGTERM); the checkpoint on disk is the last one written']);
    expect(existsSync(ck)).toBe(false);
  }, 60_000);
});

describe('failing output stops training with a checkpoint and one line', () => {
  it('a closed stdout pipe (train | head): exit 141, one line on stderr, a checkpoint', async () => {
    const ck = join(dir, 'pipe.safetensors');
    const r = await train(NODE, [...TINY, '--checkpoint', ck], atIter(3), (child) => child.stdout!.destroy());
    expect(r.code).toBe(141);
    const lines = ours(r.err);
    expect(lines).toHaveLength(1);
    const m = /^stdout was closed: stopped at iteration (\d+), saved (.*) \(resume with --resume .*\)$/.exec(lines[0]);
    expect(m, r.err).not.toBeNull();
    expect(m![2]).toBe(ck);
    expect(readCheckpoint(ck).progress.iteration).toBe(Number(m![1]));
  }, 60_000);

  it('stdout and stderr on one closed pipe (train 2>&1 | head): exit 141 all the same, a checkpoint', () => {
    const ck = join(dir, 'pipe2.safetensors');
    const cmd = [...NODE, '--corpus', corpus, ...TINY, '--iterations', '100000', '--print-every', '1', '--checkpoint', ck]
      .map((a) => `'${a}'`).join(' ');
    const r = spawnSync('bash', ['-c', `set -o pipefail; ${cmd} 2>&1 | head -3 >/dev/null`], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(141);
    expect(readCheckpoint(ck).progress.iteration).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('sample into a closed pipe (sample | head): nothing on stderr, exit 141 as train and Unix tools give', () => {
    const ck = join(dir, 'pipe3.safetensors');
    expect(spawnSync(NODE[0]!, [...NODE.slice(1), '--corpus', corpus, ...TINY, '--iterations', '2', '--checkpoint', ck, '--quiet'], { cwd: root }).status).toBe(0);
    const sample = [...NODE.slice(0, -1), 'sample', '--checkpoint', ck, '--backend', 'cpu', '--length', '200000'].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('bash', ['-c', `set -o pipefail; ${sample} | head -c 10 >/dev/null`], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(141);
  }, 90_000);

  it('stdout on a full device (> /dev/full): exit 1, one error line, no stack', async () => {
    const ck = join(dir, 'full.safetensors');
    const full = openSync('/dev/full', 'w');
    try {
      const r = await train(NODE, [...TINY, '--checkpoint', ck], /./, () => {}, full);
      expect(r.code).toBe(1);
      const lines = ours(r.err);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^error: writing to stdout failed \(ENOSPC: no space left on device, write\): stopped at iteration \d+, saved /);
      expect(readCheckpoint(ck).progress.iteration).toBeGreaterThanOrEqual(1);
    } finally {
      closeSync(full);
    }
  }, 60_000);
});

describe('a save killed before its rename', () => {
  it('leaves a temporary that the next save of the same checkpoint removes, and nothing else', async () => {
    const d = join(dir, 'stale');
    const ck = join(d, 'm.safetensors');
    await cli(['train', '--corpus', corpus, ...TINY, '--iterations', '2', '--checkpoint', ck, '--quiet']);
    // A process that has exited: its pid names the killed writer.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = `.m.safetensors.${dead}.0123456789ab.tmp`;
    const ownStale = `.m.safetensors.${process.pid}.ba9876543210.tmp`; // a pid reused from an earlier run
    const keep = [
      `.m.safetensors.${process.ppid}.0123456789ab.tmp`, // a live writer's
      `.other.safetensors.${dead}.0123456789ab.tmp`, // another target's
      '.m.safetensors.tmp', 'm.safetensors.tmp', `.m.safetensors.${dead}.tmp`, 'notes.txt',
    ];
    for (const f of [stale, ownStale, ...keep]) writeFileSync(join(d, f), 'x'.repeat(1000));
    const r = await cli(['train', '--resume', ck, '--iterations', '4', '--backend', 'cpu', '--quiet']);
    expect(r.code).toBe(0);
    const files = readdirSync(d);
    expect(files).not.toContain(stale);
    expect(files).not.toContain(ownStale);
    for (const f of keep) expect(files).toContain(f);
    expect(readCheckpoint(ck).progress.iteration).toBe(4);
  });
});
