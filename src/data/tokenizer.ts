/**
 * Character- and word-level tokenizers. Browser-safe. A tokenizer is saved with each checkpoint
 * (toJSON / tokenizerFromJSON), because the ids are meaningless without the exact vocabulary.
 */
import { DataError } from './text.ts';

export type TokenizerLevel = 'char' | 'word';

export type TokenizerJSON =
  | { level: 'char'; vocab: string[] }
  | { level: 'word'; vocab: string[]; unk: boolean };

/**
 * A text handed over in pieces that each end at a token boundary (see Utf8Pieces), so a corpus
 * larger than memory allows as one string is read piece by piece; each call reads it once more.
 */
export type TextPieces = (visit: (piece: string) => void) => void;

export const wholeText = (text: string): TextPieces => (visit) => visit(text);

/** A corpus's token ids in the narrowest array that holds the vocabulary: a byte per character at most 256 characters. */
export type TokenIds = Uint8Array | Uint16Array | Uint32Array;

export interface Tokenizer {
  readonly level: TokenizerLevel;
  /** id -> token. */
  readonly vocab: string[];
  encode(text: string): Uint32Array;
  /** How many tokens encode(text) returns, without encoding. */
  count(text: string): number;
  decode(ids: ArrayLike<number>): string;
  toJSON(): TokenizerJSON;
}

/** The word tokenizer's stand-in for anything outside its vocabulary; always id 0 when enabled. */
export const UNK = '<unk>';

/** The code point at UTF-16 index i: a pair's whole code point, or a lone surrogate as itself. */
function codePointAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
  }
  return c;
}

/** "'é' (U+00E9)", with invisible characters escaped, so an error message shows what to look for. */
function describeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  const shown = /[\p{L}\p{N}\p{P}\p{S}]/u.test(ch) ? ch : JSON.stringify(ch).slice(1, -1);
  return `'${shown}' (U+${cp.toString(16).toUpperCase().padStart(4, '0')})`;
}

function checkVocab(vocab: unknown): string[] {
  if (!Array.isArray(vocab) || vocab.length === 0 || !vocab.every((t) => typeof t === 'string')) {
    throw new DataError('tokenizer: vocab must be a non-empty array of strings');
  }
  if (new Set(vocab).size !== vocab.length) throw new DataError('tokenizer: vocab has duplicate entries');
  return vocab as string[];
}

function decodeWith(vocab: string[], ids: ArrayLike<number>): string {
  const parts = new Array<string>(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const token = vocab[ids[i]!];
    if (token === undefined) {
      throw new DataError(`token id ${ids[i]} is outside the vocabulary of ${vocab.length}`);
    }
    parts[i] = token;
  }
  return parts.join('');
}

export class CharTokenizer implements Tokenizer {
  readonly level = 'char' as const;
  readonly vocab: string[];
  private readonly ids: Map<string, number>;

  constructor(vocab: string[]) {
    this.vocab = checkVocab(vocab);
    for (const ch of this.vocab) {
      if (Array.from(ch).length !== 1) throw new DataError(`tokenizer: char vocab entry ${JSON.stringify(ch)} is not one character`);
    }
    this.ids = new Map(this.vocab.map((ch, i) => [ch, i]));
  }

  /**
   * Vocabulary over code points, not UTF-16 units: an emoji is one token the model can emit
   * whole, never a lone surrogate that would decode to garbage. Sorted by code point, so the
   * same text always gives the same ids.
   */
  static fromText(text: string): CharTokenizer {
    return CharTokenizer.fromPieces(wholeText(text));
  }

  static fromPieces(pieces: TextPieces): CharTokenizer {
    // A table for the Basic Multilingual Plane, a set beyond it: a Set of one-character strings
    // costs ~0.5 us a character, minutes for a corpus of hundreds of MB.
    const bmp = new Uint8Array(0x10000);
    const astral = new Set<number>();
    pieces((text) => {
      for (let i = 0; i < text.length; i++) {
        const cp = codePointAt(text, i);
        if (cp > 0xffff) {
          astral.add(cp);
          i++;
        } else bmp[cp] = 1;
      }
    });
    const cps: number[] = [];
    for (let c = 0; c < 0x10000; c++) if (bmp[c]) cps.push(c);
    cps.push(...[...astral].sort((a, b) => a - b));
    if (cps.length === 0) throw new DataError('cannot build a vocabulary from empty text');
    return new CharTokenizer(cps.map((c) => String.fromCodePoint(c)));
  }

