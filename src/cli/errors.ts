/**
 * How the CLI reports failure: one line on stderr, no stack, and an exit code that says whose
 * fault it was (2: the command line itself; 1: the data, a file, the device or the training).
 */
import { CheckpointError } from '../checkpoint/safetensors.ts';
import { DataError } from '../data/text.ts';
import { DivergedError } from '../engine/trainer.ts';
import { NoAdapterError } from '../gpu/device.ts';
import { DeviceLimitError } from '../gpu/memory.ts';
import { DeviceLostError } from '../gpu/backend.ts';
import { GpuEnvError } from '../node/webgpu.ts';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C (other stops: see io.ts's Interruption). */
export const EXIT_INTERRUPTED = 130;

/** A command line that cannot work as written (conflicting flags and the like): exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure already worded for the user, from the CLI itself: exit code 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** Errors whose message is written for the user; anything else is a bug or a system failure. */
const USER_FACING = [UsageError, CliError, DataError, CheckpointError, DivergedError, NoAdapterError, DeviceLimitError, DeviceLostError, GpuEnvError];

export function isUserFacing(e: unknown): boolean {
  return USER_FACING.some((k) => e instanceof k);
}

/** The one line printed for an error: its message with line breaks folded, prefixed with "error: ". */
export function errorLine(e: unknown): string {
  const raw = e instanceof Error ? e.message : String(e);
  const msg = oneLine(raw) || (e instanceof Error ? e.name : 'unknown error');
  if (isUserFacing(e)) return `error: ${msg}`;
  // Errors from Node itself (EACCES, ENOSPC...) carry a readable message; say it without a stack.
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return `error: ${msg}`;
  return `error: ${msg} (unexpected; run with RNN_DEBUG=1 for details)`;
}

export function oneLine(s: string): string {
  return s.replace(/\s*[\r\n\v\f\u0085\u2028\u2029]+\s*/g, ' ').trim();
}

export function exitCodeFor(e: unknown): number {
  return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
}
