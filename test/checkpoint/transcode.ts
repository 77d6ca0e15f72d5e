/** Test helper: a safetensors file rewritten with its tensors stored in another dtype. */
import { expect } from 'vitest';
import { DTYPE_BYTES, type StoredDtype } from '../../src/checkpoint/dtypes.ts';
import { decodeSafetensors } from '../../src/checkpoint/safetensors.ts';

/** Little-endian bytes of 16-bit patterns or float64 values. */
export function u16Bytes(patterns: number[]): Uint8Array {
  const out = new Uint8Array(patterns.length * 2);
  patterns.forEach((p, i) => new DataView(out.buffer).setUint16(i * 2, p, true));
  return out;
}
export function f64Bytes(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  values.forEach((v, i) => new DataView(out.buffer).setFloat64(i * 8, v, true));
  return out;
}

/**
 * The same file with the tensors `pick` chooses stored as `dtype`: each float32 value written by
 * `encode` (its pattern for F16/BF16, its float64 value for F64). Header and order as the encoder's.
 */
export function transcode(file: Uint8Array, dtype: StoredDtype, encode: (x: number) => number, pick: (name: string) => boolean = () => true): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(file);
  const names = Object.keys(tensors).sort();
  const entries: string[] = [`"__metadata__":${JSON.stringify(metadata)}`];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const { shape, data } = tensors[name];
    const d = pick(name) ? dtype : 'F32';
    const bytes = d === 'F32' ? new Uint8Array(data.slice().buffer)
      : d === 'F64' ? f64Bytes(Array.from(data, encode)) : u16Bytes(Array.from(data, encode));
    entries.push(`${JSON.stringify(name)}:{"dtype":"${d}","shape":${JSON.stringify(shape)},"data_offsets":[${offset},${offset + bytes.length}]}`);
    chunks.push(bytes);
    offset += bytes.length;
    expect(bytes.length).toBe(data.length * DTYPE_BYTES[d]);
  }
  const header = new TextEncoder().encode(`{${entries.join(',')}}`);
  const out = new Uint8Array(8 + header.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  let pos = 8 + header.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/** Every tensor as F64: exact, since every float32 is a float64. */
export const asF64 = (file: Uint8Array): Uint8Array => transcode(file, 'F64', (x) => x);