  private idOf(cp: number): number | undefined {
    return this.ids.get(String.fromCodePoint(cp));
  }

  encode(text: string): Uint32Array {
    // text.length (UTF-16 units) bounds the number of code points from above.
    const out = new Uint32Array(text.length);
    const table = this.bmpIds();
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const cp = codePointAt(text, i);
      const id = cp > 0xffff ? this.idOf(cp) : table[cp]! >= 0 ? table[cp] : undefined;
      // A character-level model has no <unk>: an unseen character has no row in the embedding,
      // so the honest answer is to say which one it is.
      if (id === undefined) throw new DataError(`character ${describeChar(String.fromCodePoint(cp))} is not in the vocabulary`);
      if (cp > 0xffff) i++;
      out[n++] = id;
    }
    return n === out.length ? out : out.slice(0, n);
  }

  count(text: string): number {
    let n = text.length;
    for (let i = 0; i < text.length; i++) if (codePointAt(text, i) > 0xffff) n--, i++;
    return n;
  }

  private bmpTable?: Int32Array;

  /** Id of every BMP code point, -1 for none: a Map lookup per character is the slow part of encoding. */
  private bmpIds(): Int32Array {
    if (this.bmpTable === undefined) {
      this.bmpTable = new Int32Array(0x10000).fill(-1);
      this.vocab.forEach((ch, id) => {
        const cp = ch.codePointAt(0)!;
        if (cp <= 0xffff && ch.length === 1) this.bmpTable![cp] = id;
      });
    }
    return this.bmpTable;
  }

  decode(ids: ArrayLike<number>): string {
    return decodeWith(this.vocab, ids);
  }

  toJSON(): TokenizerJSON {
    return { level: 'char', vocab: [...this.vocab] };
  }
}

/**
 * A word (letters, digits and combining marks of any script, with internal apostrophes, so
 * "don't" and "l’homme" stay whole), or else any single code point: a space, a newline or a
 * punctuation mark. Every character of the text lands in exactly one token, which is what makes
 * decode(encode(s)) === s, and keeping spaces as tokens lets sampled text lay itself out.
 */
