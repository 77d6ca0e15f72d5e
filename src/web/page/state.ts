/**
 * What the page's panels share: the worker's latest word on adapters, text and model, and the
 * one way to talk to it. The worker owns the engine; the page only sends requests and draws.
 */
import type { AdapterOption, DataInfo, Request, Status } from '../protocol.ts';

export const page: {
  adapters: AdapterOption[];
  gpuError?: string;
  dataInfo?: DataInfo;
  status?: Status;
} = { adapters: [] };

let worker: Worker | undefined;

export function connect(w: Worker): void {
  worker = w;
}

export function send(req: Request, transfer: Transferable[] = []): void {
  worker!.postMessage(req, transfer);
}
