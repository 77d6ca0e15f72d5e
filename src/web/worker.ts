/**
 * The engine's home in the browser: a dedicated worker (WebGPU works there) that owns the
 * Backend and the Trainer, so the page stays responsive while a large model trains.
 */
import { BrowserGpu } from './worker/browser-gpu.ts';
import type { Reply, Request } from './protocol.ts';
import { IdbStore } from './worker/idb-store.ts';
import { Session } from './worker/session.ts';
import type { BuiltinCorpus } from './worker/text.ts';

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
}

const scope = self as unknown as WorkerScope;
let session: Session | undefined;

scope.onmessage = (e: MessageEvent<Request | { type: 'boot'; builtins: BuiltinCorpus[]; timing?: Record<string, number> }>) => {
  const msg = e.data;
  if (msg.type === 'boot') {
    const store = new IdbStore();
    session = new Session({
      post: (reply: Reply, transfer?: Transferable[]) => scope.postMessage(reply, transfer ?? []),
      gpu: new BrowserGpu(),
      store,
      tuning: store.tuningStore(),
      builtins: msg.builtins,
      fetchText: async (url) => {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return res.arrayBuffer();
      },
      timing: msg.timing,
    });
    return;
  }
  void session?.handle(msg);
};
