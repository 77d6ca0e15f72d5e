/** Numbers, sizes and durations the way the CLI prints them. */
import type { TokenizerLevel } from '../data/tokenizer.ts';
import { bits } from '../engine/trainer.ts';

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** "12.3k" style, for rates that change every refresh. */
export function compact(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return `${Math.round(n)}`;
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export const unitOf = (level: TokenizerLevel): string => (level === 'word' ? 'word' : 'char');

/** "1.523 nats (2.197 bits/char)". */
export function loss(nats: number, level: TokenizerLevel): string {
  if (!Number.isFinite(nats)) return 'n/a';
  return `${nats.toFixed(3)} nats (${bits(nats).toFixed(3)} bits/${unitOf(level)})`;
}

/** "1.523 (2.197 b/c)", for the progress bar where space is short. */
export function lossShort(nats: number, level: TokenizerLevel): string {
  if (!Number.isFinite(nats)) return '-';
  return `${nats.toFixed(3)} (${bits(nats).toFixed(2)} b/${level === 'word' ? 'w' : 'c'})`;
}
