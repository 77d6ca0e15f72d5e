/** Priming text and generation, shared by `train` (periodic samples) and `sample`. */
import type { Command } from 'commander';
import type { Backend, SamplingControls } from '../model/backend.ts';
import { DataError } from '../data/text.ts';
import { wordTokens, type Tokenizer } from '../data/tokenizer.ts';
import { CliError } from './errors.ts';
import { countInt, numSamplesValue, positiveInt, positiveNumber, topPValue } from './options.ts';

export { defaultPrime } from '../data/tokenizer.ts';

/**
 * The prime as ids. A character the vocabulary lacks is an error naming it; a word-level model
 * with <unk> reads unknown words as <unk>, and those are returned so the caller can say so.
 */
export function encodePrime(tokenizer: Tokenizer, prime: string): { ids: Uint32Array; unknown: string[] } {
  if (prime === '') throw new CliError('--prime is empty: give at least one character');
  let ids: Uint32Array;
  try {
    ids = tokenizer.encode(prime);
  } catch (e) {
    if (e instanceof DataError) {
      let hint = '';
      if (prime !== prime.toLowerCase()) {
        try {
          tokenizer.encode(prime.toLowerCase());
          hint = ' (this model was trained on lowercased text: write the prime in lowercase)';
        } catch {
          // Lowercase would not help either.
        }
      }
      throw new CliError(`--prime: ${e.message}${hint}`);
    }
    throw e;
  }
  const unknown: string[] = [];
  if (tokenizer.level === 'word') {
    const known = new Set(tokenizer.vocab);
    for (const t of wordTokens(prime)) if (!known.has(t) && !unknown.includes(t)) unknown.push(t);
  }
  return { ids, unknown };
}

/** The flags of the sampling controls and --num-samples, shared by `sample` and `train` (its periodic samples). */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--top-k <k>', 'sample only from the k most likely tokens (ties with the k-th included; default: all)', positiveInt)
    .option('--top-p <p>', 'nucleus sampling: only from the most likely tokens holding p of the probability, in (0, 1] (default 1: all)', topPValue)
    .option('--repetition-penalty <r>', 'CTRL\'s penalty on the tokens of the last --repetition-window tokens: logits divided by r when positive, multiplied when negative (default 1: none; 1.2-1.5 discourage repeats)', positiveNumber)
    .option('--repetition-window <n>', 'tokens the repetition penalty looks back over, the prime included (default 0: the whole text so far)', countInt)
    .option('--num-samples <n>', 'independent samples side by side (one set of GPU dispatches), each from its own random stream', numSamplesValue, 1);
}

/** The controls the flags ask for, or undefined when none changes anything. */
export function samplingControls(o: Record<string, unknown>): SamplingControls | undefined {
  const c: SamplingControls = {};
  if (o.topK !== undefined) c.topK = o.topK as number;
  if (o.topP !== undefined) c.topP = o.topP as number;
  if (o.repetitionPenalty !== undefined) c.repetitionPenalty = o.repetitionPenalty as number;
  if (o.repetitionWindow !== undefined) c.repetitionWindow = o.repetitionWindow as number;
  return Object.keys(c).length ? c : undefined;
}

/** `count` samples, side by side on the GPU, decoded. */
export async function generate(
  backend: Backend, tokenizer: Tokenizer, prime: Uint32Array, length: number, temperature: number, seed: number,
  controls?: SamplingControls, count = 1,
): Promise<string[]> {
  const out = await backend.sampleMany({ prime, length, temperature, seed: seed >>> 0, controls }, count);
  return out.map((t) => tokenizer.decode(t));
}

/** Several samples, each under a header line that says which one it is; one sample as it is. */
export function formatSamples(texts: readonly string[], header: (i: number) => string): string {
  if (texts.length === 1) return texts[0];
  return texts.map((t, i) => `${header(i)}\n${t}`).join('\n');
}
