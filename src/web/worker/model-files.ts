/**
 * The model as a file: the CLI's safetensors checkpoint (so files move between the page and the
 * command line), its download name, and the copy kept in the browser (IndexedDB in the worker).
 */
import { DEFAULT_CHARSET } from '../../data/text.ts';
import { encodeCheckpoint, type CheckpointData, type decodeCheckpoint, type TrainerProgress } from '../../checkpoint/model-checkpoint.ts';
import type { LoopCheckpoint } from '../../engine/training-loop.ts';
import type { Trainer } from '../../engine/trainer.ts';
import type { Backend } from '../../model/backend.ts';
import type { ModelConfig } from '../../model/config.ts';
import type { Placement, SavedModelInfo } from '../protocol.ts';
import { pageWording } from './errors.ts';
import { newTrainer, type Run } from './run.ts';
import type { PreparedData } from './text.ts';

export interface StoredModel {
  info: SavedModelInfo;
  bytes: ArrayBuffer;
}

/** Where the last model (and the user's own text, so it can keep training) survive reloads. */
export interface ModelStore {
  saveModel(m: StoredModel): Promise<void>;
  loadModel(): Promise<StoredModel | undefined>;
  forgetModel(): Promise<void>;
  saveText(name: string, bytes: ArrayBuffer): Promise<void>;
  loadText(name: string): Promise<ArrayBuffer | undefined>;
}

/** The user's file is kept with the model for resuming only up to this size. */
const MAX_STORED_TEXT_BYTES = 64 * 2 ** 20;

/** A file name made only of safe characters, whatever the corpus's name holds. */
function safeFileStem(s: string): string {
  return s.replace(/\.[A-Za-z0-9]{1,8}$/, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '').slice(0, 40) || 'text';
}

export function checkpointFilename(r: { corpus: string; model: ModelConfig; level: string; iteration: number; valLoss?: number }): string {
  const val = r.valLoss !== undefined && Number.isFinite(r.valLoss) ? `-val${r.valLoss.toFixed(3)}` : '';
  const depth = (r.model.layers ?? 1) > 1 ? `${r.model.layers}x` : '';
  return `${safeFileStem(r.corpus)}-${r.model.cell}${depth}${r.model.hiddenSize}-${r.level}-i${r.iteration}${val}.safetensors`;
}

export function fileNameOf(r: Run, ck: CheckpointData): string {
  return checkpointFilename({ corpus: r.corpus, model: r.model, level: r.tokenizer.level, iteration: ck.progress.iteration, valLoss: ck.progress.valLoss });
}

export function checkpointOf(r: Run, c: LoopCheckpoint): CheckpointData {
  return {
    model: r.model, train: r.train, tokenizer: r.tokenizer.toJSON(), state: c.state,
    progress: {
      ...structuredClone(c.progress), seed: r.seed, corpus: r.corpus, lowercase: r.lowercase, charset: r.charset,
      trainLoss: r.trainLoss, valLoss: r.valLoss, elapsed: c.elapsed,
    },
  };
}

/**
 * A loaded checkpoint as the worker's model, on a backend built for it. With its text here it
 * can train on from where it stopped; `note` says why not, or what had to give.
 */
export function runFromCheckpoint(
  ck: ReturnType<typeof decodeCheckpoint>, name: string, id: number, backend: Backend, placement: Placement, data?: PreparedData,
): { run: Run; note?: string } {
  try {
    backend.importState(ck.state);
  } catch (e) {
    backend.destroy();
    throw e;
  }
  const progress: TrainerProgress = { iteration: ck.progress.iteration ?? 0, stream: ck.progress.stream ?? { position: 0, epoch: 0 } };
  let trainer: Trainer | undefined;
  let note: string | undefined;
  if (data) {
    try {
      trainer = newTrainer(backend, data);
      try {
        trainer.restore(progress);
      } catch {
        trainer.restore({ iteration: progress.iteration, stream: { position: 0, epoch: 0 } });
        note = `its place in the text does not exist in ${data.text.name}, so training continues from the start of the text`;
      }
    } catch (e) {
      trainer = undefined;
      note = `it can sample but not train here: ${pageWording((e as Error).message)}`;
    }
  }
  const elapsed = ck.progress.elapsed ?? 0;
  const run: Run = {
    id, model: ck.model, train: ck.train, seed: ck.progress.seed ?? 1, tokenizer: ck.tokenizerObject,
    lowercase: ck.progress.lowercase ?? false, charset: ck.progress.charset ?? DEFAULT_CHARSET, corpus: ck.progress.corpus ?? name, text: data?.text, backend, placement,
    trainer, progress, elapsed, trainLoss: ck.progress.trainLoss, valLoss: ck.progress.valLoss,
    snapshot: { state: ck.state, progress, elapsed },
  };
  return { run, note };
}

/** Keeps the checkpoint (and the user's text, when small enough) in the browser; returns what the page shows of it. */
export async function storeCheckpoint(store: ModelStore, r: Run, ck: CheckpointData, encoded?: Uint8Array): Promise<SavedModelInfo> {
  const bytes = encoded ?? encodeCheckpoint(ck);
  const info: SavedModelInfo = { name: fileNameOf(r, ck), savedAt: Date.now(), iteration: ck.progress.iteration, bytes: bytes.byteLength };
  const buf = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer as ArrayBuffer : bytes.slice().buffer;
  if (r.text?.fileBytes && r.text.fileBytes.byteLength <= MAX_STORED_TEXT_BYTES) {
    await store.saveText(r.text.name, r.text.fileBytes);
  }
  await store.saveModel({ info, bytes: buf });
  return info;
}