const WORD_TOKEN = /[\p{L}\p{N}\p{M}]+(?:['’][\p{L}\p{N}\p{M}]+)*|[^]/gu;

/** Splits text into word-level tokens; concatenating them gives the text back. */
export function wordTokens(text: string): string[] {
  return text.match(WORD_TOKEN) ?? [];
}

export interface WordTokenizerOptions {
  /** Largest vocabulary, `<unk>` included (the size of the model's softmax). Default 10000. */
  maxVocab?: number;
  /** Tokens seen fewer times than this become `<unk>`. Default 1. */
  minCount?: number;
  /**
   * With false there is no `<unk>`: every distinct token must fit in maxVocab, or building the
   * vocabulary fails, and encoding an unseen token later throws. Default true.
   */
  unk?: boolean;
}

export class WordTokenizer implements Tokenizer {
  readonly level = 'word' as const;
  readonly vocab: string[];
  readonly unk: boolean;
  private readonly ids: Map<string, number>;

  constructor(vocab: string[], unk: boolean) {
    this.vocab = checkVocab(vocab);
    this.unk = unk;
    if (unk && this.vocab[0] !== UNK) throw new DataError(`tokenizer: word vocab must start with ${UNK}`);
    this.ids = new Map(this.vocab.map((t, i) => [t, i]));
  }

  static fromText(text: string, opts: WordTokenizerOptions = {}): WordTokenizer {
    return WordTokenizer.fromPieces(wholeText(text), opts);
  }

  static fromPieces(pieces: TextPieces, opts: WordTokenizerOptions = {}): WordTokenizer {
    const maxVocab = opts.maxVocab ?? 10000;
    const minCount = opts.minCount ?? 1;
    const unk = opts.unk ?? true;
    if (!Number.isInteger(maxVocab) || maxVocab < 2) throw new DataError(`--max-vocab must be an integer >= 2, got ${maxVocab}`);
    if (!Number.isInteger(minCount) || minCount < 1) throw new DataError(`--min-count must be an integer >= 1, got ${minCount}`);

    const counts = new Map<string, number>();
    pieces((text) => {
      for (const t of wordTokens(text)) counts.set(t, (counts.get(t) ?? 0) + 1);
    });
    if (counts.size === 0) throw new DataError('cannot build a vocabulary from empty text');

    // Most frequent first, so that a cap keeps the tokens that cover the most text; ties by
    // string so the same text always gives the same ids.
    const ranked = [...counts]
      .filter(([, c]) => c >= minCount)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([t]) => t);

    if (!unk) {
      if (counts.size > maxVocab) {
        throw new DataError(
          `the text has ${counts.size} distinct word-level tokens but --max-vocab is ${maxVocab}; ` +
            `raise --max-vocab to at least ${counts.size}, or allow <unk>`,
        );
      }
      if (ranked.length < counts.size) {
        throw new DataError(
          `${counts.size - ranked.length} distinct tokens occur fewer than --min-count ${minCount} times ` +
            `and there is no <unk> to map them to; lower --min-count to 1, or allow <unk>`,
        );
      }
      return new WordTokenizer(ranked, false);
    }
    return new WordTokenizer([UNK, ...ranked.slice(0, maxVocab - 1)], true);
  }

  encode(text: string): Uint32Array {
    const tokens = wordTokens(text);
    const out = new Uint32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const id = this.ids.get(tokens[i]!);
      if (id !== undefined) out[i] = id;
      else if (this.unk) out[i] = 0;
      else {
        const t = tokens[i]!;
        const what = Array.from(t).length === 1 ? `character ${describeChar(t)}` : `word ${JSON.stringify(t)}`;
        throw new DataError(`${what} is not in the vocabulary (and this tokenizer has no <unk>)`);
      }
    }
    return out;
  }

  count(text: string): number {
    let n = 0;
    const re = new RegExp(WORD_TOKEN);
    while (re.exec(text) !== null) n++;
    return n;
  }

  decode(ids: ArrayLike<number>): string {
    return decodeWith(this.vocab, ids);
  }

  toJSON(): TokenizerJSON {
    return { level: 'word', vocab: [...this.vocab], unk: this.unk };
  }
}

/**
 * Encodes a text given in pieces into the narrowest array for the vocabulary, counting first so
 * that the only large allocation is the result itself.
 */
export function encodePieces(tokenizer: Tokenizer, pieces: TextPieces): TokenIds {
  let total = 0;
  pieces((text) => {
    total += tokenizer.count(text);
  });
  const V = tokenizer.vocab.length;
  const out = V <= 0x100 ? new Uint8Array(total) : V <= 0x10000 ? new Uint16Array(total) : new Uint32Array(total);
  let n = 0;
  pieces((text) => {
    const ids = tokenizer.encode(text);
    if (n + ids.length > total) throw new DataError('the text changed while it was being read: try again when nothing writes to it');
    out.set(ids, n);
    n += ids.length;
  });
  if (n !== total) throw new DataError('the text changed while it was being read: try again when nothing writes to it');
  return out;
}

/** A newline when the vocabulary has one (generation then starts a fresh line), else its first token. */
export function defaultPrime(tokenizer: Tokenizer): string {
  return tokenizer.vocab.includes('\n') ? '\n' : tokenizer.vocab.find((t) => t !== UNK) ?? tokenizer.vocab[0];
}

/** Rebuilds a tokenizer saved in a checkpoint; a damaged or foreign file gets a clear error. */
export function tokenizerFromJSON(json: unknown): Tokenizer {
  const j = json as Partial<{ level: unknown; vocab: unknown; unk: unknown }> | null;
  if (j === null || typeof j !== 'object') throw new DataError('tokenizer: expected an object');
  if (j.level === 'char') return new CharTokenizer(checkVocab(j.vocab));
  if (j.level === 'word') {
    if (typeof j.unk !== 'boolean') throw new DataError('tokenizer: word level needs a boolean "unk"');
    return new WordTokenizer(checkVocab(j.vocab), j.unk);
  }
  throw new DataError(`tokenizer: unknown level ${JSON.stringify(j.level)} (expected "char" or "word")`);
}
