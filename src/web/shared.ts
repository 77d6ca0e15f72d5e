/** Small helpers both the page and the worker use (kept apart so the page does not bundle the engine). */
import type { ModelConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';
import type { AdapterOption } from './protocol.ts';

/** Trainable numbers in the model (the flat layout's alignment padding not counted). */
export function parameterCount(model: ModelConfig): number {
  return paramLayout(model).slots.reduce((a, s) => a + s.size, 0);
}

export function adapterTitle(a: AdapterOption): string {
  const name = a.name || (a.glRenderer ? `unnamed adapter (WebGL renderer: ${a.glRenderer})` : 'unnamed adapter');
  return `${name} via ${a.label}`;
}
