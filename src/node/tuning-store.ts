/**
 * The kernel tuner's cache in Node: one JSON file, $XDG_CACHE_HOME/webgpu-rnn/tuning.json or
 * ~/.cache/webgpu-rnn/tuning.json, replaced atomically (a reader sees the old file or the new one).
 * A file that is not a cache (torn, hand-edited) is ignored with one note and rewritten by the
 * next save.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { emptyTuningCache, parseTuningCache, type TuningCache, type TuningStore } from '../gpu/tuner.ts';
import { writeFileAtomic } from './atomic-write.ts';

export function tuningCachePath(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.cache');
  return join(base, 'webgpu-rnn', 'tuning.json');
}

export function fileTuningStore(path: string): TuningStore {
  return {
    async load(note) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') note(`cannot read the kernel tuning cache ${path} (${(e as Error).message}); timing afresh`);
        return emptyTuningCache();
      }
      const cache = parseTuningCache(text);
      if (!cache) note(`ignoring the kernel tuning cache ${path}: it is not a valid cache (it will be rewritten)`);
      return cache ?? emptyTuningCache();
    },
    async save(cache: TuningCache) {
      await writeFileAtomic(path, `${JSON.stringify(cache, null, 1)}\n`);
    },
  };
}
