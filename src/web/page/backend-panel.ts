/**
 * Where the model runs: the GPU (which adapter, and honestly whether it is software) or the CPU
 * reference, the header's badge, and the banner's way out when a device is lost. Switching moves
 * the current model, weights and optimizer state included, without stopping its training.
 */
import type { AdapterOption, BackendKind, Placement } from '../protocol.ts';
import type { TuneMode } from '../../gpu/tuner.ts';
import { adapterTitle } from '../shared.ts';
import { bannerButtons, hideBanner, showBanner } from './banner.ts';
import { $, option } from './dom.ts';
import { refreshFit } from './model-form.ts';
import { page, send } from './state.ts';

const ui = {
  badge: $('adapter-badge'), badgeText: $('adapter-badge-text'),
  backend: [...document.querySelectorAll<HTMLInputElement>('input[name="backend"]')],
  adapterField: $('adapter-field'), adapter: $<HTMLSelectElement>('adapter'), adapterInfo: $('adapter-info'),
  tuneField: $('tune-field'), tune: $<HTMLSelectElement>('tune'),
};

export function backendChoice(): BackendKind {
  return (ui.backend.find((r) => r.checked)?.value as BackendKind) ?? 'cpu';
}

export function setBackendChoice(kind: BackendKind): void {
  for (const r of ui.backend) r.checked = r.value === kind;
  ui.adapterField.hidden = kind !== 'gpu' || page.adapters.length === 0;
  ui.tuneField.hidden = ui.adapterField.hidden;
}

export function placement(): Placement {
  return { backend: backendChoice(), adapter: Number(ui.adapter.value || page.adapters[0]?.id || 0), tune: ui.tune.value as TuneMode };
}

export function selectedAdapter(): AdapterOption | undefined {
  return page.adapters.find((a) => a.id === Number(ui.adapter.value)) ?? page.adapters[0];
}

/** Shows where the worker put the model (after a load, a move, or a lost device). */
export function showPlacement(p: Placement): void {
  setBackendChoice(p.backend);
  if (p.backend === 'gpu') ui.adapter.value = String(p.adapter);
  renderAdapterInfo();
}

/** Disables what cannot be chosen now. */
export function enableBackendChoice(busy: boolean): void {
  for (const r of ui.backend) r.disabled = busy || (r.value === 'gpu' && page.adapters.length === 0);
  ui.adapter.disabled = busy;
  ui.tune.disabled = busy;
}

/** "ANGLE (Mesa, llvmpipe (LLVM 15.0.6, 256 bits), OpenGL 4.5)" -> "llvmpipe (LLVM 15.0.6, 256 bits)" */
function shortRenderer(r: string): string {
  const m = /^ANGLE \([^,]*, (.*), [^,]*\)$/.exec(r);
  return m ? m[1]! : r;
}

const shortName = (a: AdapterOption) => a.name || (a.glRenderer ? shortRenderer(a.glRenderer) : 'unnamed adapter');

/** The adapters the worker found, and a banner when WebGPU is missing or only in software. */
export function showAdapters(adapters: AdapterOption[], gpuError: string | undefined): void {
  page.adapters = adapters;
  page.gpuError = gpuError;
  ui.adapter.replaceChildren(...adapters.map((a) => option(String(a.id), `${shortName(a)} · ${a.label}${a.software ? ' · software' : ''}`)));
  ui.backend.find((r) => r.value === 'gpu')!.disabled = adapters.length === 0;
  setBackendChoice(adapters.length === 0 ? 'cpu' : backendChoice());
  renderAdapterInfo();
  if (adapters.length === 0) {
    showBanner(`WebGPU is not available: ${gpuError ?? 'no adapter'}. The CPU backend works everywhere, only slower.`, { cpu: false });
  } else if (adapters.every((a) => a.software)) {
    showBanner('Only a software WebGPU adapter is available here (no hardware GPU): training works, but slowly. Start with a small hidden size.');
  }
}

export function renderAdapterInfo(): void {
  const a = selectedAdapter();
  const kind = page.status?.backend?.kind ?? backendChoice();
  const { adapters } = page;
  if (kind === 'cpu' || !a) {
    ui.adapterInfo.textContent = (adapters.length === 0 ? 'No WebGPU adapter here. ' : '') + 'The CPU reference: plain TypeScript, one thread, the specification the GPU is tested against.';
  } else {
    const honest = a.reportedFallback
      ? 'The adapter reports itself as a software fallback (isFallbackAdapter).'
      : a.software
        ? 'The adapter does not call itself a fallback, but it runs on a software rasteriser.'
        : 'A hardware adapter.';
    const kernels = page.status?.backend?.kind === 'gpu' && page.status.backend.kernels ? ` ${page.status.backend.kernels[0].toUpperCase()}${page.status.backend.kernels.slice(1)}.` : '';
    ui.adapterInfo.textContent = `${adapterTitle(a)}. ${honest}${kernels}`;
  }
  // Header badge: what the model runs on now, or would run on.
  const onGpu = kind === 'gpu' && a;
  ui.badge.className = `badge ${onGpu ? (a.software ? 'badge-soft' : 'badge-gpu') : adapters.length ? 'badge-wait' : 'badge-none'}`;
  ui.badgeText.textContent = onGpu
    ? `GPU · ${shortName(a)}${a.software ? ' (software)' : ''}`
    : adapters.length ? 'CPU backend' : 'No WebGPU · CPU backend';
  ui.badge.title = onGpu ? adapterTitle(a) : page.gpuError ?? '';
}

/** Moves the current model to the chosen backend, if there is one to move. */
function moveModel(): void {
  if (page.status?.model) send({ type: 'place', placement: placement() });
}

export function initBackendPanel(): void {
  for (const r of ui.backend) {
    r.addEventListener('change', () => {
      setBackendChoice(backendChoice());
      refreshFit();
      renderAdapterInfo();
      if (page.status?.phase !== 'lost') moveModel();
    });
  }
  ui.adapter.addEventListener('change', () => {
    refreshFit();
    renderAdapterInfo();
    if (backendChoice() === 'gpu' && page.status?.phase !== 'lost') moveModel();
  });
  // After a lost device: continue from the kept copy on the CPU, or on a new GPU device.
  bannerButtons.cpu.addEventListener('click', () => {
    setBackendChoice('cpu');
    renderAdapterInfo();
    refreshFit();
    moveModel();
    if (!page.status?.lost) hideBanner();
  });
  bannerButtons.gpu.addEventListener('click', () => {
    setBackendChoice('gpu');
    renderAdapterInfo();
    moveModel();
  });
}
