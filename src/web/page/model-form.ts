/**
 * The model form: cell, depth, sizes and optimizer. It says, before anything is allocated, what
 * will not fit on the chosen adapter, and whether the form still matches the model built from it.
 */
import { bindsInWindows, checkFits, DeviceLimitError, formatBytes, trainingBuffers } from '../../gpu/memory.ts';
import type { CellType } from '../../model/cells.ts';
import { parameterCount } from '../../model/layout.ts';
import { optimizerProblem, type LrSchedule, type OptimizerName } from '../../model/optimizer.ts';
import type { ModelForm } from '../protocol.ts';
import { configsFromForm, optimizerFormFields } from '../shared.ts';
import { backendChoice, selectedAdapter } from './backend-panel.ts';
import { clearError, errorText, showError } from './banner.ts';
import { corpusNameOf } from './data-panel.ts';
import { $, fmtParams, option } from './dom.ts';
import { refreshButtons } from './run-panel.ts';
import { page } from './state.ts';

const CELLS: { value: CellType; label: string }[] = [
  { value: 'rnn', label: 'RNN (tanh)' },
  { value: 'lstm', label: 'LSTM' },
  { value: 'gru', label: 'GRU' },
];
const LAYER_COUNTS = [1, 2, 3, 4];
const HIDDEN_SIZES = [64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096];
const DEFAULT_HIDDEN = 512;
/** The largest hidden size the page offers (HIDDEN_SIZES). */
const MAX_HIDDEN = 4096;

const ui = {
  cell: $<HTMLSelectElement>('cell'), layers: $<HTMLSelectElement>('layers'), dropout: $<HTMLInputElement>('dropout'), hidden: $<HTMLSelectElement>('hidden'),
  seq: $<HTMLInputElement>('seq'), batch: $<HTMLInputElement>('batch'), optimizer: $<HTMLSelectElement>('optimizer'), lr: $<HTMLInputElement>('lr'),
  clip: $<HTMLInputElement>('clip'), stateReset: $<HTMLInputElement>('state-reset'), seed: $<HTMLInputElement>('seed'),
  momentum: $<HTMLInputElement>('momentum'), nesterov: $<HTMLInputElement>('nesterov'), rmsDecay: $<HTMLInputElement>('rms-decay'),
  lrSchedule: $<HTMLSelectElement>('lr-schedule'), lrDecay: $<HTMLInputElement>('lr-decay'), lrDecayEvery: $<HTMLInputElement>('lr-decay-every'),
  lrDecayAfter: $<HTMLInputElement>('lr-decay-after'), lrMin: $<HTMLInputElement>('lr-min'), lrIterations: $<HTMLInputElement>('lr-iterations'),
  fit: $('fit'), dirty: $('dirty'),
};

/** Each optimizer's and schedule's own inputs, shown only with it (their labels carry data-for). */
function showApplicable(): void {
  const on = new Set([ui.optimizer.value, `schedule-${ui.lrSchedule.value}`]);
  for (const el of document.querySelectorAll<HTMLElement>('[data-for]')) el.hidden = !on.has(el.dataset.for!);
}

export function readForm(): ModelForm {
  const base: ModelForm = {
    cell: ui.cell.value as CellType,
    layers: Number(ui.layers.value),
    dropout: Number(ui.dropout.value),
    hiddenSize: Number(ui.hidden.value),
    seqLength: Number(ui.seq.value),
    batchSize: Number(ui.batch.value),
    optimizer: ui.optimizer.value as OptimizerName,
    learningRate: Number(ui.lr.value),
    clip: Number(ui.clip.value),
    stateReset: Number(ui.stateReset.value),
    seed: Number(ui.seed.value),
  };
  const all: ModelForm = {
    ...base, momentum: Number(ui.momentum.value), nesterov: ui.nesterov.checked, rmsDecay: Number(ui.rmsDecay.value),
    lrSchedule: ui.lrSchedule.value as LrSchedule['kind'], lrDecay: Number(ui.lrDecay.value), lrDecayEvery: Number(ui.lrDecayEvery.value),
    lrDecayAfter: Number(ui.lrDecayAfter.value), lrMin: Number(ui.lrMin.value), lrIterations: Number(ui.lrIterations.value),
  };
  // Only the fields of the chosen optimizer and schedule, as a model's summary has them.
  return { ...base, ...optimizerFormFields(configsFromForm(all, 1).train) };
}

/** Shows a model's settings (a loaded checkpoint's may be sizes the list does not offer). */
export function writeForm(f: ModelForm): void {
  ui.cell.value = f.cell;
  ui.layers.value = String(f.layers ?? 1);
  ui.dropout.value = String(f.dropout ?? 0);
  if (![...ui.hidden.options].some((o) => o.value === String(f.hiddenSize))) ui.hidden.append(option(String(f.hiddenSize)));
  ui.hidden.value = String(f.hiddenSize);
  ui.seq.value = String(f.seqLength);
  ui.batch.value = String(f.batchSize);
  ui.optimizer.value = f.optimizer;
  ui.lr.value = String(f.learningRate);
  const set = (input: HTMLInputElement, v: number | undefined) => {
    if (v !== undefined) input.value = String(v);
  };
  set(ui.momentum, f.momentum);
  if (f.nesterov !== undefined) ui.nesterov.checked = f.nesterov;
  set(ui.rmsDecay, f.rmsDecay);
  ui.lrSchedule.value = f.lrSchedule ?? 'none';
  set(ui.lrDecay, f.lrDecay);
  set(ui.lrDecayEvery, f.lrDecayEvery);
  set(ui.lrDecayAfter, f.lrDecayAfter);
  set(ui.lrMin, f.lrMin);
  set(ui.lrIterations, f.lrIterations);
  showApplicable();
  ui.clip.value = String(f.clip);
  ui.stateReset.value = String(f.stateReset ?? 0);
  ui.seed.value = String(f.seed);
}

