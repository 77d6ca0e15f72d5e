/**
 * Checkpoint files on disk: reading with one-line errors, atomic writes, and char-rnn's habit of
 * keeping the best model with its validation loss in its name.
 */
import { readFileSync, statSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointData } from '../checkpoint/model-checkpoint.ts';
import { CheckpointError } from '../checkpoint/safetensors.ts';
import { writeFileAtomic } from '../node/atomic-write.ts';

/** Fields this CLI adds to a checkpoint's progress record (the engine stores them as given). */
export interface CliProgressExtras {
  /** The total iterations the run was asked for, so a resumed run knows where to stop. */
  iterations?: number;
  /** Tokens in the whole corpus: a resumed run on different text is refused instead of drifting. */
  tokens?: number;
  /** Best validation loss so far (the best-model file is named after it). */
  bestValLoss?: number;
}

export type LoadedCheckpoint = ReturnType<typeof decodeCheckpoint> & { progress: CliProgressExtras };

const isPosInt = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0;

export function readCheckpoint(path: string): LoadedCheckpoint {
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) throw new CheckpointError(`${path}: is a directory, give a .safetensors checkpoint file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CheckpointError(`${path}: no such checkpoint file`);
    throw new CheckpointError(`${path}: cannot read it (${code ?? String(e)})`);
  }
  const ck = decodeCheckpoint(bytes, path) as LoadedCheckpoint;
  // The engine checks the tensors; the settings a resumed run relies on are checked here.
  const t = ck.train;
  const p = ck.progress;
  const bad = (what: string) => new CheckpointError(`${path}: damaged checkpoint (${what})`);
  if (!t || !isPosInt(t.batchSize) || !isPosInt(t.seqLength)) throw bad('batch size or sequence length');
  if (t.optimizer !== 'adam' && t.optimizer !== 'adagrad') throw bad(`optimizer ${JSON.stringify(t.optimizer)}`);
  if (!(t.learningRate > 0) || !(t.clip > 0)) throw bad('learning rate or clip');
  if (t.stateReset !== undefined && !(Number.isInteger(t.stateReset) && t.stateReset >= 0)) throw bad(`state reset ${JSON.stringify(t.stateReset)}`);
  if (!p || !Number.isInteger(p.iteration) || p.iteration < 0 || typeof p.stream !== 'object' || p.stream === null) {
    throw bad('training progress');
  }
  if (typeof p.corpus !== 'string' || typeof p.lowercase !== 'boolean') throw bad('corpus settings');
  if (!Number.isInteger(p.seed)) throw bad('seed');
  return ck;
}

export async function writeCheckpoint(path: string, data: CheckpointData & { progress: CliProgressExtras }): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(data));
}

const EXT = '.safetensors';
const stemOf = (path: string) => (path.endsWith(EXT) ? path.slice(0, -EXT.length) : path);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** checkpoints/reuters-char.safetensors -> checkpoints/reuters-char-val1.523.safetensors */
export function bestPath(mainPath: string, valLoss: number): string {
  return `${stemOf(mainPath)}-val${valLoss.toFixed(3)}${EXT}`;
}

/** A best-model file's name back to the run's main checkpoint name (for --resume's default). */
export function mainPathOf(path: string): string {
  return path.replace(/-val\d+(\.\d+)?\.safetensors$/, EXT);
}

/**
 * Removes the other best-model files of this checkpoint name whose loss is worse than `keepLoss`
 * (a better one, from an earlier run, is left alone). Returns what was removed.
 */
export async function pruneBest(mainPath: string, keepPath: string, keepLoss: number): Promise<string[]> {
  const dir = dirname(mainPath);
  const re = new RegExp(`^${escapeRe(basename(stemOf(mainPath)))}-val(\\d+(?:\\.\\d+)?)${escapeRe(EXT)}$`);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = re.exec(name);
    const full = join(dir, name);
    if (!m || full === join(dir, basename(keepPath))) continue;
    if (Number(m[1]) > Number(keepLoss.toFixed(3))) {
      await rm(full, { force: true });
      removed.push(full);
    }
  }
  return removed;
}
