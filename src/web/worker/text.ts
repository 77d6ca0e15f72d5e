/**
 * The text a model trains on, in the worker: an embedded corpus (fetched) or the user's file,
 * decoded as strict UTF-8, tokenized, and split into training and held-out parts as the CLI does.
 */
import { splitTrainVal } from '../../data/split.ts';
import { decodeUtf8, lettersOnly, type Charset } from '../../data/text.ts';
import { CharTokenizer, WordTokenizer, type Tokenizer } from '../../data/tokenizer.ts';
import type { DataInfo, DataOptions, DataSource } from '../protocol.ts';
import { UserError } from './errors.ts';

/** The CLI's held-out fraction, so a checkpoint's validation loss means the same on both. */
export const VAL_FRACTION = 0.05;
const PREVIEW_CHARS = 600;
/** Larger user files would make the tab's memory the problem before the model is. */
export const MAX_TEXT_BYTES = 256 * 2 ** 20;

export interface BuiltinCorpus {
  id: string;
  checkpointName: string;
  url: string;
  /** The text as it comes, for the `raw` charset, where it differs from the cleaned one at `url`. */
  rawUrl?: string;
}

/** Where embedded corpora come from (fetch in the browser, memory in tests). */
export interface TextSources {
  builtins: BuiltinCorpus[];
  fetchText: (url: string) => Promise<ArrayBuffer>;
}

export interface Text {
  /** 'builtin:<id>' or 'file'. */
  source: string;
  /** Shown on the page. */
  name: string;
  /** progress.corpus in checkpoints. */
  corpus: string;
  /** Decoded, newline-normalised, not lowercased. */
  raw: string;
  /** An embedded corpus as it comes, without the CLI's cleaning (the `raw` charset). */
  uncleaned?: boolean;
  /** The user's file, kept so the text can be stored with the model. */
  fileBytes?: ArrayBuffer;
}

export interface PreparedData {
  text: Text;
  options: DataOptions;
  tokenizer: Tokenizer;
  ids: Uint32Array;
}

/** Whether `text` is the variant of its source that `charset` reads (an embedded corpus comes cleaned or as it comes). */
export function textFits(text: Text, charset: Charset): boolean {
  return !text.source.startsWith('builtin:') || Boolean(text.uncleaned) === (charset === 'raw');
}

export async function readSource(sources: TextSources, source: DataSource, charset: Charset = 'clean'): Promise<Text> {
  if (source.kind === 'builtin') {
    const b = sources.builtins.find((c) => c.id === source.id);
    if (!b) throw new UserError('data', `no embedded corpus called ${source.id}`);
    const uncleaned = charset === 'raw';
    let bytes: ArrayBuffer;
    try {
      bytes = await sources.fetchText(uncleaned && b.rawUrl ? b.rawUrl : source.url || b.url);
    } catch (e) {
      throw new UserError('data', `could not fetch the ${b.id} text (${(e as Error).message})`);
    }
    return { source: `builtin:${b.id}`, name: b.id, corpus: b.checkpointName, raw: decodeUtf8(new Uint8Array(bytes), b.id), uncleaned };
  }
  if (source.bytes.byteLength > MAX_TEXT_BYTES) {
    throw new UserError('data', `${source.name}: is ${Math.round(source.bytes.byteLength / 2 ** 20)} MiB; the page takes text files up to ${MAX_TEXT_BYTES / 2 ** 20} MiB`);
  }
  return { source: 'file', name: source.name, corpus: source.name, raw: decodeUtf8(new Uint8Array(source.bytes), source.name), fileBytes: source.bytes };
}

/** Tokenizes the text with a new vocabulary, or with a model's own (which throws on a token it lacks). */
export function prepareText(text: Text, given: DataOptions, tokenizer?: Tokenizer): PreparedData {
  // Letters are lowercase by definition, whatever the checkbox said.
  const options = given.charset === 'letters' ? { ...given, lowercase: true } : given;
  const body = options.charset === 'letters' ? lettersOnly(text.raw) : options.lowercase ? text.raw.toLowerCase() : text.raw;
  const tok = tokenizer ?? (options.level === 'word'
    ? WordTokenizer.fromText(body, { maxVocab: options.maxVocab })
    : CharTokenizer.fromText(body));
  return { text, options, tokenizer: tok, ids: tok.encode(body) };
}

export function trainValOf(d: PreparedData): { train: Uint32Array; val: Uint32Array } {
  return splitTrainVal(d.ids, VAL_FRACTION);
}

export function dataInfo(d: PreparedData): DataInfo {
  const { train, val } = trainValOf(d);
  return {
    source: d.text.source, name: d.text.name, chars: countChars(d.text.raw), tokens: d.ids.length,
    vocabSize: d.tokenizer.vocab.length, trainTokens: train.length, valTokens: val.length,
    options: d.options, preview: (d.options.charset === 'letters' ? lettersOnly(d.text.raw.slice(0, PREVIEW_CHARS)) : d.text.raw.slice(0, PREVIEW_CHARS)),
  };
}

/** Code points, as the CLI counts characters (a surrogate pair is one). */
function countChars(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

/**
 * The text a checkpoint was trained on, if it is here: an embedded corpus, the current text, the
 * file stored with the model, or else the current text if the model's vocabulary covers it.
 */
export async function findText(
  sources: TextSources, current: PreparedData | undefined, loadStoredText: (name: string) => Promise<ArrayBuffer | undefined>,
  corpus: string, lowercase: boolean, charset: Charset, tokenizer: Tokenizer,
): Promise<{ data?: PreparedData; note?: string }> {
  const options: DataOptions = { level: tokenizer.level, charset, lowercase, maxVocab: tokenizer.vocab.length };
  const here = current && textFits(current.text, charset) ? current.text : undefined;
  const attempts: (() => Promise<Text | undefined>)[] = [
    async () => {
      const b = sources.builtins.find((c) => c.checkpointName === corpus);
      return b ? readSource(sources, { kind: 'builtin', id: b.id, url: b.url }, charset) : undefined;
    },
    async () => (here?.corpus === corpus ? here : undefined),
    async () => {
      const bytes = await loadStoredText(corpus).catch(() => undefined);
      return bytes ? readSource(sources, { kind: 'file', name: corpus, bytes }) : undefined;
    },
    async () => here,
  ];
  for (const attempt of attempts) {
    let text: Text | undefined;
    try {
      text = await attempt();
    } catch {
      text = undefined;
    }
    if (!text) continue;
    try {
      return { data: prepareText(text, options, tokenizer) };
    } catch {
      // A character outside the model's vocabulary: try the next candidate.
    }
  }
  return { note: `its text (${corpus}) is not here and the current text has characters outside its vocabulary, so it can sample but not train` };
}
