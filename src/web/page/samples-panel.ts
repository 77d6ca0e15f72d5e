/** Samples: prime text, temperature and length, automatic samples while training, and one on request. */
import type { Reply, SamplingSettings } from '../protocol.ts';
import { clearError } from './banner.ts';
import { $, el, fmtInt, fmtTemperature } from './dom.ts';
import { send } from './state.ts';

/** Seconds between automatic samples while training. */
const AUTO_SAMPLE_EVERY_S = 5;

const ui = {
  prime: $<HTMLInputElement>('prime'), temperature: $<HTMLInputElement>('temperature'), tempOut: $('temp-out'),
  sampleLength: $<HTMLInputElement>('sample-length'), autoSample: $<HTMLInputElement>('auto-sample'),
  sampleBtn: $<HTMLButtonElement>('sample'), sampleOut: $('sample-out'), sampleMeta: $('sample-meta'),
};

/** The worker samples with the settings it was last sent; they act at once, even mid-training. */
export function sendSampling(): void {
  const settings: SamplingSettings = {
    prime: ui.prime.value,
    temperature: Number(ui.temperature.value),
    length: Math.max(1, Math.min(2000, Math.round(Number(ui.sampleLength.value)) || 300)),
    every: ui.autoSample.checked ? AUTO_SAMPLE_EVERY_S : 0,
  };
  ui.tempOut.textContent = fmtTemperature(settings.temperature);
  clearError('sample');
  send({ type: 'sampling', settings });
}

/** Tokens per sample: words are longer than characters. */
export function setSampleLength(tokens: number): void {
  ui.sampleLength.value = String(tokens);
  sendSampling();
}

export function enableSampling(enabled: boolean): void {
  ui.sampleBtn.disabled = !enabled;
}

export function renderSample(s: Extract<Reply, { type: 'sample' }>): void {
  const prime = el('span', s.prime, 'prime');
  ui.sampleOut.replaceChildren(...(s.prime ? [prime] : []), document.createTextNode(s.text));
  ui.sampleMeta.textContent = `iteration ${fmtInt(s.iteration)} · temperature ${fmtTemperature(s.temperature)}`;
}

export function initSamplesPanel(): void {
  for (const input of [ui.prime, ui.temperature, ui.sampleLength, ui.autoSample]) input.addEventListener('input', sendSampling);
  ui.autoSample.addEventListener('change', sendSampling);
  ui.sampleBtn.addEventListener('click', () => {
    clearError('sample');
    send({ type: 'sample' });
  });
}
