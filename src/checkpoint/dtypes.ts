/**
 * The floating-point dtypes a safetensors checkpoint may store, read into float32 (every backend
 * computes in float32). PyTorch users save in half precision (F16, BF16) or double (F64) as often
 * as in F32; the conversions are:
 *   F16  -> F32: exact (every half is a float), subnormals included; inf and NaN keep their sign
 *                and payload, and the checkpoint layer then refuses them as it refuses any
 *                non-finite value.
 *   BF16 -> F32: exact (bfloat16 is the upper half of a float32): the bits shifted up 16.
 *   F64  -> F32: rounded to nearest, ties to even (the ordinary float32 cast); a finite value
 *                that rounds beyond float32's range (|x| >= 2^128 - 2^103) is refused, since it
 *                would become infinity. Values below float32's smallest subnormal round to zero.
 * Reads little-endian (the format's byte order) on any host. Browser-safe, no imports.
 */

export type StoredDtype = 'F32' | 'F16' | 'BF16' | 'F64';

/** Bytes per element of each dtype a checkpoint may hold. */
export const DTYPE_BYTES: Readonly<Record<StoredDtype, number>> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

export const isStoredDtype = (d: string): d is StoredDtype => Object.hasOwn(DTYPE_BYTES, d);

/** A finite F64 value that does not fit in float32; `index` is its position in the tensor. */
export class OutOfF32Range extends Error {
  constructor(readonly index: number, readonly value: number) {
    super(`holds ${value} at index ${index}, beyond float32's range (largest ${F32_MAX.toExponential(7)})`);
  }
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export const F32_MAX = 3.4028234663852886e38;

/** The float32 bit pattern of an IEEE half-precision bit pattern, exactly. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // normal: rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // signed zero
  // Subnormal half (mant * 2^-24): normalise; each shift lowers the float32 exponent by one.
  let e = 113; // the exponent of 2^-14 (a half's subnormal scale) in float32's bias, before shifts
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/**
 * `count` elements of `dtype` starting at byte `pos` of `bytes`, as float32. Throws OutOfF32Range
 * for an F64 value float32 cannot hold.
 */
export function readAsF32(bytes: Uint8Array, pos: number, count: number, dtype: StoredDtype): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + pos, count * DTYPE_BYTES[dtype]);
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  switch (dtype) {
    case 'F32':
      // A byte copy where the host is little-endian: bit for bit (NaN payloads too) and fast.
      if (HOST_LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes.subarray(pos, pos + count * 4));
      else for (let i = 0; i < count; i++) bits[i] = view.getUint32(i * 4, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) bits[i] = f16BitsToF32Bits(view.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16 >>> 0;
      break;
    case 'F64':
      for (let i = 0; i < count; i++) {
        const x = view.getFloat64(i * 8, true);
        out[i] = x;
        // Non-finite inputs pass through: the checkpoint layer refuses them with the rest.
        if (!Number.isFinite(out[i]) && Number.isFinite(x)) throw new OutOfF32Range(i, x);
      }
      break;
  }
  return out;
}

/** "7 F16 tensors", "7 F16 and 1 F64 tensors": what a load converted, for one note line. */
export function describeConversions(converted: Readonly<Partial<Record<StoredDtype, number>>>): string | undefined {
  const parts = (Object.entries(converted) as [StoredDtype, number][])
    .filter(([d, n]) => d !== 'F32' && n > 0)
    .map(([d, n]) => `${n} ${d}`);
  if (parts.length === 0) return undefined;
  const total = (Object.entries(converted) as [StoredDtype, number][]).filter(([d]) => d !== 'F32').reduce((s, [, n]) => s + n, 0);
  const list = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
  return `converted ${list} tensor${total === 1 ? '' : 's'} to F32`;
}
