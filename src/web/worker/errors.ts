/**
 * How the worker's failures reach the page: one line, in the page's words (the engine's messages
 * name CLI flags), under the panel the failure belongs to.
 */
import { CheckpointError } from '../../checkpoint/safetensors.ts';
import { DataError } from '../../data/text.ts';
import { DivergedError } from '../../engine/trainer.ts';
import { DeviceLostError } from '../../gpu/backend.ts';
import { DeviceLimitError } from '../../gpu/memory.ts';
import type { ErrorArea, Reply, Request } from '../protocol.ts';

/** A failure already worded for the page, with the panel it belongs to. */
export class UserError extends Error {
  constructor(readonly area: ErrorArea, message: string) {
    super(message);
  }
}

/** The engine's messages name CLI flags; on the page the same settings are form fields. */
export function pageWording(message: string): string {
  return message
    .replace(/--lr\b/g, 'the learning rate')
    .replace(/--clip\b/g, 'the gradient clip')
    .replace(/--batch-size\b/g, 'the batch size')
    .replace(/--seq-length\b/g, 'the sequence length')
    .replace(/--max-vocab\b/g, 'the maximum vocabulary')
    .replace(/--min-count\b/g, 'the minimum count')
    .replace(/\s*\(run npm install\)/g, '');
}

/** Where a failed request's error is shown, unless the error itself says. */
export function areaOf(req: Request): ErrorArea {
  switch (req.type) {
    case 'data': return 'data';
    case 'build': return 'model';
    case 'place': return 'gpu';
    case 'sample': return 'sample';
    case 'save': case 'load': case 'restore': case 'forget': return 'file';
    case 'bench': return 'bench';
    case 'init': case 'lose-device': return 'gpu';
    default: return 'train';
  }
}

/** The error message for the page: ours as written, anything else (a bug) with its name. */
export function errorReply(e: unknown, area: ErrorArea): Extract<Reply, { type: 'error' }> {
  const err = e as Error;
  let a = area;
  if (e instanceof UserError) a = e.area;
  else if (e instanceof DeviceLimitError) a = 'model';
  else if (e instanceof CheckpointError) a = 'file';
  const known = e instanceof UserError || e instanceof DataError || e instanceof DeviceLimitError ||
    e instanceof CheckpointError || e instanceof DivergedError || e instanceof DeviceLostError;
  const message = known ? err.message : `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`;
  return { type: 'error', area: a, message: pageWording(message.split('\n')[0]!) };
}
