/**
 * Samples: prime text, temperature, length, top-k, top-p, the repetition penalty and how many side
 * by side; automatic samples while training, and one on request.
 */
import { describeSamplingControls, samplingControlsError, type SamplingControls } from '../../model/backend.ts';
import type { Reply, SamplingSettings } from '../protocol.ts';
import { clearError, showError } from './banner.ts';
import { $, el, fmtInt, fmtTemperature } from './dom.ts';
import { send } from './state.ts';

/** Seconds between automatic samples while training. */
const AUTO_SAMPLE_EVERY_S = 5;

const ui = {
  prime: $<HTMLInputElement>('prime'), temperature: $<HTMLInputElement>('temperature'), tempOut: $('temp-out'),
  sampleLength: $<HTMLInputElement>('sample-length'), autoSample: $<HTMLInputElement>('auto-sample'),
  sampleBtn: $<HTMLButtonElement>('sample'), sampleOut: $('sample-out'), sampleMeta: $('sample-meta'),
  topK: $<HTMLInputElement>('top-k'), topP: $<HTMLInputElement>('top-p'), penalty: $<HTMLInputElement>('rep-penalty'),
  window: $<HTMLInputElement>('rep-window'), count: $<HTMLInputElement>('num-samples'),
};

/** The controls the inputs ask for (an empty field is the default); a value out of range is the user's to fix. */
function controlsOf(): SamplingControls {
  const num = (input: HTMLInputElement, fallback: number) => (input.value.trim() === '' ? fallback : Number(input.value));
  return {
    topK: num(ui.topK, 0), topP: num(ui.topP, 1), repetitionPenalty: num(ui.penalty, 1), repetitionWindow: num(ui.window, 0),
  };
}

/** The worker samples with the settings it was last sent; they act at once, even mid-training. */
export function sendSampling(): void {
  const controls = controlsOf();
  const settings: SamplingSettings = {
    prime: ui.prime.value,
    temperature: Number(ui.temperature.value),
    length: Math.max(1, Math.min(2000, Math.round(Number(ui.sampleLength.value)) || 300)),
    every: ui.autoSample.checked ? AUTO_SAMPLE_EVERY_S : 0,
    controls,
    count: Math.max(1, Math.min(8, Math.round(Number(ui.count.value)) || 1)),
  };
  ui.tempOut.textContent = fmtTemperature(settings.temperature);
  const bad = samplingControlsError(controls);
  // The worker keeps the last good settings until these are fixed.
  if (bad) return showError('sample', bad);
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
  const texts = [s.text, ...(s.more ?? [])];
  ui.sampleOut.replaceChildren(...texts.flatMap((text, i) => [
    ...(texts.length > 1 ? [el('span', `${i ? '\n\n' : ''}sample ${i + 1} of ${texts.length}\n`, 'sample-head')] : []),
    ...(s.prime ? [el('span', s.prime, 'prime')] : []),
    document.createTextNode(text),
  ]));
  ui.sampleMeta.textContent = `iteration ${fmtInt(s.iteration)} · temperature ${fmtTemperature(s.temperature)}${describeSamplingControls(s.controls).replaceAll(', ', ' · ')}`;
}

export function initSamplesPanel(): void {
  for (const input of [ui.prime, ui.temperature, ui.sampleLength, ui.autoSample, ui.topK, ui.topP, ui.penalty, ui.window, ui.count]) {
    input.addEventListener('input', sendSampling);
  }
  ui.autoSample.addEventListener('change', sendSampling);
  ui.sampleBtn.addEventListener('click', () => {
    clearError('sample');
    send({ type: 'sample' });
  });
}
