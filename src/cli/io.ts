/**
 * Everything the CLI touches outside its arguments, in one object, so that tests run commands
 * in-process (fast, with captured output) and main.ts wires in the real process.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { GpuContext } from '../gpu/device.ts';
import type { TuningStore } from '../gpu/tuner.ts';
import { fileTuningStore, tuningCachePath } from '../node/tuning-store.ts';
import { acquireNodeGpu, releaseNodeGpu } from '../node/webgpu.ts';

export interface OutputStream {
  write(chunk: string): unknown;
  /** A terminal: the live progress bar is drawn only then. */
  isTTY?: boolean;
  columns?: number;
}

/**
 * Why a run is asked to stop early. Each carries the exit code the process ends with: 128 + the
 * signal's number for a signal (130 SIGINT, 143 SIGTERM, 129 SIGHUP, what a shell reports), 129
 * when the parent npm process went away (as if the terminal hung up), 141 (128 + SIGPIPE) when
 * stdout or stderr was closed by its reader, 1 when writing to it failed otherwise (a full disk).
 */
export type Interruption =
  | { kind: 'signal'; signal: NodeJS.Signals; code: number }
  | { kind: 'orphaned'; code: number }
  | { kind: 'output'; stream: 'stdout' | 'stderr'; error: NodeJS.ErrnoException; code: number };

export const SIGINT_INTERRUPTION: Interruption = { kind: 'signal', signal: 'SIGINT', code: 128 + constants.signals.SIGINT };

export interface CliIO {
  stdout: OutputStream;
  stderr: OutputStream;
  /**
   * Registers a handler for a request to stop (a signal, the parent going away, or a failing
   * stdout/stderr); returns the function that removes it. Called without an argument, it means
   * Ctrl-C. While none is registered, a signal ends the process at once, as it would by default.
   */
  onInterrupt(handler: (why?: Interruption) => void): () => void;
  /** Ends the process at once (a second signal). */
  exitNow(code: number): void;
  /** False once writing to that stream failed (a closed pipe, a full disk): nothing more goes there. */
  writable?(stream: 'stdout' | 'stderr'): boolean;
  acquireGpu(): Promise<GpuContext>;
  releaseGpu(ctx: GpuContext): void;
  /**
   * The kernel tuner's cache (src/node/tuning-store.ts in a real process). Absent (the in-process
   * test harness): see src/engine/tuning.ts, TuneOptions.store.
   */
  tuningStore?(): TuningStore;
  env: Record<string, string | undefined>;
  /** Milliseconds, monotonic. */
  now(): number;
  /** Test hook: each iteration's loss, in order, once known. */
  onLoss?(iteration: number, loss: number): void;
  /** Test hook: after an iteration is enqueued (to interrupt, or to lose the device, at a chosen point). */
  onStep?(iteration: number, gpu: GpuContext | undefined): void | Promise<void>;
}

/** The signals a user or a supervisor sends to stop a program. */
export const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Parent pid of a process, from /proc (Linux); undefined elsewhere or when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Under `npm run`/`npm start` the trainer is npm's child (the scripts `exec node`, replacing npm's
 * `sh -c`; with another script-shell a shell may stay between). npm forwards only SIGINT and
 * SIGTERM; `kill -HUP <npm>` or `kill -9 <npm>` would leave us running alone, later overwriting
 * the checkpoint. So: watch whether npm (and a shell between) is still our ancestor.
 */
function watchNpmParent(onGone: () => void): void {
  if (!process.env.npm_lifecycle_event) return;
  const parent = process.ppid;
  const shell = /^(sh|dash|bash|zsh|ash|busybox)$/.test(commandOf(parent));
  const grandparent = shell ? parentOf(parent) : undefined;
  const timer = setInterval(() => {
    if (process.ppid !== parent || (grandparent !== undefined && parentOf(parent) !== grandparent)) {
      clearInterval(timer);
      onGone();
    }
  }, 500);
  timer.unref();
}

export function nodeIo(): CliIO {
  const handlers = new Set<(why?: Interruption) => void>();
  const dead = { stdout: false, stderr: false };
  /** Once a run has been asked to stop, it exits with its own code: a late EPIPE does not make that 0. */
  let stopping = false;
  const dispatch = (why: Interruption) => {
    stopping = true;
    for (const h of [...handlers]) h(why);
  };

  // (Node resets every signal to its default at startup, so `nohup`'s ignored SIGHUP cannot be seen
  // here: a SIGHUP under nohup stops and saves, where before it killed the process.)
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      const code = 128 + constants.signals[signal];
      // Without a handler (before training, or sample/eval), a signal ends the process as by default.
      if (handlers.size === 0) process.exit(code);
      dispatch({ kind: 'signal', signal, code });
    });
  }
  watchNpmParent(() => {
    if (handlers.size === 0) process.exit(128 + constants.signals.SIGHUP);
    dispatch({ kind: 'orphaned', code: 128 + constants.signals.SIGHUP });
  });

  const guard = (name: 'stdout' | 'stderr', stream: NodeJS.WriteStream): OutputStream => {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (dead[name]) return;
      dead[name] = true;
      const closed = error.code === 'EPIPE';
      if (handlers.size === 0) {
        if (stopping) return;
        // `rnn sample | head` closes the pipe early: the reader's choice, so nothing is said, but the
        // exit is 141 (128 + SIGPIPE) as for `yes | head` and for train, so `set -o pipefail` sees it.
        if (closed) process.exit(128 + constants.signals.SIGPIPE);
        if (name === 'stdout' && !dead.stderr) process.stderr.write(`error: cannot write to stdout: ${error.message}\n`);
        process.exit(1);
      }
      dispatch({ kind: 'output', stream: name, error, code: closed ? 128 + constants.signals.SIGPIPE : 1 });
    });
    // A terminal keeps the real stream: the progress bar moves its cursor.
    if (stream.isTTY) return stream;
    return {
      write: (chunk: string) => (dead[name] ? false : stream.write(chunk)),
      get isTTY() {
        return stream.isTTY;
      },
      get columns() {
        return stream.columns;
      },
    };
  };

  return {
    stdout: guard('stdout', process.stdout),
    stderr: guard('stderr', process.stderr),
    onInterrupt(handler) {
      handlers.add(handler);
      return () => {
        handlers.delete(handler);
      };
    },
    exitNow(code) {
      process.exit(code);
    },
    writable: (name) => !dead[name],
    acquireGpu: acquireNodeGpu,
    releaseGpu: releaseNodeGpu,
    tuningStore: () => fileTuningStore(tuningCachePath(process.env)),
    env: process.env,
    now: () => performance.now(),
  };
}
