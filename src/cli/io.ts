/**
 * Everything the CLI touches outside its arguments, in one object, so that tests run commands
 * in-process (fast, with captured output) and main.ts wires in the real process.
 */
import type { GpuContext } from '../gpu/device.ts';
import { acquireNodeGpu, releaseNodeGpu } from '../node/webgpu.ts';

export interface OutputStream {
  write(chunk: string): unknown;
  /** A terminal: the live progress bar is drawn only then. */
  isTTY?: boolean;
  columns?: number;
}

export interface CliIO {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Registers a Ctrl-C handler; returns the function that removes it. */
  onInterrupt(handler: () => void): () => void;
  /** Ends the process at once (a second Ctrl-C). */
  exitNow(code: number): void;
  acquireGpu(): Promise<GpuContext>;
  releaseGpu(ctx: GpuContext): void;
  env: Record<string, string | undefined>;
  /** Milliseconds, monotonic. */
  now(): number;
  /** Test hook: each iteration's loss, in order, once known. */
  onLoss?(iteration: number, loss: number): void;
  /** Test hook: after an iteration is enqueued (to interrupt, or to lose the device, at a chosen point). */
  onStep?(iteration: number, gpu: GpuContext | undefined): void | Promise<void>;
}

export function nodeIo(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      return () => {
        process.off('SIGINT', handler);
      };
    },
    exitNow(code) {
      process.exit(code);
    },
    acquireGpu: acquireNodeGpu,
    releaseGpu: releaseNodeGpu,
    env: process.env,
    now: () => performance.now(),
  };
}
