/** In-process CLI runs for tests: captured output, a Ctrl-C button, and no GPU unless one is passed in. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CliIO } from '../../src/cli/io.ts';
import { run } from '../../src/cli/run.ts';
import { NoAdapterError, type GpuContext } from '../../src/gpu/device.ts';
import type { TuningStore } from '../../src/gpu/tuner.ts';

export interface Captured {
  code: number;
  out: string;
  err: string;
  /** Iteration -> loss, as the training loop saw them. */
  losses: Map<number, number>;
  exits: number[];
}

export interface RunOptions {
  gpu?: GpuContext;
  /** Called after each enqueued iteration; `interrupt()` presses Ctrl-C. */
  onStep?: (iteration: number, tools: { interrupt: () => void; gpu?: GpuContext }) => void | Promise<void>;
  tty?: boolean;
  /** The kernel tuner's cache; without one --tune auto keeps the default kernels (src/cli/io.ts). */
  tuningStore?: TuningStore;
}

export async function cli(argv: string[], o: RunOptions = {}): Promise<Captured> {
  let out = '';
  let err = '';
  const losses = new Map<number, number>();
  const exits: number[] = [];
  const handlers = new Set<() => void>();
  const interrupt = () => {
    for (const h of [...handlers]) h();
  };
  const io: CliIO = {
    stdout: { write: (s: string) => { out += s; return true; }, isTTY: o.tty },
    stderr: { write: (s: string) => { err += s; return true; } },
    onInterrupt(h) {
      handlers.add(h);
      return () => handlers.delete(h);
    },
    exitNow: (code) => {
      exits.push(code);
    },
    acquireGpu: async () => {
      if (!o.gpu) throw new NoAdapterError('no WebGPU adapter found (tests: none passed in)');
      return o.gpu;
    },
    // The test's shared device outlives a command; the file's afterAll releases it.
    releaseGpu: () => {},
    tuningStore: o.tuningStore ? () => o.tuningStore! : undefined,
    env: {},
    now: () => performance.now(),
    onLoss: (i, l) => {
      losses.set(i, l);
    },
    onStep: o.onStep ? (i, gpu) => o.onStep!(i, { interrupt, gpu }) : undefined,
  };
  const code = await run(argv, io);
  return { code, out, err, losses, exits };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'rnn-cli-'));
}

/** A small, learnable corpus: a few words in random order, 64 lines. */
export function tinyCorpus(dir: string, name = 'tiny.txt', lines = 64): string {
  const words = 'the quick brown fox jumps over a lazy dog and runs away from big bad wolves today'.split(' ');
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 16777216;
  const text = Array.from({ length: lines }, () => Array.from({ length: 10 }, () => words[Math.floor(rnd() * words.length)]).join(' ')).join('\n');
  const path = join(dir, name);
  writeFileSync(path, `${text}\n`);
  return path;
}

/** Flags for a model that trains in milliseconds on the CPU. */
export const TINY = ['--hidden', '16', '--seq-length', '8', '--batch-size', '4', '--backend', 'cpu', '--sample-every', '0', '--eval-every', '0'];

/** stderr holds exactly one line. */
export function oneLineErr(err: string): boolean {
  return err.endsWith('\n') && err.trimEnd().split('\n').length === 1;
}

/** The repository root, where the CLI subprocess tests run. */
export const REPO_ROOT = new URL('../..', import.meta.url).pathname;

/** `train` as a plain node process with the tsx loader, as the npm scripts run it. */
export const NODE_TRAIN = [process.execPath, '--import', 'tsx', '--import', './src/node/register-raw.mjs', 'src/cli/main.ts', 'train'];

/** The exit code of a process that stopped for `signal` (128 + its number). */
export const signalExitCode = (signal: NodeJS.Signals) => 128 + constants.signals[signal];

/** stderr's non-empty lines (Dawn's native warnings no longer reach it: see captureStderr). */
export const ownStderrLines = (err: string) => err.split('\n').filter((l) => l);
