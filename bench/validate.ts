/**
 * A kernel variant is validated before it is timed (bench/kernels.ts): its output after the
 * warm-up run, against a reference, as an error relative to the reference's own scale
 * (src/gpu/tune.ts: relativeError, sampledError). A mismatch stops the bench with one line.
 */

/** What a bench row names: the kernel, the shape and the variant. */
export interface RowName { kernel: string; shape: string; variant: string }

/** A kernel variant whose output does not match its reference: the bench stops, nothing is timed. */
export class KernelMismatch extends Error {}

/** The error as a short number: 3 significant digits, exponent form for the small ones. */
const show = (x: number) => (Number.isFinite(x) && x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toPrecision(3));

/**
 * Throws a KernelMismatch unless every error in `errors` (output name -> error relative to the
 * reference's largest entry) is within `tolerance` (NaN and Infinity never are): one line naming
 * the row, the worst output and its error.
 */
export function expectWithin(row: RowName, errors: Record<string, number>, tolerance: number): void {
  const rank = (e: number) => (Number.isNaN(e) ? Infinity : e);
  let worst: [string, number] | undefined;
  for (const [name, e] of Object.entries(errors)) if (!worst || rank(e) > rank(worst[1])) worst = [name, e];
  if (worst && !(worst[1] <= tolerance)) {
    throw new KernelMismatch(
      `kernel bench: ${row.kernel} ${row.shape}, ${row.variant}: wrong output before timing: ` +
        `${worst[0]} off by ${show(worst[1])} of the reference's largest entry (tolerance ${show(tolerance)})`,
    );
  }
}

/** Runs a bench's main: a KernelMismatch ends the process with its one line and exit status 1. */
export async function stopOnMismatch(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (!(e instanceof KernelMismatch)) throw e;
    console.error(e.message);
    process.exit(1);
  }
}
