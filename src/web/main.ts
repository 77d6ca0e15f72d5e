/**
 * The page: a form, buttons, a chart and a sample box around the engine, which runs in a worker
 * (worker.ts). Every string that comes from data (corpora, files, samples, file names, adapter
 * names, error messages quoting them) reaches the DOM through textContent only.
 */
import corpora from 'virtual:corpora';
import { checkFits, DeviceLimitError, formatBytes, trainingBuffers } from '../gpu/memory.ts';
import type { CellType } from '../model/cells.ts';
import type { OptimizerName } from '../model/optimizer.ts';
import { LossChart } from './chart.ts';
import type {
  AdapterOption, BackendKind, BenchResult, DataInfo, DataOptions, DataSource, ErrorArea, ModelForm, Placement, Reply, Request,
  SamplingSettings, SavedModelInfo, Status,
} from './protocol.ts';
import { adapterTitle, configsFromForm, parameterCount } from './shared.ts';

// ---------------------------------------------------------------------------------------------
// Choices offered by the form. Cells are listed from data so LSTM and GRU are one line each.

const CELLS: { value: CellType; label: string; available: boolean }[] = [
  { value: 'rnn', label: 'RNN (tanh)', available: true },
  { value: 'lstm', label: 'LSTM', available: true },
  { value: 'gru', label: 'GRU', available: true },
];
const LAYER_COUNTS = [1, 2, 3, 4];
const HIDDEN_SIZES = [64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096];
const DEFAULT_HIDDEN = 512;
/** The GPU sampler keeps a hidden state in one workgroup: 16 values x 256 invocations. */
const MAX_HIDDEN = 4096;
const BENCH_ITERATIONS = 5;

// ---------------------------------------------------------------------------------------------
// DOM helpers

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

