/**
 * The safetensors container (https://github.com/huggingface/safetensors). Writes F32; reads F32,
 * and F16, BF16 and F64 converted to F32 on the way in (./dtypes.ts says how), as PyTorch users
 * save in any of them.
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 *   {"__metadata__": {string: string}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
 * padded with spaces, then the raw little-endian tensor bytes. Offsets are relative to the start
 * of the data section.
 *
 * The encoder writes what the reference (Rust) implementation writes, so PyTorch's
 * `safetensors.torch.load_file` reads our files: `__metadata__` first and left out when empty,
 * tensors contiguous in sorted name order, header padded to a multiple of 8 so the data section
 * starts 8-byte aligned. The decoder enforces the reference loader's rules as well (data
 * fully covered by the tensors, no holes, nothing after the last tensor), so a file that loads
 * here also loads there, and any damage to a checkpoint surfaces as one `CheckpointError`.
 *
 * Browser-safe: no Node imports.
 */

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsContents {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
  /** How many tensors were stored in each dtype other than F32 (and converted to F32 on reading). */
  converted: Partial<Record<StoredDtype, number>>;
}

import { DTYPE_BYTES, OutOfF32Range, isStoredDtype, readAsF32, type StoredDtype } from './dtypes.ts';

/** A checkpoint file that cannot be read. The message is always a single line naming the file. */
export class CheckpointError extends Error {
  constructor(message: string) {
    // Callers print this as one log/CLI line; header text quoted into it must not break that.
    super(message.replace(/[\r\n\v\f\u0085\u2028\u2029]+/g, ' '));
    this.name = 'CheckpointError';
  }
}

/** The reference loader refuses headers above this (MAX_HEADER_SIZE); so do we, before decoding it. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const F32_BYTES = 4;
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Encoding

export function encodeSafetensors(
  tensors: Record<string, Tensor>,
  metadata: Record<string, string>,
): Uint8Array {
  // Code-unit order is deterministic; the format itself does not care about the order.
  const names = Object.keys(tensors).sort();

  // The header is assembled by hand rather than with JSON.stringify(object): JS objects put
  // integer-like keys ("0", "10") first whatever the insertion order, which would break the
  // promise that header order matches data order.
  const entries: string[] = [];
  const metaKeys = Object.keys(metadata).sort();
  if (metaKeys.length > 0) {
    const fields = metaKeys.map((key) => {
      const value = metadata[key];
      if (typeof value !== 'string') {
        throw new TypeError(`safetensors metadata ${quote(key)} must be a string, got ${typeof value}`);
      }
      return `${jsonString(key, 'metadata key')}:${jsonString(value, 'metadata value')}`;
    });
    entries.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(',')}}`);
  }

  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) throw new TypeError(`a tensor cannot be called ${METADATA_KEY}`);
    const { shape, data } = tensors[name];
    if (!(data instanceof Float32Array)) {
      throw new TypeError(`tensor ${quote(name)}: data must be a Float32Array`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new TypeError(`tensor ${quote(name)}: shape must be an array of non-negative integers`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
      throw new RangeError(
        `tensor ${quote(name)}: shape [${shape.join(',')}] holds ${count} values but data has ${data.length}`,
      );
    }
    const end = offset + data.length * F32_BYTES;
    entries.push(
      `${jsonString(name, 'tensor name')}:{"dtype":"F32","shape":[${shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }

  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  // Spaces are JSON whitespace, so the padding is invisible to any parser; it makes 8 + N a
  // multiple of 8 so the data section starts aligned, as the reference writer does.
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);

  let pos = 8 + headerLength;
  for (const name of names) {
    const data = tensors[name].data;
    writeF32(out, pos, data);
    pos += data.length * F32_BYTES;
  }
  return out;
}

/**
 * JSON string literal for the header. Lone UTF-16 surrogates are refused: JSON.stringify would
 * write them as "\ud800" escapes, which the Rust loader rejects, so PyTorch could not open the file.
 */