const gpuLimits = () => (backendChoice() === 'gpu' ? selectedAdapter()?.limits as unknown as GPUSupportedLimits | undefined : undefined);

/** What does not fit, in a sentence; undefined when it all fits. Checked before anything is allocated. */
function fitProblem(f: ModelForm, limits: GPUSupportedLimits | undefined, vocabSize: number): string | undefined {
  if (!Number.isInteger(f.seqLength) || f.seqLength < 1) return 'the sequence length must be a whole number of at least 1';
  if (!Number.isInteger(f.batchSize) || f.batchSize < 1) return 'the batch size must be a whole number of at least 1';
  if (!(f.learningRate > 0)) return 'the learning rate must be above 0';
  if (!(f.clip > 0)) return 'the gradient clip must be above 0';
  if (!Number.isInteger(f.stateReset ?? 0) || (f.stateReset ?? 0) < 0) return 'the state reset must be a whole number of iterations, 0 for never';
  if (!((f.dropout ?? 0) >= 0 && (f.dropout ?? 0) < 1)) return 'the dropout must be from 0 up to (not including) 1';
  const optimizer = optimizerProblem(configsFromForm(f, vocabSize || 1).train);
  if (optimizer) return `bad optimizer settings: ${optimizer}`;
  if (f.hiddenSize > MAX_HIDDEN) return `hidden sizes above ${MAX_HIDDEN} are not supported here`;
  if (!limits) return undefined;
  const { model, train } = configsFromForm(f, vocabSize);
  try {
    checkFits(model, train, limits);
  } catch (e) {
    if (e instanceof DeviceLimitError) return e.message;
    throw e;
  }
  return undefined;
}

/** A text is chosen and the form's model fits the chosen backend. */
export function formFits(): boolean {
  return page.dataInfo ? !fitProblem(readForm(), gpuLimits(), page.dataInfo.vocabSize) : false;
}

export function refreshFit(): void {
  const f = readForm();
  const V = page.dataInfo?.vocabSize;
  const gpu = backendChoice() === 'gpu' ? selectedAdapter() : undefined;
  const limits = gpuLimits();
  // Hidden sizes that cannot fit on this adapter are marked in the list itself.
  for (const o of ui.hidden.options) {
    const h = Number(o.value);
    const problem = V ? fitProblem({ ...f, hiddenSize: h }, limits, V) : undefined;
    o.textContent = problem && h !== f.hiddenSize ? `${h} (too large here)` : String(h);
  }
  if (!V) {
    ui.fit.textContent = '';
    return;
  }
  const problem = fitProblem(f, limits, V);
  if (problem) {
    ui.fit.textContent = '';
    showError('model', `Does not fit: ${problem}.`);
  } else {
    if (errorText('model').startsWith('Does not fit')) clearError('model');
    const { model, train } = configsFromForm(f, V);
    const plans = trainingBuffers(model, train, limits);
    const total = plans.reduce((a, p) => a + p.bytes, 0);
    const largest = plans.reduce((a, p) => (p.bytes > a.bytes ? p : a));
    const params = parameterCount(model);
    const binding = gpu && formatBytes(Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize));
    // Parameters past one binding are bound in windows (src/gpu/plan.ts: the split plan).
    const bound = limits && bindsInWindows(model, train, limits)
      ? `, bound in windows of at most the ${binding} this adapter allows per binding (slower than one binding)`
      : ` of the ${binding} this adapter allows`;
    ui.fit.textContent = gpu
      ? `${fmtParams(params)} parameters · ${formatBytes(total)} of GPU memory; largest buffer (${largest.name}) ${formatBytes(largest.bytes)}${bound}.`
      : `${fmtParams(params)} parameters · the CPU reference runs on one thread: fine for small models, slow beyond hidden 256.`;
  }
  refreshDirty();
  refreshButtons();
}

/** The form or the text no longer match the model: Reset would build a different one. */
export function refreshDirty(): void {
  const m = page.status?.model;
  const d = page.dataInfo;
  if (!m || !d) {
    ui.dirty.hidden = true;
    return;
  }
  const f = readForm();
  const formChanged = (Object.keys(f) as (keyof ModelForm)[]).some((k) => f[k] !== m[k]);
  const textChanged = d.options.level !== m.level || d.options.charset !== m.charset || d.options.lowercase !== m.lowercase || corpusNameOf(d) !== m.corpus || d.vocabSize !== m.vocabSize;
  ui.dirty.hidden = !(formChanged || textChanged);
}

export function initModelForm(): void {
  ui.cell.append(...CELLS.map((c) => option(c.value, c.label)));
  ui.cell.value = 'rnn';
  ui.layers.append(...LAYER_COUNTS.map((n) => option(String(n))));
  ui.layers.value = '1';
  ui.hidden.append(...HIDDEN_SIZES.map((h) => option(String(h))));
  ui.hidden.value = String(DEFAULT_HIDDEN);
  showApplicable();
  for (const input of [ui.optimizer, ui.lrSchedule]) input.addEventListener('change', showApplicable);
  for (const input of [
    ui.cell, ui.layers, ui.dropout, ui.hidden, ui.seq, ui.batch, ui.optimizer, ui.lr, ui.clip, ui.stateReset, ui.seed,
    ui.momentum, ui.nesterov, ui.rmsDecay, ui.lrSchedule, ui.lrDecay, ui.lrDecayEvery, ui.lrDecayAfter, ui.lrMin, ui.lrIterations,
  ]) {
    input.addEventListener('input', refreshFit);
    input.addEventListener('change', refreshFit);
  }
}
