/** Priming text and generation, shared by `train` (periodic samples) and `sample`. */
import type { Backend } from '../model/backend.ts';
import { DataError } from '../data/text.ts';
import { wordTokens, type Tokenizer } from '../data/tokenizer.ts';
import { CliError } from './errors.ts';

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

export async function generate(
  backend: Backend, tokenizer: Tokenizer, prime: Uint32Array, length: number, temperature: number, seed: number,
): Promise<string> {
  const out = await backend.sample({ prime, length, temperature, seed: seed >>> 0 });
  return tokenizer.decode(out);
}