function jsonString(s: string, what: string): string {
  if (/[\uD800-\uDFFF]/u.test(s)) {
    throw new TypeError(`safetensors ${what} ${quote(s)} contains a lone UTF-16 surrogate`);
  }
  return JSON.stringify(s);
}

function writeF32(out: Uint8Array, pos: number, data: Float32Array): void {
  if (HOST_LITTLE_ENDIAN) {
    // Byte copy rather than Float32Array.set: keeps NaN payloads bit-exact and needs no alignment.
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pos);
  } else {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < data.length; i++) view.setFloat32(pos + i * F32_BYTES, data[i], true);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

interface Entry {
  name: string;
  dtype: StoredDtype;
  shape: number[];
  begin: number;
  end: number;
}

const failFor = (name: string) => (reason: string): never => {
  throw new CheckpointError(`invalid safetensors file ${quote(name, 200)}: ${reason}`);
};

/**
 * The header's length from a file's first 8 bytes, checked against the file's length, so that a
 * large file that is no checkpoint is refused before it is read (see readSafetensorsHead).
 */
export function safetensorsHeaderLength(first8: Uint8Array, fileLength: number, name = 'checkpoint'): number {
  const fail = failFor(name);
  if (fileLength < 8 || first8.length < 8) fail(`file is ${fileLength} bytes, shorter than the 8-byte header length`);
  // Read as BigInt: a corrupt length can exceed 2^53, and Number would silently round it.
  const headerLength = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(fileLength - 8)) {
    fail(`header length ${headerLength} exceeds the ${fileLength - 8} bytes after it (file truncated?)`);
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds ${MAX_HEADER_BYTES}`);
  return Number(headerLength);
}

interface Layout {
  dataStart: number;
  entries: Entry[];
  metadata: Record<string, string>;
}

/**
 * Everything the header says, checked against a file of `fileLength` bytes: `head` needs only the
 * file's first 8 + header length bytes. Every way it can be wrong throws CheckpointError.
 */
export function checkSafetensorsHead(head: Uint8Array, fileLength: number, name = 'checkpoint'): void {
  layoutOf(head, fileLength, name);
}

function layoutOf(bytes: Uint8Array, fileLength: number, name: string): Layout {
  const fail = failFor(name);
  const dataStart = 8 + safetensorsHeaderLength(bytes, fileLength, name);
  if (bytes.length < dataStart) fail(`only ${bytes.length} of the header's ${dataStart} bytes were read`);

  const header = parseHeader(bytes.subarray(8, dataStart), fail);
  const metadata = parseMetadata(header[METADATA_KEY], fail);

  const entries: Entry[] = [];
  for (const [tensorName, info] of Object.entries(header)) {
    if (tensorName === METADATA_KEY) continue;
    entries.push(parseEntry(tensorName, info, fileLength, fail));
  }

  // The reference loader wants the data section tiled exactly: sorted by offsets, each tensor
  // starts where the previous one ended, the last one ends at the end of the file.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: Entry | undefined;
  for (const e of entries) {
    if (e.begin < covered) {
      fail(
        `tensor ${quote(e.name)} data_offsets [${e.begin},${e.end}] overlap tensor ${quote(previous!.name)} ` +
          `[${previous!.begin},${previous!.end}]`,
      );
    }
    if (e.begin > covered) {
      fail(`data bytes [${covered},${e.begin}) belong to no tensor (before tensor ${quote(e.name)})`);
    }
    covered = e.end;
    previous = e;
  }
  const dataLength = fileLength - dataStart;
  if (covered > dataLength) {
    fail(
      `truncated or out-of-range data: tensors need ${covered} data bytes (file size ${dataStart + covered}) ` +
        `but the file has ${dataLength} (file size ${fileLength})`,
    );
  }
  if (covered < dataLength) fail(`${dataLength - covered} trailing bytes after the last tensor`);
  return { dataStart, entries, metadata };
}

