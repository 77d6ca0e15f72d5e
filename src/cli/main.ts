/**
 * Entry point: `npm run rnn -- <command> [options]` (`npm start` = `train` with the defaults).
 * All the work is in run(); this file only connects it to the real process (signals, and what a
 * failing stdout means, are nodeIo's).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { nodeIo, STOP_SIGNALS } from './io.ts';
import { run } from './run.ts';

/**
 * Where `--require <tsx>/dist/preflight.cjs` is in execArgv: we were started by the tsx CLI
 * (`npx tsx src/cli/main.ts`), not by node with tsx as a loader (`node --import tsx`, the npm
 * scripts). -1 otherwise.
 */
function tsxPreflightAt(): number {
  const a = process.execArgv;
  return a.findIndex((x, i) => x === '--require' && /[\\/]tsx[\\/]dist[\\/]preflight\.cjs$/.test(a[i + 1] ?? ''));
}

const preflight = tsxPreflightAt();
if (preflight >= 0 && process.argv[2] === 'train') {
  // The tsx CLI relays SIGINT/SIGTERM to its child and SIGKILLs it when it has not acknowledged
  // the signal within 60 ms, which a training run busy with a CPU iteration of a second never
  // does. So this process only relays: it stays idle (tsx's own handler in it acknowledges at
  // once) and trains in a plain node child, which gets every signal and stops at the next
  // iteration boundary. A terminal's Ctrl-C reaches that child directly too; it counts the pair
  // as one.
  const execArgv = process.execArgv.filter((_, i) => i !== preflight && i !== preflight + 1);
  const child = spawn(process.execPath, [...execArgv, process.argv[1], ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of STOP_SIGNALS) process.on(signal, () => child.kill(signal));
  // tsx relays no SIGHUP and dies of it (or of kill -9): then the trainer stops and saves as for a hangup.
  const tsxPid = process.ppid;
  setInterval(() => {
    if (process.ppid !== tsxPid) child.kill('SIGHUP');
  }, 500).unref();
  child.on('error', (e) => {
    process.stderr.write(`error: cannot start the trainer: ${e.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(signal ? 128 + constants.signals[signal] : (code ?? 1)));
} else {
  process.exitCode = await run(process.argv.slice(2), nodeIo());
}