const nf = new Intl.NumberFormat('en-US');
const fmtInt = (n: number) => nf.format(Math.round(n));
const fmtLoss = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(3));
function fmtRate(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return '–';
  return n >= 100 ? fmtInt(n) : n.toFixed(n >= 10 ? 1 : 2);
}
function fmtTime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
function fmtParams(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} k` : String(n);
}

// ---------------------------------------------------------------------------------------------
// Elements

const ui = {
  badge: $('adapter-badge'), badgeText: $('adapter-badge-text'),
  banner: $('banner'), bannerText: $('banner-text'), bannerCpu: $<HTMLButtonElement>('banner-cpu'), bannerGpu: $<HTMLButtonElement>('banner-gpu'),
  corpus: [...document.querySelectorAll<HTMLInputElement>('input[name="corpus"]')],
  drop: $('drop-zone'), fileName: $('file-name'), chooseFile: $<HTMLButtonElement>('choose-file'), fileInput: $<HTMLInputElement>('file-input'),
  level: $<HTMLSelectElement>('level'), maxVocabField: $('max-vocab-field'), maxVocab: $<HTMLInputElement>('max-vocab'),
  lowercase: $<HTMLInputElement>('lowercase'), dataInfo: $('data-info'), preview: $('preview'),
  cell: $<HTMLSelectElement>('cell'), layers: $<HTMLSelectElement>('layers'), dropout: $<HTMLInputElement>('dropout'), hidden: $<HTMLSelectElement>('hidden'), seq: $<HTMLInputElement>('seq'), batch: $<HTMLInputElement>('batch'),
  optimizer: $<HTMLSelectElement>('optimizer'), lr: $<HTMLInputElement>('lr'), clip: $<HTMLInputElement>('clip'), stateReset: $<HTMLInputElement>('state-reset'), seed: $<HTMLInputElement>('seed'),
  fit: $('fit'),
  backend: [...document.querySelectorAll<HTMLInputElement>('input[name="backend"]')],
  adapterField: $('adapter-field'), adapter: $<HTMLSelectElement>('adapter'), adapterInfo: $('adapter-info'),
  start: $<HTMLButtonElement>('start'), pause: $<HTMLButtonElement>('pause'), reset: $<HTMLButtonElement>('reset'),
  runState: $('run-state'), dirty: $('dirty'),
  bench: $<HTMLButtonElement>('bench'), benchTable: $('bench-table'), benchBody: $('bench-body'), benchNote: $('bench-note'),
  download: $<HTMLButtonElement>('download'), load: $<HTMLButtonElement>('load'), loadInput: $<HTMLInputElement>('load-input'),
  saved: $('saved'), forget: $<HTMLButtonElement>('forget'),
  notice: $('notice'), noticeText: $('notice-text'), noticeClose: $<HTMLButtonElement>('notice-close'),
  statIteration: $('stat-iteration'), statEpoch: $('stat-epoch'), statTrain: $('stat-train'), statTrainBits: $('stat-train-bits'),
  statVal: $('stat-val'), statValBits: $('stat-val-bits'), statTps: $('stat-tps'), statBackend: $('stat-backend'),
  statTime: $('stat-time'), statParams: $('stat-params'),
  prime: $<HTMLInputElement>('prime'), temperature: $<HTMLInputElement>('temperature'), tempOut: $('temp-out'),
  sampleLength: $<HTMLInputElement>('sample-length'), autoSample: $<HTMLInputElement>('auto-sample'),
  sampleBtn: $<HTMLButtonElement>('sample'), sampleOut: $('sample-out'), sampleMeta: $('sample-meta'),
  dropOverlay: $('drop-overlay'), engineInfo: $('engine-info'),
  errors: {
    gpu: $('train-error'), data: $('data-error'), model: $('model-error'), train: $('train-error'),
    sample: $('sample-error'), file: $('file-error'), bench: $('bench-error'),
  } satisfies Record<ErrorArea, HTMLElement>,
};

// ---------------------------------------------------------------------------------------------
// State

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const chart = new LossChart($('chart'));

let adapters: AdapterOption[] = [];
let gpuError: string | undefined;
let dataInfo: DataInfo | undefined;
let status: Status | undefined;
let lastRunId = -1;
let chosenFile: { name: string; bytes: ArrayBuffer } | undefined;
let greeted = false;
let smoothedTrain = NaN;
let lastVal: number | undefined;
let startAfterBuild = false;

function send(req: Request, transfer: Transferable[] = []): void {
  worker.postMessage(req, transfer);
}

function clearError(area: ErrorArea): void {
  ui.errors[area].textContent = '';
}

function showError(area: ErrorArea, message: string): void {
  ui.errors[area].textContent = message;
}

let noticeTimer: number | undefined;
function notice(message: string): void {
  ui.noticeText.textContent = message;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => {
    ui.notice.hidden = true;
  }, 20_000);
}

ui.noticeClose.addEventListener('click', () => {
  ui.notice.hidden = true;
});

// ---------------------------------------------------------------------------------------------
// Form

for (const c of CELLS) {
  const o = el('option', c.label);
  o.value = c.value;
  o.disabled = !c.available;
  ui.cell.append(o);
}
ui.cell.value = 'rnn';
for (const n of LAYER_COUNTS) {
  const o = el('option', String(n));
  o.value = String(n);
  ui.layers.append(o);
}
ui.layers.value = '1';
for (const h of HIDDEN_SIZES) {
  const o = el('option', String(h));
  o.value = String(h);
  ui.hidden.append(o);
}
ui.hidden.value = String(DEFAULT_HIDDEN);

function readForm(): ModelForm {
  return {
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
}

function writeForm(f: ModelForm): void {
  ui.cell.value = f.cell;
  ui.layers.value = String(f.layers ?? 1);
  ui.dropout.value = String(f.dropout ?? 0);
  if (![...ui.hidden.options].some((o) => o.value === String(f.hiddenSize))) {
    const o = el('option', String(f.hiddenSize));
    o.value = String(f.hiddenSize);
    ui.hidden.append(o);
  }
  ui.hidden.value = String(f.hiddenSize);
  ui.seq.value = String(f.seqLength);
  ui.batch.value = String(f.batchSize);
  ui.optimizer.value = f.optimizer;
  ui.lr.value = String(f.learningRate);
  ui.clip.value = String(f.clip);
  ui.stateReset.value = String(f.stateReset ?? 0);
  ui.seed.value = String(f.seed);
}

function backendChoice(): BackendKind {
  return (ui.backend.find((r) => r.checked)?.value as BackendKind) ?? 'cpu';
}

function setBackendChoice(kind: BackendKind): void {
  for (const r of ui.backend) r.checked = r.value === kind;
  ui.adapterField.hidden = kind !== 'gpu' || adapters.length === 0;
}

function placement(): Placement {
  return { backend: backendChoice(), adapter: Number(ui.adapter.value || adapters[0]?.id || 0) };
}

function selectedAdapter(): AdapterOption | undefined {
  return adapters.find((a) => a.id === Number(ui.adapter.value)) ?? adapters[0];
}

/** What does not fit, in a sentence; undefined when it all fits. Checked before anything is allocated. */
function fitProblem(f: ModelForm, limits: GPUSupportedLimits | undefined, vocabSize: number): string | undefined {
  if (!Number.isInteger(f.seqLength) || f.seqLength < 1) return 'the sequence length must be a whole number of at least 1';
  if (!Number.isInteger(f.batchSize) || f.batchSize < 1) return 'the batch size must be a whole number of at least 1';
  if (!(f.learningRate > 0)) return 'the learning rate must be above 0';
  if (!(f.clip > 0)) return 'the gradient clip must be above 0';
  if (!Number.isInteger(f.stateReset ?? 0) || (f.stateReset ?? 0) < 0) return 'the state reset must be a whole number of iterations, 0 for never';
  if (!((f.dropout ?? 0) >= 0 && (f.dropout ?? 0) < 1)) return 'the dropout must be from 0 up to (not including) 1';
  if (f.hiddenSize > MAX_HIDDEN) return `hidden sizes above ${MAX_HIDDEN} are not supported (the GPU sampler holds the hidden state in one workgroup)`;
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

function refreshFit(): void {
  const f = readForm();
  const V = dataInfo?.vocabSize;
  const gpu = backendChoice() === 'gpu' ? selectedAdapter() : undefined;
  const limits = gpu?.limits as unknown as GPUSupportedLimits | undefined;
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
    if (ui.errors.model.textContent?.startsWith('Does not fit')) clearError('model');
    const { model, train } = configsFromForm(f, V);
    const plans = trainingBuffers(model, train);
    const total = plans.reduce((a, p) => a + p.bytes, 0);
    const largest = plans.reduce((a, p) => (p.bytes > a.bytes ? p : a));
    const params = parameterCount(model);
    ui.fit.textContent = gpu
      ? `${fmtParams(params)} parameters · ${formatBytes(total)} of GPU memory; largest buffer (${largest.name}) ${formatBytes(largest.bytes)} of the ${formatBytes(Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize))} this adapter allows.`
      : `${fmtParams(params)} parameters · the CPU reference runs on one thread: fine for small models, slow beyond hidden 256.`;
  }
  refreshDirty();
  refreshButtons();
}

/** The form or the text no longer match the model: Reset would build a different one. */
function refreshDirty(): void {
  const m = status?.model;
  if (!m || !dataInfo) {
    ui.dirty.hidden = true;
    return;
  }
  const f = readForm();
  const formChanged = (Object.keys(f) as (keyof ModelForm)[]).some((k) => f[k] !== m[k]);
  const textChanged = dataInfo.options.level !== m.level || dataInfo.options.lowercase !== m.lowercase || corpusNameOf(dataInfo) !== m.corpus ||
    dataInfo.vocabSize !== m.vocabSize;
  ui.dirty.hidden = !(formChanged || textChanged);
}

function corpusNameOf(d: DataInfo): string {
  if (d.source.startsWith('builtin:')) return corpora.find((c) => `builtin:${c.id}` === d.source)?.checkpointName ?? d.name;
  return d.name;
}

for (const input of [ui.cell, ui.layers, ui.dropout, ui.hidden, ui.seq, ui.batch, ui.optimizer, ui.lr, ui.clip, ui.stateReset, ui.seed]) {
  input.addEventListener('input', refreshFit);
  input.addEventListener('change', refreshFit);
}

// ---------------------------------------------------------------------------------------------
// Text

function corpusChoice(): string {
  return ui.corpus.find((r) => r.checked)?.value ?? 'reuters';
}

function dataOptions(): DataOptions {
  return { level: ui.level.value === 'word' ? 'word' : 'char', lowercase: ui.lowercase.checked, maxVocab: Math.round(Number(ui.maxVocab.value)) || 10000 };
}

function requestData(): void {
  const choice = corpusChoice();
  let source: DataSource;
  if (choice === 'file') {
    if (!chosenFile) {
      ui.fileInput.click();
      return;
    }
    // A copy travels, so the page can send the same file again with other options.
    source = { kind: 'file', name: chosenFile.name, bytes: chosenFile.bytes.slice(0) };
  } else {
    const c = corpora.find((x) => x.id === choice)!;
    source = { kind: 'builtin', id: c.id, url: new URL(c.file, document.baseURI).href };
  }
  clearError('data');
  ui.dataInfo.textContent = 'Preparing the text…';
  send({ type: 'data', source, options: dataOptions() }, source.kind === 'file' ? [source.bytes] : []);
}

for (const r of ui.corpus) {
  r.addEventListener('change', () => {
    const c = corpora.find((x) => x.id === r.value);
    if (c) ui.lowercase.checked = c.lowercase;
    requestData();
  });
}
ui.level.addEventListener('change', () => {
  ui.maxVocabField.hidden = ui.level.value !== 'word';
  ui.sampleLength.value = ui.level.value === 'word' ? '100' : '300';
  sendSampling();
  requestData();
});
ui.lowercase.addEventListener('change', requestData);
let vocabTimer: number | undefined;
ui.maxVocab.addEventListener('input', () => {
  clearTimeout(vocabTimer);
  vocabTimer = window.setTimeout(requestData, 400);
});

async function takeTextFile(file: File): Promise<void> {
  clearError('data');
  chosenFile = { name: file.name, bytes: await file.arrayBuffer() };
  ui.fileName.textContent = file.name;
  ui.fileName.classList.add('chosen');
  ui.fileName.title = file.name;
  for (const r of ui.corpus) r.checked = r.value === 'file';
  requestData();
}

ui.chooseFile.addEventListener('click', () => ui.fileInput.click());
ui.fileInput.addEventListener('change', () => {
  const f = ui.fileInput.files?.[0];
  if (f) void takeTextFile(f);
  ui.fileInput.value = '';
});

function renderData(d: DataInfo): void {
  dataInfo = d;
  const kind = d.options.level === 'word' ? 'words' : 'characters';
  const about = d.source.startsWith('builtin:') ? corpora.find((c) => `builtin:${c.id}` === d.source)?.about : d.name;
  ui.dataInfo.textContent = `${fmtInt(d.chars)} characters → ${fmtInt(d.tokens)} ${d.options.level === 'word' ? 'word tokens' : 'tokens'}, ` +
    `vocabulary ${fmtInt(d.vocabSize)} ${kind}; ${fmtInt(d.trainTokens)} to train on, ${fmtInt(d.valTokens)} held out.` + (about ? ` ${about}.` : '');
  ui.preview.textContent = d.preview;
  // The worker may have switched text (loading a model trained on another one): follow it.
  const src = d.source.startsWith('builtin:') ? d.source.slice(8) : 'file';
  for (const r of ui.corpus) r.checked = r.value === src;
  if (src === 'file' && (!chosenFile || chosenFile.name !== d.name)) {
    ui.fileName.textContent = d.name;
    ui.fileName.classList.add('chosen');
  }
  ui.level.value = d.options.level;
  ui.maxVocabField.hidden = d.options.level !== 'word';
  ui.lowercase.checked = d.options.lowercase;
  refreshFit();
  refreshButtons();
  renderRunState();
}

// ---------------------------------------------------------------------------------------------
// Dropping files anywhere: text to train on, or a model to load.

let dragDepth = 0;
window.addEventListener('dragenter', (e) => {
  if (!e.dataTransfer?.types.includes('Files')) return;
  dragDepth++;
  ui.dropOverlay.hidden = false;
  ui.drop.classList.add('over');
});
window.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) {
    ui.dropOverlay.hidden = true;
    ui.drop.classList.remove('over');
  }
});
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  ui.dropOverlay.hidden = true;
  ui.drop.classList.remove('over');
  const file = e.dataTransfer?.files[0];
  if (!file) return;
  if (/\.safetensors$/i.test(file.name)) void loadModelFile(file);
  else void takeTextFile(file);
});

// ---------------------------------------------------------------------------------------------
// GPU, backend and adapters

function renderAdapters(): void {
  ui.adapter.replaceChildren();
  for (const a of adapters) {
    const o = el('option', `${a.name || (a.glRenderer ? shortRenderer(a.glRenderer) : 'unnamed adapter')} · ${a.label}${a.software ? ' · software' : ''}`);
    o.value = String(a.id);
    ui.adapter.append(o);
  }
  const gpuRadio = ui.backend.find((r) => r.value === 'gpu')!;
  gpuRadio.disabled = adapters.length === 0;
  if (adapters.length === 0) setBackendChoice('cpu');
  else setBackendChoice(backendChoice());
  renderAdapterInfo();
}

function shortRenderer(r: string): string {
  // "ANGLE (Mesa, llvmpipe (LLVM 15.0.6, 256 bits), OpenGL 4.5)" -> "llvmpipe (LLVM 15.0.6, 256 bits)"
  const m = /^ANGLE \([^,]*, (.*), [^,]*\)$/.exec(r);
  return m ? m[1]! : r;
}

function renderAdapterInfo(): void {
  const a = selectedAdapter();
  const kind = status?.backend?.kind ?? backendChoice();
  if (kind === 'cpu' || !a) {
    ui.adapterInfo.textContent = (adapters.length === 0 ? 'No WebGPU adapter here. ' : '') + 'The CPU reference: plain TypeScript, one thread, the specification the GPU is tested against.';
  } else {
    const honest = a.reportedFallback
      ? 'The adapter reports itself as a software fallback (isFallbackAdapter).'
      : a.software
        ? 'The adapter does not call itself a fallback, but it runs on a software rasteriser.'
        : 'A hardware adapter.';
    ui.adapterInfo.textContent = `${adapterTitle(a)}. ${honest}`;
  }
  // Header badge: what the model runs on now, or would run on.
  const onGpu = kind === 'gpu' && a;
  ui.badge.className = `badge ${onGpu ? (a.software ? 'badge-soft' : 'badge-gpu') : adapters.length ? 'badge-wait' : 'badge-none'}`;
  ui.badgeText.textContent = onGpu
    ? `GPU · ${a.name || (a.glRenderer ? shortRenderer(a.glRenderer) : 'unnamed adapter')}${a.software ? ' (software)' : ''}`
    : adapters.length ? 'CPU backend' : 'No WebGPU · CPU backend';
  ui.badge.title = onGpu ? adapterTitle(a) : gpuError ?? '';
}

for (const r of ui.backend) {
  r.addEventListener('change', () => {
    setBackendChoice(backendChoice());
    refreshFit();
    renderAdapterInfo();
    if (status?.model && status.phase !== 'lost') send({ type: 'place', placement: placement() });
  });
}
ui.adapter.addEventListener('change', () => {
  refreshFit();
  renderAdapterInfo();
  if (status?.model && backendChoice() === 'gpu' && status.phase !== 'lost') send({ type: 'place', placement: placement() });
});

function showBanner(text: string, opts: { error?: boolean; cpu?: boolean; gpu?: boolean } = {}): void {
  ui.bannerText.textContent = text;
  ui.banner.classList.toggle('banner-error', Boolean(opts.error));
  ui.bannerCpu.hidden = !opts.cpu;
  ui.bannerGpu.hidden = !opts.gpu;
  ui.banner.hidden = false;
}

ui.bannerCpu.addEventListener('click', () => {
  setBackendChoice('cpu');
  renderAdapterInfo();
  refreshFit();
  if (status?.model) send({ type: 'place', placement: placement() });
  if (!status?.lost) ui.banner.hidden = true;
});
ui.bannerGpu.addEventListener('click', () => {
  setBackendChoice('gpu');
  renderAdapterInfo();
  if (status?.model) send({ type: 'place', placement: placement() });
});

// ---------------------------------------------------------------------------------------------
// Run buttons

ui.start.addEventListener('click', () => {
  clearError('train');
  clearError('model');
  if (!status?.model) {
    startAfterBuild = true;
    send({ type: 'build', form: readForm(), placement: placement() });
  } else {
    send({ type: 'start' });
  }
});
ui.pause.addEventListener('click', () => send({ type: 'pause' }));
ui.reset.addEventListener('click', () => {
  clearError('train');
  clearError('model');
  send({ type: 'build', form: readForm(), placement: placement() });
});

function refreshButtons(): void {
  const phase = status?.phase ?? 'empty';
  const busy = phase === 'busy';
  const hasModel = Boolean(status?.model);
  const fits = dataInfo ? !fitProblem(readForm(), backendChoice() === 'gpu' ? (selectedAdapter()?.limits as unknown as GPUSupportedLimits) : undefined, dataInfo.vocabSize) : false;
  ui.start.disabled = busy || phase === 'training' || phase === 'lost' || (hasModel ? !status?.canTrain : !dataInfo || !fits);
  ui.start.textContent = hasModel && (status?.iteration ?? 0) > 0 ? 'Resume' : 'Start';
  ui.pause.disabled = phase !== 'training';
  ui.reset.disabled = busy || !dataInfo || !fits;
  ui.download.disabled = busy || !hasModel;
  ui.sampleBtn.disabled = busy || !hasModel || phase === 'lost';
  ui.bench.disabled = busy || !dataInfo;
  ui.load.disabled = busy;
  for (const r of ui.backend) r.disabled = busy || (r.value === 'gpu' && adapters.length === 0);
  ui.adapter.disabled = busy;
}

// ---------------------------------------------------------------------------------------------
// Status and progress

function renderStatus(s: Status): void {
  const prev = status;
  status = s;
  document.body.dataset.phase = s.phase;
  if (s.runId !== lastRunId) {
    lastRunId = s.runId;
    chart.clear();
    smoothedTrain = NaN;
    lastVal = undefined;
    ui.statTrain.textContent = '–';
    ui.statTrainBits.textContent = 'nats/token';
    ui.statVal.textContent = '–';
    ui.statValBits.textContent = 'nats/token';
    ui.statTps.textContent = '–';
    if (s.model) {
      writeForm(s.model);
      refreshFit();
    }
  }
  if (s.backend) {
    if (!prev?.backend || prev.backend.kind !== s.backend.kind || prev.backend.adapter !== s.backend.adapter) {
      setBackendChoice(s.backend.kind);
      if (s.backend.kind === 'gpu') ui.adapter.value = String(s.backend.adapter);
      renderAdapterInfo();
    }
    ui.statBackend.textContent = s.backend.kind === 'gpu' ? 'on the GPU' : 'on the CPU';
  }
  ui.statIteration.textContent = fmtInt(s.iteration);
  ui.statEpoch.textContent = `epoch ${s.epoch.toFixed(2)}`;
  ui.statTime.textContent = fmtTime(s.elapsed);
  ui.statParams.textContent = s.model ? `${fmtParams(s.model.parameters)} parameters` : '–';

  const m = s.model;
  renderRunState();
  if (s.lost) {
    showBanner(`The GPU device was lost (${s.lost.reason}). Training stopped; the model is kept as of iteration ${fmtInt(s.lost.keptIteration)}. ` +
      'Continue on the CPU, or try the GPU again on a new device.', { error: true, cpu: true, gpu: adapters.length > 0 });
  } else if (prev?.lost) {
    ui.banner.hidden = true;
  }
  if (m && s.backend) {
    const depth = (m.layers ?? 1) > 1 ? `${m.layers} layers × ` : '';
    const dropped = (m.dropout ?? 0) > 0 ? ` · dropout ${m.dropout}` : '';
    ui.engineInfo.textContent = `${m.cell.toUpperCase()} · ${depth}hidden ${m.hiddenSize}${dropped} · vocabulary ${m.vocabSize} (${m.level}) · sequence ${m.seqLength} × batch ${m.batchSize} · ` +
      `${m.optimizer} ${m.learningRate} · ${s.backend.kind === 'gpu' ? `${s.backend.dispatches} dispatches and one submit per iteration${s.backend.memoryBytes ? ` · ${formatBytes(s.backend.memoryBytes)} of GPU buffers` : ''}` : 'CPU reference'}`;
  } else {
    ui.engineInfo.textContent = '';
  }
  if (startAfterBuild && (s.phase === 'ready' || s.phase === 'empty')) {
    const go = s.phase === 'ready';
    startAfterBuild = false;
    if (go) send({ type: 'start' });
  }
  refreshDirty();
  refreshButtons();
}

function renderRunState(): void {
  const s = status;
  const where = s?.backend?.kind === 'gpu' ? 'the GPU' : 'the CPU';
  ui.runState.textContent =
    !s || s.phase === 'empty' ? (dataInfo ? 'Press Start to build the model and train it.' : 'Loading the text…') :
    s.phase === 'busy' ? `Working: ${s.activity ?? '…'}` :
    s.phase === 'training' && s.iteration === 0 && s.backend?.kind === 'gpu'
      ? 'Starting: the first iteration compiles the GPU kernels, which takes a while on a software adapter.' :
    s.phase === 'training' ? `Training on ${where}.` :
    s.phase === 'paused' ? `Paused at iteration ${fmtInt(s.iteration)}.${s.canTrain ? '' : ' This model can sample but not train here.'}` :
    s.phase === 'ready' ? `Model ready on ${where}: press Start.` :
    'Stopped: the GPU device was lost.';
}

function renderProgress(p: Extract<Reply, { type: 'progress' }>): void {
  smoothedTrain = chart.addTrain(p.iterations, p.losses);
  ui.statIteration.textContent = fmtInt(p.iteration);
  ui.statEpoch.textContent = `epoch ${p.epoch.toFixed(2)}`;
  ui.statTrain.textContent = fmtLoss(smoothedTrain);
  ui.statTrainBits.textContent = `${(smoothedTrain / Math.LN2).toFixed(3)} bits · smoothed`;
  ui.statTps.textContent = fmtRate(p.tokensPerSecond);
  ui.statTime.textContent = fmtTime(p.elapsed);
  if (status) {
    const first = status.iteration === 0;
    status.iteration = p.iteration;
    if (first) renderRunState();
  }
}

function renderVal(iteration: number, loss: number): void {
  lastVal = loss;
  chart.addVal(iteration, loss);
  ui.statVal.textContent = fmtLoss(loss);
  ui.statValBits.textContent = `${(loss / Math.LN2).toFixed(3)} bits · at iteration ${fmtInt(iteration)}`;
}

// ---------------------------------------------------------------------------------------------
// Samples

function sendSampling(): void {
  const settings: SamplingSettings = {
    prime: ui.prime.value,
    temperature: Number(ui.temperature.value),
    length: Math.max(1, Math.min(2000, Math.round(Number(ui.sampleLength.value)) || 300)),
    every: ui.autoSample.checked ? 5 : 0,
  };
  ui.tempOut.textContent = settings.temperature === 0 ? '0 (argmax)' : settings.temperature.toFixed(2);
  clearError('sample');
  send({ type: 'sampling', settings });
}

for (const input of [ui.prime, ui.temperature, ui.sampleLength, ui.autoSample]) input.addEventListener('input', sendSampling);
ui.autoSample.addEventListener('change', sendSampling);
ui.sampleBtn.addEventListener('click', () => {
  clearError('sample');
  send({ type: 'sample' });
});

function renderSample(s: Extract<Reply, { type: 'sample' }>): void {
  const prime = el('span', s.prime, 'prime');
  ui.sampleOut.replaceChildren(...(s.prime ? [prime] : []), document.createTextNode(s.text));
  ui.sampleMeta.textContent = `iteration ${fmtInt(s.iteration)} · temperature ${s.temperature === 0 ? '0 (argmax)' : s.temperature.toFixed(2)}`;
}

// ---------------------------------------------------------------------------------------------
// Benchmark

ui.bench.addEventListener('click', () => {
  clearError('bench');
  ui.benchNote.textContent = 'Running… (the CPU gets a few seconds at most)';
  send({ type: 'bench', form: readForm(), adapter: selectedAdapter()?.id ?? -1, iterations: BENCH_ITERATIONS });
});

function renderBench(results: BenchResult[], form: ModelForm): void {
  ui.benchBody.replaceChildren();
  for (const r of results) {
    const name = el('td');
    name.append(el('strong', r.kind === 'gpu' ? 'GPU' : 'CPU'), el('span', r.description, 'desc'));
    const row = el('tr');
    row.dataset.kind = r.kind;
    row.append(name, el('td', fmtRate(r.tokensPerSecond), 'num'), el('td', r.msPerIteration.toFixed(r.msPerIteration < 100 ? 1 : 0), 'num'));
    ui.benchBody.append(row);
  }
  ui.benchTable.hidden = results.length === 0;
  const gpu = results.find((r) => r.kind === 'gpu');
  const cpu = results.find((r) => r.kind === 'cpu');
  const ratio = gpu && cpu ? ` GPU/CPU: ${(gpu.tokensPerSecond / cpu.tokensPerSecond).toFixed(1)}×.` : '';
  ui.benchNote.textContent = `Hidden ${form.hiddenSize}, sequence ${form.seqLength} × batch ${form.batchSize}; ` +
    `${results.map((r) => `${r.iterations} iteration${r.iterations === 1 ? '' : 's'} on the ${r.kind.toUpperCase()}`).join(', ')} after one untimed.${ratio}`;
}

// ---------------------------------------------------------------------------------------------
// Model files

ui.download.addEventListener('click', () => {
  clearError('file');
  send({ type: 'save' });
});
ui.load.addEventListener('click', () => ui.loadInput.click());
ui.loadInput.addEventListener('change', () => {
  const f = ui.loadInput.files?.[0];
  if (f) void loadModelFile(f);
  ui.loadInput.value = '';
});
ui.forget.addEventListener('click', () => send({ type: 'forget' }));

async function loadModelFile(file: File): Promise<void> {
  clearError('file');
  const bytes = await file.arrayBuffer();
  send({ type: 'load', name: file.name, bytes, placement: placement() }, [bytes]);
}

function downloadCheckpoint(bytes: ArrayBuffer, filename: string): void {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = el('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function renderSaved(saved: SavedModelInfo | undefined): void {
  ui.forget.hidden = !saved;
  ui.saved.textContent = saved
    ? `Kept in this browser: ${saved.name} (iteration ${fmtInt(saved.iteration)}, ${formatBytes(saved.bytes)}, saved ${new Date(saved.savedAt).toLocaleTimeString()}).`
    : 'Nothing kept in this browser yet; the model is saved here when you pause.';
}

// ---------------------------------------------------------------------------------------------
// Messages from the worker

worker.onmessage = (e: MessageEvent<Reply>) => {
  const r = e.data;
  switch (r.type) {
    case 'hello': {
      adapters = r.adapters;
      gpuError = r.gpuError;
      renderAdapters();
      if (adapters.length === 0) {
        showBanner(`WebGPU is not available: ${r.gpuError ?? 'no adapter'}. The CPU backend works everywhere, only slower.`, { cpu: false });
      } else if (adapters.every((a) => a.software)) {
        showBanner('Only a software WebGPU adapter is available here (no hardware GPU): training works, but slowly. Start with a small hidden size.');
      }
      renderSaved(r.saved);
      if (r.saved && !greeted) {
        notice(`Restoring your last model from this browser: ${r.saved.name}.`);
        send({ type: 'restore', placement: placement() });
      }
      greeted = true;
      refreshFit();
      refreshButtons();
      break;
    }
    case 'data': renderData(r.info); break;
    case 'status': renderStatus(r.status); break;
    case 'progress': renderProgress(r); break;
    case 'val': renderVal(r.iteration, r.loss); break;
    case 'sample': renderSample(r); break;
    case 'checkpoint': downloadCheckpoint(r.bytes, r.filename); break;
    case 'bench': renderBench(r.results, r.form); break;
    case 'saved': renderSaved(r.saved); break;
    case 'notice': notice(r.message); break;
    case 'error':
      showError(r.area, r.message);
      if (r.area === 'bench') ui.benchNote.textContent = '';
      if (r.area === 'model' || r.area === 'gpu') startAfterBuild = false;
      break;
  }
};
worker.onerror = (e) => {
  showBanner(`The engine's worker failed to start: ${e.message || 'unknown error'}.`, { error: true });
};

// Hooks for tests and the curious: the chart's numbers, and a simulated lost GPU device.
(window as unknown as { rnnDebug: object }).rnnDebug = {
  history: () => chart.history(),
  status: () => status,
  adapters: () => adapters,
  loseDevice: () => send({ type: 'lose-device' }),
};

const params = new URLSearchParams(location.search);
const timing = params.has('fast') ? { firstValidation: 0.5, validation: 1, snapshot: 1, autosave: 5, progress: 0.1 } : undefined;
worker.postMessage({
  type: 'boot',
  builtins: corpora.map((c) => ({ id: c.id, checkpointName: c.checkpointName, url: new URL(c.file, document.baseURI).href })),
  timing,
});
ui.lowercase.checked = corpora.find((c) => c.id === corpusChoice())?.lowercase ?? false;
sendSampling();
send({ type: 'init' });
requestData();
renderSaved(undefined);
refreshButtons();