/**
 * Parses and validates a whole safetensors file. `name` (usually the path) only appears in error
 * messages. Every way the bytes can be wrong throws `CheckpointError`, nothing else.
 */
export function decodeSafetensors(bytes: Uint8Array, name = 'checkpoint'): SafetensorsContents {
  const fail = failFor(name);
  const { dataStart, entries, metadata } = layoutOf(bytes, bytes.length, name);

  const tensors: Record<string, Tensor> = {};
  const converted: SafetensorsContents['converted'] = {};
  for (const e of entries) {
    let data: Float32Array;
    try {
      data = readAsF32(bytes, dataStart + e.begin, (e.end - e.begin) / DTYPE_BYTES[e.dtype], e.dtype);
    } catch (err) {
      if (err instanceof OutOfF32Range) fail(`${e.dtype} tensor ${quote(e.name)} ${err.message}; not loaded`);
      throw err;
    }
    if (e.dtype !== 'F32') converted[e.dtype] = (converted[e.dtype] ?? 0) + 1;
    defineOwn(tensors, e.name, { shape: e.shape, data });
  }
  return { tensors, metadata, converted };
}

function parseHeader(raw: Uint8Array, fail: (reason: string) => never): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`header is not valid JSON (${truncate(err instanceof Error ? err.message : String(err), 120)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    return fail(`header is JSON ${header === null ? 'null' : Array.isArray(header) ? 'array' : typeof header}, not an object`);
  }
  return header as Record<string, unknown>;
}

function parseMetadata(raw: unknown, fail: (reason: string) => never): Record<string, string> {
  const metadata: Record<string, string> = {};
  // Absent or null both mean "no metadata" to the reference loader (an Option<HashMap>).
  if (raw === undefined || raw === null) return metadata;
  if (typeof raw !== 'object' || Array.isArray(raw)) fail(`${METADATA_KEY} is not an object`);
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof value !== 'string') {
      fail(`${METADATA_KEY} value for ${quote(key)} is ${describe(value)}, not a string`);
    }
    defineOwn(metadata, key, value as string);
  }
  return metadata;
}

function parseEntry(name: string, info: unknown, fileLength: number, fail: (reason: string) => never): Entry {
  const what = `tensor ${quote(name)}`;
  if (typeof info !== 'object' || info === null || Array.isArray(info)) fail(`${what} is not an object`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;

  if (typeof dtype !== 'string') fail(`${what} has no dtype string`);
  if (!isStoredDtype(dtype as string)) {
    fail(`${what} has unsupported dtype ${quote(dtype as string)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  const size = DTYPE_BYTES[dtype as StoredDtype];

  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`${what} shape ${truncate(JSON.stringify(shape) ?? 'missing', 80)} is not a list of non-negative integers`);
  }
  const dims = shape as number[];

  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    fail(`${what} data_offsets ${truncate(JSON.stringify(offsets) ?? 'missing', 80)} are not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];

  // Multiply with an early exit: a corrupt shape like [1e9, 1e9, 1e9] would lose precision in
  // floating point and could then "match" by accident. Nothing real can exceed the file size.
  // A zero anywhere wins, even after a dimension that alone would pass the limit.
  let count = dims.includes(0) ? 0 : 1;
  for (const d of dims) {
    if (count === 0 || count * size > fileLength) break;
    count *= d;
  }
  if (count * size !== end - begin) {
    const need = count * size > fileLength ? `more than the whole file (${fileLength} bytes)` : `${count * size} bytes`;
    fail(`${what} shape [${dims.join(',')}] needs ${need} but data_offsets [${begin},${end}] span ${end - begin}`);
  }
  return { name, dtype: dtype as StoredDtype, shape: dims.slice(), begin, end };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Plain assignment of the key "__proto__" would set the prototype instead of adding an entry. */
function defineOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Names come from untrusted headers: quote (escapes newlines) and bound their length in messages. */
function quote(s: string, max = 80): string {
  return JSON.stringify(truncate(s, max));
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
