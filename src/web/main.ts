/**
 * The page: panels (page/*.ts) around the engine, which runs in a worker (worker.ts). This file
 * starts the worker, routes its replies to the panels, and boots. Every string that comes from
 * data (corpora, files, samples, file names, adapter names, error messages quoting them) reaches
 * the DOM through textContent only.
 */
import type { Reply } from './protocol.ts';
import { initBackendPanel, placement, showAdapters } from './page/backend-panel.ts';
import { initBanner, notice, showBanner, showError } from './page/banner.ts';
import { clearBenchNote, initBenchPanel, renderBench } from './page/bench-panel.ts';
import { builtinCorpora, initDataPanel, renderData, requestData } from './page/data-panel.ts';
import { downloadCheckpoint, initFilesPanel, renderSaved } from './page/files-panel.ts';
import { initModelForm, refreshFit } from './page/model-form.ts';
import { cancelStartAfterBuild, initRunPanel, onProgress, refreshButtons, renderStatus } from './page/run-panel.ts';
import { initSamplesPanel, renderSample, sendSampling } from './page/samples-panel.ts';
import { connect, page, send } from './page/state.ts';
import { chartHistory, initStatsPanel, renderVal } from './page/stats-panel.ts';

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
connect(worker);

initBanner();
initModelForm();
initDataPanel();
initBackendPanel();
initRunPanel();
initStatsPanel();
initSamplesPanel();
initBenchPanel();
initFilesPanel();

let greeted = false;

worker.onmessage = (e: MessageEvent<Reply>) => {
  const r = e.data;
  switch (r.type) {
    case 'hello': {
      showAdapters(r.adapters, r.gpuError);
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
    case 'progress': onProgress(r); break;
    case 'val': renderVal(r.iteration, r.loss); break;
    case 'sample': renderSample(r); break;
    case 'checkpoint': downloadCheckpoint(r.bytes, r.filename); break;
    case 'bench': renderBench(r.results, r.form); break;
    case 'saved': renderSaved(r.saved); break;
    case 'notice': notice(r.message); break;
    case 'error':
      showError(r.area, r.message);
      if (r.area === 'bench') clearBenchNote();
      if (r.area === 'model' || r.area === 'gpu') cancelStartAfterBuild();
      break;
  }
};
worker.onerror = (e) => {
  showBanner(`The engine's worker failed to start: ${e.message || 'unknown error'}.`, { error: true });
};

// Hooks for tests and the curious: the chart's numbers, and a simulated lost GPU device.
(window as unknown as { rnnDebug: object }).rnnDebug = {
  history: () => chartHistory(),
  status: () => page.status,
  adapters: () => page.adapters,
  loseDevice: () => send({ type: 'lose-device' }),
};

const params = new URLSearchParams(location.search);
const timing = params.has('fast') ? { firstValidation: 0.5, validation: 1, snapshot: 1, autosave: 5, progress: 0.1 } : undefined;
worker.postMessage({ type: 'boot', builtins: builtinCorpora(), timing });
sendSampling();
send({ type: 'init' });
requestData();
renderSaved(undefined);
refreshButtons();
