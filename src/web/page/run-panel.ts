/**
 * Start, Pause and Reset, the line saying what the engine is doing, and the page's reaction to
 * each status from the worker: which buttons work, what the model is, whether its device was lost.
 */
import { formatBytes } from '../../gpu/memory.ts';
import { describeOptimizer } from '../../model/optimizer.ts';
import type { Reply, Status } from '../protocol.ts';
import { configsFromForm } from '../shared.ts';
import { enableBackendChoice, placement, showPlacement } from './backend-panel.ts';
import { enableBench } from './bench-panel.ts';
import { clearError, hideBanner, showBanner } from './banner.ts';
import { $, fmtInt } from './dom.ts';
import { enableFiles } from './files-panel.ts';
import { formFits, readForm, refreshDirty, refreshFit, writeForm } from './model-form.ts';
import { enableSampling } from './samples-panel.ts';
import { page, send } from './state.ts';
import { renderProgress, renderStatusStats, resetStats } from './stats-panel.ts';

const ui = {
  start: $<HTMLButtonElement>('start'), pause: $<HTMLButtonElement>('pause'), reset: $<HTMLButtonElement>('reset'),
  runState: $('run-state'), engineInfo: $('engine-info'),
};

let lastRunId = -1;
/** Start without a model builds one first, then starts it once the worker says it is ready. */
let startAfterBuild = false;

export function refreshButtons(): void {
  const s = page.status;
  const phase = s?.phase ?? 'empty';
  const busy = phase === 'busy';
  const hasModel = Boolean(s?.model);
  const fits = formFits();
  ui.start.disabled = busy || phase === 'training' || phase === 'lost' || (hasModel ? !s?.canTrain : !page.dataInfo || !fits);
  ui.start.textContent = hasModel && (s?.iteration ?? 0) > 0 ? 'Resume' : 'Start';
  ui.pause.disabled = phase !== 'training';
  ui.reset.disabled = busy || !page.dataInfo || !fits;
  enableFiles(busy, hasModel);
  enableSampling(!busy && hasModel && phase !== 'lost');
  enableBench(!busy && Boolean(page.dataInfo));
  enableBackendChoice(busy);
}

export function renderRunState(): void {
  const s = page.status;
  const where = s?.backend?.kind === 'gpu' ? 'the GPU' : 'the CPU';
  ui.runState.textContent =
    !s || s.phase === 'empty' ? (page.dataInfo ? 'Press Start to build the model and train it.' : 'Loading the text…') :
    s.phase === 'busy' ? `Working: ${s.activity ?? '…'}` :
    s.phase === 'training' && s.iteration === 0 && s.backend?.kind === 'gpu'
      ? 'Starting: the first iteration compiles the GPU kernels, which takes a while on a software adapter.' :
    s.phase === 'training' ? `Training on ${where}.` :
    s.phase === 'paused' ? `Paused at iteration ${fmtInt(s.iteration)}.${s.canTrain ? '' : ' This model can sample but not train here.'}` :
    s.phase === 'ready' ? `Model ready on ${where}: press Start.` :
    'Stopped: the GPU device was lost.';
}

function renderEngineInfo(s: Status): void {
  const m = s.model;
  if (!m || !s.backend) {
    ui.engineInfo.textContent = '';
    return;
  }
  const depth = (m.layers ?? 1) > 1 ? `${m.layers} layers × ` : '';
  const dropped = (m.dropout ?? 0) > 0 ? ` · dropout ${m.dropout}` : '';
  const gpuWork = `${s.backend.dispatches} dispatches and one submit per iteration${s.backend.memoryBytes ? ` · ${formatBytes(s.backend.memoryBytes)} of GPU buffers` : ''}` +
    `${s.backend.kernels ? ` · ${s.backend.kernels}` : ''}`;
  ui.engineInfo.textContent = `${m.cell.toUpperCase()} · ${depth}hidden ${m.hiddenSize}${dropped} · vocabulary ${m.vocabSize} (${m.level}) · sequence ${m.seqLength} × batch ${m.batchSize} · ` +
    `${describeOptimizer(configsFromForm(m, m.vocabSize).train)} · ${s.backend.kind === 'gpu' ? gpuWork : 'CPU reference'}`;
}

export function renderStatus(s: Status): void {
  const prev = page.status;
  page.status = s;
  document.body.dataset.phase = s.phase;
  if (s.runId !== lastRunId) {
    lastRunId = s.runId;
    resetStats();
    if (s.model) {
      writeForm(s.model);
      refreshFit();
    }
  }
  if (s.backend && (!prev?.backend || prev.backend.kind !== s.backend.kind || prev.backend.adapter !== s.backend.adapter)) {
    showPlacement({ backend: s.backend.kind, adapter: s.backend.adapter });
  }
  renderStatusStats(s);
  renderRunState();
  if (s.lost) {
    showBanner(`The GPU device was lost (${s.lost.reason}). Training stopped; the model is kept as of iteration ${fmtInt(s.lost.keptIteration)}. ` +
      'Continue on the CPU, or try the GPU again on a new device.', { error: true, cpu: true, gpu: page.adapters.length > 0 });
  } else if (prev?.lost) {
    hideBanner();
  }
  renderEngineInfo(s);
  if (startAfterBuild && (s.phase === 'ready' || s.phase === 'empty')) {
    startAfterBuild = false;
    if (s.phase === 'ready') send({ type: 'start' });
  }
  refreshDirty();
  refreshButtons();
}

export function onProgress(p: Extract<Reply, { type: 'progress' }>): void {
  renderProgress(p);
  const s = page.status;
  if (s) {
    const first = s.iteration === 0;
    s.iteration = p.iteration;
    if (first) renderRunState();
  }
}

/** A model or device error: a pending Start-after-build will not happen. */
export function cancelStartAfterBuild(): void {
  startAfterBuild = false;
}

export function initRunPanel(): void {
  ui.start.addEventListener('click', () => {
    clearError('train');
    clearError('model');
    if (!page.status?.model) {
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
}
