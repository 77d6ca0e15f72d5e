/** Parsers for flag values: each refuses a bad value with a sentence commander prints as one line. */
import { InvalidArgumentError } from 'commander';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer.');
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('is too large.');
  return n;
}

/** 0 allowed: "never" for the --*-every flags. */
export function countInt(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer.');
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('is too large.');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number greater than 0.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number, 0 or more.');
  return n;
}

export function seedValue(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new InvalidArgumentError('must be an integer from 0 to 4294967295.');
  }
  return n;
}

export function nonEmpty(value: string): string {
  if (value === '') throw new InvalidArgumentError('must not be empty.');
  return value;
}

export function dropoutValue(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('must be a number from 0 up to (not including) 1.');
  return n;
}

/** A fraction in [0, 1): SGD's momentum. */
export function momentumValue(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('must be a number from 0 up to (not including) 1.');
  return n;
}

/** A fraction in (0, 1): RMSprop's decay. */
export function openFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n >= 1) throw new InvalidArgumentError('must be a number between 0 and 1 (both excluded).');
  return n;
}

/** A factor in (0, 1]: the step schedule's decay. */
export function decayFactor(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidArgumentError('must be a number above 0 and at most 1.');
  return n;
}

/** --top-p: a probability mass in (0, 1]. */
export function topPValue(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidArgumentError('must be a number in (0, 1].');
  return n;
}

/** The most samples side by side: each is a workgroup on the GPU and a buffer of its own. */
export const MAX_SAMPLES = 4096;

export function numSamplesValue(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1 || n > MAX_SAMPLES) throw new InvalidArgumentError(`must be an integer from 1 to ${MAX_SAMPLES}.`);
  return n;
}
