/** The real thing: `npm run rnn`, as a user types it, with real exit codes and a real Ctrl-C. */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/cli/checkpoint-files.ts';
import { tempDir, tinyCorpus, TINY } from './helpers.ts';

const root = new URL('../..', import.meta.url).pathname;
let dir: string;
let corpus: string;

/** --silent: npm's own banner and failure report would otherwise surround our output. */
const npmRun = (args: string[]) =>
  spawnSync('npm', ['run', '--silent', 'rnn', '--', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });

beforeAll(() => {
  dir = tempDir();
  corpus = tinyCorpus(dir);
});

describe('npm run rnn', () => {
  it('trains, then samples from the checkpoint', () => {
    const ck = join(dir, 'sub.safetensors');
    const t = npmRun(['train', '--corpus', corpus, ...TINY, '--iterations', '20', '--checkpoint', ck]);
    expect(t.stderr).toBe('');
    expect(t.status).toBe(0);
    expect(t.stdout).toContain(`saved ${ck}`);
    const s = npmRun(['sample', '--checkpoint', ck, '--backend', 'cpu', '--prime', 'the', '--length', '30', '--seed', '1']);
    expect(s.status).toBe(0);
    expect(s.stdout).toMatch(/^the/);
  });

  it('reports bad input in one line with exit code 1, and usage errors with 2', () => {
    const missing = npmRun(['train', '--corpus', join(dir, 'missing.txt'), '--backend', 'cpu']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`error: ${join(dir, 'missing.txt')}: no such file\n`);
    const usage = npmRun(['train', '--hidden', 'many']);
    expect(usage.status).toBe(2);
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
  });

  /** Starts a long training run in its own process group and presses Ctrl-C once it is under way. */
  async function ctrlC(command: string, args: string[], ck: string) {
    // Its own process group, as a terminal's foreground job: Ctrl-C signals every process in it.
    const child = spawn(command, [...args, 'train', '--corpus', corpus, ...TINY, '--iterations', '1000000', '--print-every', '50', '--checkpoint', ck],
      { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sent = false;
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      if (!sent && /^iter 100\//m.test(out)) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    });
    // 'close' waits for the pipes, which the training process holds until it has saved and exited.
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    return { code, signal, out, err };
  }

  it('Ctrl-C saves a checkpoint and exits 130', async () => {
    const ck = join(dir, 'sigint.safetensors');
    const r = await ctrlC(process.execPath, ['--import', 'tsx', '--import', './src/node/register-raw.mjs', 'src/cli/main.ts'], ck);
    expect(r.err).toBe('');
    expect(r.code).toBe(130);
    expect(r.out).toMatch(/interrupted at iteration (\d+): saved .*sigint\.safetensors\nresume with: npm run rnn -- train --resume /);
    expect(readCheckpoint(ck).progress.iteration).toBeGreaterThanOrEqual(100);
  }, 60_000);

  it('Ctrl-C under npm run saves a checkpoint too', async () => {
    const ck = join(dir, 'sigint-npm.safetensors');
    const r = await ctrlC('npm', ['run', '--silent', 'rnn', '--'], ck);
    // The script execs node, so npm waits for the trainer to save and exits with its 130.
    expect(r.code).toBe(130);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/interrupted at iteration \d+: saved .*sigint-npm\.safetensors/);
    expect(readCheckpoint(ck).progress.iteration).toBeGreaterThanOrEqual(100);
  }, 60_000);
});
