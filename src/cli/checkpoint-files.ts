/**
 * Checkpoint files on disk: reading with one-line errors, atomic writes, and char-rnn's habit of
 * keeping the best model with its validation loss in its name.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, realpathSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { checkCheckpointSettings, decodeCheckpoint, encodeCheckpoint, type CheckpointData } from '../checkpoint/model-checkpoint.ts';
import { CheckpointError, checkSafetensorsHead, safetensorsHeaderLength } from '../checkpoint/safetensors.ts';
import { writeFileAtomic } from '../node/atomic-write.ts';
import { CliError } from './errors.ts';

/** Fields this CLI adds to a checkpoint's progress record (the engine stores them as given). */
export interface CliProgressExtras {
  /** The total iterations the run was asked for, so a resumed run knows where to stop. */
  iterations?: number;
  /** Tokens in the whole corpus: a resumed run on different text is refused instead of drifting. */
  tokens?: number;
  /** Best validation loss so far (the best-model file is named after it). */
  bestValLoss?: number;
  /**
   * The backend that trained it: --resume continues on it unless --backend is given, because the
   * CPU and the GPU agree to float32 rounding, not bit for bit.
   */
  backend?: 'cpu' | 'gpu';
  /** The GPU's matrix-product kernels by shape (src/gpu/tuner.ts): a resumed run keeps them, to continue bit for bit. */
  kernels?: Record<string, string>;
}

export type LoadedCheckpoint = ReturnType<typeof decodeCheckpoint> & { progress: CliProgressExtras };

const isPosInt = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0;

/** What a path that is not a regular file is, in words ("a FIFO (named pipe)"), or undefined for a regular file. */
export function notRegular(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The file's bytes, read whole only once its header has been read and checked against its size:
 * a large file that is no checkpoint (a disk image, a model in another format) fails at once.
 */
function readChecked(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const readAt = (n: number, at: number): Uint8Array => {
      const buf = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const k = readSync(fd, buf, got, n - got, at + got);
        if (k === 0) break;
        got += k;
      }
      return buf.subarray(0, got);
    };
    const first8 = readAt(Math.min(8, size), 0);
    const headerLength = safetensorsHeaderLength(first8, size, path);
    checkSafetensorsHead(Buffer.concat([first8, readAt(headerLength, 8)]), size, path);
    const all = readAt(size, 0);
    if (all.length !== size || fstatSync(fd).size !== size) {
      throw new CheckpointError(`${path}: changed while it was being read: try again when nothing writes to it`);
    }
    return all;
  } finally {
    closeSync(fd);
  }
}

/**
 * A checkpoint from disk, checked. `note` hears the one line about a conversion (tensors stored as
 * F16, BF16 or F64, read as F32), if there was one.
 */
export function readCheckpoint(path: string, note?: (line: string) => void): LoadedCheckpoint {
  let bytes: Uint8Array;
  try {
    // A FIFO would block the read forever and /dev/zero would never end: only regular files are read.
    const kind = notRegular(statSync(path));
    if (kind) throw new CheckpointError(`${path}: is ${kind}, give a .safetensors checkpoint file`);
    bytes = readChecked(path);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CheckpointError(`${path}: no such checkpoint file`);
    throw new CheckpointError(`${path}: cannot read it (${code ?? String(e)})`);
  }
  let ck: LoadedCheckpoint;
  try {
    ck = decodeCheckpoint(bytes, path) as LoadedCheckpoint;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    // Whatever the decoder did not foresee is still this file's fault: say so, in one line.
    throw new CheckpointError(`${path}: damaged checkpoint (${e instanceof Error ? e.message : String(e)})`);
  }
  // The engine checks the tensors and the settings any run relies on; the CLI's own extras are checked here.
  checkCheckpointSettings(ck, path);
  const p = ck.progress as LoadedCheckpoint['progress'];
  const bad = (what: string) => new CheckpointError(`${path}: damaged checkpoint (${what})`);
  if (p.backend !== undefined && p.backend !== 'cpu' && p.backend !== 'gpu') throw bad(`backend ${JSON.stringify(p.backend)}`);
  if (p.kernels !== undefined && (typeof p.kernels !== 'object' || p.kernels === null || Array.isArray(p.kernels) ||
    !Object.values(p.kernels).every((v) => typeof v === 'string'))) throw bad('kernel choice');
  for (const key of ['iterations', 'tokens'] as const) {
    if (p[key] !== undefined && !isPosInt(p[key])) throw bad(`${key} ${JSON.stringify(p[key])}`);
  }
  if (ck.conversion) note?.(`${path}: ${ck.conversion}`);
  return ck;
}

/**
 * Refuses, before any training, a checkpoint path that must not be written: the corpus itself
 * (through any symlink), anything but a regular file (a directory, a device node, a FIFO: the
 * atomic rename would replace it), or a place this process cannot create files in (found by
 * creating and removing a probe file there now, not at the first save after the work is done).
 * `inputs` are the files the run reads (the corpus), each refused as a target.
 */
/** checkOutputPath's refusal as a message, undefined when the path may be written. */
export function outputRefusal(path: string, inputs: readonly string[], flag: string): string | undefined {
  try {
    checkOutputPath(path, inputs, flag);
    return undefined;
  } catch (e) {
    if (e instanceof CliError) return e.message;
    throw e;
  }
}

export function checkOutputPath(path: string, inputs: readonly string[] = [], flag = '--checkpoint'): void {
  const refuse = (why: string): never => {
    throw new CliError(`${flag} ${path}: ${why}`);
  };
  const real = (p: string): string | undefined => {
    try {
      return realpathSync(p);
    } catch {
      return undefined;
    }
  };
  let st: Stats | undefined;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') refuse('cannot be written: a part of the path is a file, not a directory');
    if (code !== 'ENOENT') refuse(`cannot use it (${code ?? String(e)})`);
  }
  if (st) {
    const kind = notRegular(st);
    if (kind === 'a directory') refuse('is a directory: give a file name');
    if (kind) refuse(`is ${kind}, not a regular file: give a file name`);
    const target = real(path);
    for (const input of inputs) {
      const r = real(input);
      if (target !== undefined && r !== undefined && (r === target || statSync(r).ino === st.ino && statSync(r).dev === st.dev)) {
        refuse(`is the corpus ${input}: writing the checkpoint would replace the text; give another file name`);
      }
    }
  }
  // The save writes a temporary file beside the target and renames it (src/node/atomic-write.ts),
  // so what must work is creating a file in that directory.
  const dir = dirname(resolve(path));
  const probe = join(dir, `.${basename(path)}.probe-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(dir, { recursive: true });
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    refuse(`cannot be written: creating a file in ${dir} fails (${code ?? String(e)})`);
  }
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
