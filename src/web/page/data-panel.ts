/**
 * The text panel: an embedded corpus or the user's file (picker or drag-and-drop anywhere on the
 * page), char or word level, and what the worker made of it. The file's name and a preview of its
 * text are shown as text only.
 */
import corpora from 'virtual:corpora';
import { DEFAULT_CHARSET, isCharset, type Charset } from '../../data/text.ts';
import type { DataInfo, DataOptions, DataSource } from '../protocol.ts';
import { clearError } from './banner.ts';
import { $, fmtInt } from './dom.ts';
import { loadModelFile } from './files-panel.ts';
import { refreshFit } from './model-form.ts';
import { refreshButtons, renderRunState } from './run-panel.ts';
import { setSampleLength } from './samples-panel.ts';
import { page, send } from './state.ts';

const ui = {
  corpus: [...document.querySelectorAll<HTMLInputElement>('input[name="corpus"]')],
  drop: $('drop-zone'), fileName: $('file-name'), chooseFile: $<HTMLButtonElement>('choose-file'), fileInput: $<HTMLInputElement>('file-input'),
  level: $<HTMLSelectElement>('level'), maxVocabField: $('max-vocab-field'), maxVocab: $<HTMLInputElement>('max-vocab'),
  charset: $<HTMLSelectElement>('charset'),
  lowercase: $<HTMLInputElement>('lowercase'), dataInfo: $('data-info'), preview: $('preview'), dropOverlay: $('drop-overlay'),
};

let chosenFile: { name: string; bytes: ArrayBuffer } | undefined;

function corpusChoice(): string {
  return ui.corpus.find((r) => r.checked)?.value ?? 'reuters';
}

function charsetChoice(): Charset {
  return isCharset(ui.charset.value) ? ui.charset.value : DEFAULT_CHARSET;
}

function dataOptions(): DataOptions {
  const charset = charsetChoice();
  return {
    level: ui.level.value === 'word' ? 'word' : 'char', charset,
    lowercase: charset === 'letters' || ui.lowercase.checked, maxVocab: Math.round(Number(ui.maxVocab.value)) || 10000,
  };
}

/** Letters are lowercase a-z by definition: the checkbox shows it and cannot say otherwise. */
function showLowercase(lowercase: boolean): void {
  const letters = charsetChoice() === 'letters';
  ui.lowercase.checked = letters || lowercase;
  ui.lowercase.disabled = letters;
}

/** The name a checkpoint records for this text (an embedded corpus has its own). */
export function corpusNameOf(d: DataInfo): string {
  if (d.source.startsWith('builtin:')) return corpora.find((c) => `builtin:${c.id}` === d.source)?.checkpointName ?? d.name;
  return d.name;
}

/** The embedded corpora as the worker finds them. */
export function builtinCorpora() {
  return corpora.map((c) => ({
    id: c.id, checkpointName: c.checkpointName, url: new URL(c.file, document.baseURI).href,
    ...(c.rawFile ? { rawUrl: new URL(c.rawFile, document.baseURI).href } : {}),
  }));
}

export function requestData(): void {
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

async function takeTextFile(file: File): Promise<void> {
  clearError('data');
  chosenFile = { name: file.name, bytes: await file.arrayBuffer() };
  ui.fileName.textContent = file.name;
  ui.fileName.classList.add('chosen');
  ui.fileName.title = file.name;
  for (const r of ui.corpus) r.checked = r.value === 'file';
  requestData();
}

export function renderData(d: DataInfo): void {
  page.dataInfo = d;
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
  ui.charset.value = d.options.charset;
  showLowercase(d.options.lowercase);
  refreshFit();
  refreshButtons();
  renderRunState();
}

/** Files dropped anywhere: text to train on, or a model to load. */
function initDropping(): void {
  let dragDepth = 0;
  const hideOverlay = () => {
    ui.dropOverlay.hidden = true;
    ui.drop.classList.remove('over');
  };
  window.addEventListener('dragenter', (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    dragDepth++;
    ui.dropOverlay.hidden = false;
    ui.drop.classList.add('over');
  });
  window.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) hideOverlay();
  });
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    dragDepth = 0;
    hideOverlay();
    const file = e.dataTransfer?.files[0];
    if (!file) return;
    if (/\.safetensors$/i.test(file.name)) void loadModelFile(file);
    else void takeTextFile(file);
  });
}

export function initDataPanel(): void {
  for (const r of ui.corpus) {
    r.addEventListener('change', () => {
      const c = corpora.find((x) => x.id === r.value);
      if (c) showLowercase(c.lowercase);
      requestData();
    });
  }
  ui.level.addEventListener('change', () => {
    ui.maxVocabField.hidden = ui.level.value !== 'word';
    setSampleLength(ui.level.value === 'word' ? 100 : 300);
    requestData();
  });
  ui.lowercase.addEventListener('change', requestData);
  ui.charset.addEventListener('change', () => {
    // Leaving letters: back to the corpus's own default case.
    showLowercase(corpora.find((c) => c.id === corpusChoice())?.lowercase ?? ui.lowercase.checked);
    requestData();
  });
  let vocabTimer: number | undefined;
  ui.maxVocab.addEventListener('input', () => {
    clearTimeout(vocabTimer);
    vocabTimer = window.setTimeout(requestData, 400);
  });
  ui.chooseFile.addEventListener('click', () => ui.fileInput.click());
  ui.fileInput.addEventListener('change', () => {
    const f = ui.fileInput.files?.[0];
    if (f) void takeTextFile(f);
    ui.fileInput.value = '';
  });
  initDropping();
  showLowercase(corpora.find((c) => c.id === corpusChoice())?.lowercase ?? false);
}
