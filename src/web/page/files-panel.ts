/**
 * Model files: download the model as the CLI's checkpoint, load one (picker or drop), and the
 * copy the worker keeps in this browser across reloads.
 */
import { formatBytes } from '../../gpu/memory.ts';
import type { SavedModelInfo } from '../protocol.ts';
import { placement } from './backend-panel.ts';
import { clearError } from './banner.ts';
import { $, el, fmtInt } from './dom.ts';
import { send } from './state.ts';

const ui = {
  download: $<HTMLButtonElement>('download'), load: $<HTMLButtonElement>('load'), loadInput: $<HTMLInputElement>('load-input'),
  saved: $('saved'), forget: $<HTMLButtonElement>('forget'),
};

export async function loadModelFile(file: File): Promise<void> {
  clearError('file');
  const bytes = await file.arrayBuffer();
  send({ type: 'load', name: file.name, bytes, placement: placement() }, [bytes]);
}

export function downloadCheckpoint(bytes: ArrayBuffer, filename: string): void {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = el('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function renderSaved(saved: SavedModelInfo | undefined): void {
  ui.forget.hidden = !saved;
  ui.saved.textContent = saved
    ? `Kept in this browser: ${saved.name} (iteration ${fmtInt(saved.iteration)}, ${formatBytes(saved.bytes)}, saved ${new Date(saved.savedAt).toLocaleTimeString()}).`
    : 'Nothing kept in this browser yet; the model is saved here when you pause.';
}

export function enableFiles(busy: boolean, hasModel: boolean): void {
  ui.download.disabled = busy || !hasModel;
  ui.load.disabled = busy;
}

export function initFilesPanel(): void {
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
}
