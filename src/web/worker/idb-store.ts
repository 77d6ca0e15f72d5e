/** The browser's copy of the last model (and the user's text), in IndexedDB. */
import type { ModelStore, StoredModel } from './model-files.ts';
import { emptyTuningCache, parseTuningCache, type TuningStore } from '../../gpu/tuner.ts';

const DB_NAME = 'webgpu-rnn';
const STORE = 'kv';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

export class IdbStore implements ModelStore {
  private db: Promise<IDBDatabase> | undefined;

  private open(): Promise<IDBDatabase> {
    if (typeof indexedDB === 'undefined') return Promise.reject(new Error('IndexedDB is not available'));
    this.db ??= new Promise((resolve, reject) => {
      const r = indexedDB.open(DB_NAME, 1);
      r.onupgradeneeded = () => r.result.createObjectStore(STORE);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error ?? new Error('cannot open IndexedDB'));
    });
    return this.db;
  }

  private async tx<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.open();
    const t = db.transaction(STORE, mode);
    const result = request(fn(t.objectStore(STORE)));
    await new Promise<void>((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error ?? new Error('IndexedDB transaction failed'));
      t.onabort = () => reject(t.error ?? new Error('IndexedDB transaction aborted'));
    });
    return result;
  }

  async saveModel(m: StoredModel): Promise<void> {
    await this.tx('readwrite', (s) => s.put(m, 'model'));
  }

  async loadModel(): Promise<StoredModel | undefined> {
    return (await this.tx('readonly', (s) => s.get('model'))) as StoredModel | undefined;
  }

  async forgetModel(): Promise<void> {
    await this.tx('readwrite', (s) => s.delete('model'));
  }

  /**
   * The kernel tuner's cache, under its own key: stored as JSON text and parsed on load like the
   * Node file, so a value from an older page version is ignored with a note, not trusted.
   */
  tuningStore(): TuningStore {
    return {
      load: async (note) => {
        let text: unknown;
        try {
          text = await this.tx('readonly', (s) => s.get('tuning'));
        } catch (e) {
          note(`cannot read the kernel tuning cache from IndexedDB (${(e as Error).message}); timing afresh`);
          return emptyTuningCache();
        }
        if (text === undefined) return emptyTuningCache();
        const cache = typeof text === 'string' ? parseTuningCache(text) : undefined;
        if (!cache) note('ignoring the kernel tuning cache in IndexedDB: it is not a valid cache (it will be rewritten)');
        return cache ?? emptyTuningCache();
      },
      save: async (cache) => {
        await this.tx('readwrite', (s) => s.put(JSON.stringify(cache), 'tuning'));
      },
    };
  }

  async saveText(name: string, bytes: ArrayBuffer): Promise<void> {
    await this.tx('readwrite', (s) => s.put({ name, bytes }, 'text'));
  }

  async loadText(name: string): Promise<ArrayBuffer | undefined> {
    const t = (await this.tx('readonly', (s) => s.get('text'))) as { name: string; bytes: ArrayBuffer } | undefined;
    return t?.name === name ? t.bytes : undefined;
  }
}
