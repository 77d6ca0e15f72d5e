/**
 * The text a command trains or evaluates on: loaded, tokenized, split 95/5 into training and
 * held-out text exactly as training did, so `--resume` and `eval` see the same ids.
 */
import { basename, extname, resolve } from 'node:path';
import { corpusNames, openCorpus } from '../node/corpora.ts';
import { DataError, DEFAULT_CHARSET, type Charset } from '../data/text.ts';
import { CharTokenizer, encodePieces, WordTokenizer, type TextPieces, type TokenIds, type Tokenizer, type TokenizerLevel } from '../data/tokenizer.ts';
import { splitTrainVal } from '../data/split.ts';

export const VAL_FRACTION = 0.05;

export interface CorpusSettings {
  /** A corpus name or a path, as the user gave it. */
  spec: string;
  /** Undefined: lowercase Reuters (as the original project did), keep anything else as it is. */
  lowercase?: boolean;
  /** Which characters to keep (default `clean`); `letters` lowercases regardless of `lowercase`. */
  charset?: Charset;
  /** Size limit for a text file, in MB (--max-corpus-mb; default DEFAULT_MAX_CORPUS_MB). */
  maxMb?: number;
}

export interface TokenizerSettings {
  level: TokenizerLevel;
  maxVocab: number;
  minCount: number;
  unk: boolean;
}

export interface PreparedCorpus {
  /** What a checkpoint records to find this text again: the name, or the file's absolute path. */
  source: string;
  /** Short name for messages and default checkpoint names: "reuters", "input". */
  stem: string;
  lowercase: boolean;
  charset: Charset;
  chars: number;
  tokenizer: Tokenizer;
  ids: TokenIds;
  train: TokenIds;
  val: TokenIds;
}

/** " (charset letters)", " (lowercased)", " (charset raw, lowercased)" or "", for the setup line. */
export function describePreparation(d: Pick<PreparedCorpus, 'charset' | 'lowercase'>): string {
  const parts = [d.charset === 'clean' ? '' : `charset ${d.charset}`, d.lowercase && d.charset !== 'letters' ? 'lowercased' : '']
    .filter((p) => p !== '');
  return parts.length ? ` (${parts.join(', ')})` : '';
}

export const isNamedCorpus = (spec: string): boolean => (corpusNames as readonly string[]).includes(spec);

function codePoints(pieces: TextPieces): number {
  let n = 0;
  pieces((s) => {
    n += s.length;
    for (let i = 0; i < s.length; i++) if ((s.charCodeAt(i) & 0xfc00) === 0xdc00) n--;
  });
  return n;
}

export function defaultLowercase(spec: string): boolean {
  return spec === 'reuters';
}

function stemOf(spec: string): string {
  if (isNamedCorpus(spec)) return spec;
  const base = basename(spec, extname(spec)).replace(/[^\w.-]+/g, '_');
  return base === '' ? 'corpus' : base;
}

/**
 * Loads the text and tokenizes it: with a new vocabulary built from it, or with `tokenizer` (a
 * checkpoint's), in which case a character or word it lacks is an error naming it.
 */
export function prepareCorpus(c: CorpusSettings, tok: TokenizerSettings | Tokenizer): PreparedCorpus {
  const charset = c.charset ?? DEFAULT_CHARSET;
  const lowercase = charset === 'letters' || (c.lowercase ?? defaultLowercase(c.spec));
  const { pieces } = openCorpus(c.spec, { lowercase, charset, maxBytes: c.maxMb === undefined ? undefined : c.maxMb * 1024 * 1024 });
  const source = isNamedCorpus(c.spec) ? c.spec : resolve(c.spec);
  let tokenizer: Tokenizer;
  let ids: TokenIds;
  if ('encode' in tok) {
    tokenizer = tok;
    try {
      ids = encodePieces(tokenizer, pieces);
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      throw new DataError(`${c.spec}: ${e.message}: this text does not match the checkpoint's vocabulary`);
    }
  } else {
    try {
      tokenizer = tok.level === 'char'
        ? CharTokenizer.fromPieces(pieces)
        : WordTokenizer.fromPieces(pieces, { maxVocab: tok.maxVocab, minCount: tok.minCount, unk: tok.unk });
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      throw new DataError(`${c.spec}: ${e.message}`);
    }
    ids = encodePieces(tokenizer, pieces);
  }
  const { train, val } = splitTrainVal(ids, VAL_FRACTION);
  const chars = tokenizer.level === 'char' ? ids.length : codePoints(pieces);
  return { source, stem: stemOf(c.spec), lowercase, charset, chars, tokenizer, ids, train, val };
}
