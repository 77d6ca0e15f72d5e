/**
 * Checkpoints stored as F16, BF16 or F64 (as PyTorch users save them) load as F32: every half and
 * bfloat16 bit pattern widens to the exact value (checked against the IEEE formula, all 65,536 of
 * each), F64 rounds to nearest-even and a value beyond float32's range is refused, NaN and
 * infinity get through the conversion and are then refused by the checkpoint's finite-value check,
 * and the CLI and page get one line saying what was converted.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { F32_MAX, describeConversions, f16BitsToF32Bits, readAsF32 } from '../../src/checkpoint/dtypes.ts';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/checkpoint/model-checkpoint.ts';
import { CheckpointError, decodeSafetensors } from '../../src/checkpoint/safetensors.ts';
import { f64Bytes, transcode, u16Bytes } from './transcode.ts';
import { cli } from '../cli/helpers.ts';
import { CpuBackend } from '../../src/cpu/backend.ts';
import { CharTokenizer } from '../../src/data/tokenizer.ts';
import { BatchStream } from '../../src/data/split.ts';
import type { ModelConfig, TrainConfig } from '../../src/model/config.ts';

const f32Bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0];
const fromF32Bits = (b: number): number => new Float32Array(new Uint32Array([b]).buffer)[0];

/** The IEEE value of a binary16 (e = 5, m = 10) or bfloat16 (e = 8, m = 7) pattern, in float64. */
function ieee(bits: number, expBits: number, mantBits: number): number {
  const bias = (1 << (expBits - 1)) - 1;
  const sign = bits >> (expBits + mantBits) ? -1 : 1;
  const exp = (bits >> mantBits) & ((1 << expBits) - 1);
  const mant = bits & ((1 << mantBits) - 1);
  if (exp === (1 << expBits) - 1) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * 2 ** (1 - bias - mantBits);
  return sign * (1 + mant / 2 ** mantBits) * 2 ** (exp - bias);
}

const ALL_16 = Array.from({ length: 65536 }, (_, i) => i);

describe('F16 -> F32', () => {
  it('widens every one of the 65,536 half patterns to its exact value (subnormals, signed zeros, infinities), NaN payloads kept', () => {
    const got = readAsF32(u16Bytes(ALL_16), 0, ALL_16.length, 'F16');
    const gotBits = new Uint32Array(got.buffer);
    const wrong: string[] = [];
    for (const h of ALL_16) {
      const want = ieee(h, 5, 10);
      // NaN: the payload moves up with the mantissa, the quiet bit lands on float32's quiet bit.
      // Anything else: every half is exactly a float32, which must hold the float64 value exactly.
      const ok = Number.isNaN(want)
        ? gotBits[h] === (((h & 0x8000) << 16 | 0x7f800000 | (h & 0x3ff) << 13) >>> 0)
        : Object.is(got[h], want);
      if (!ok) wrong.push(`0x${h.toString(16)}: ${got[h]} (0x${gotBits[h].toString(16)}) vs ${want}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('known values', () => {
    expect(fromF32Bits(f16BitsToF32Bits(0x3c00))).toBe(1);
    expect(fromF32Bits(f16BitsToF32Bits(0xc000))).toBe(-2);
    expect(fromF32Bits(f16BitsToF32Bits(0x7bff))).toBe(65504); // largest half
    expect(fromF32Bits(f16BitsToF32Bits(0x0400))).toBe(2 ** -14); // smallest normal
    expect(fromF32Bits(f16BitsToF32Bits(0x0001))).toBe(2 ** -24); // smallest subnormal
    expect(fromF32Bits(f16BitsToF32Bits(0x03ff))).toBe(1023 * 2 ** -24); // largest subnormal
    expect(Object.is(fromF32Bits(f16BitsToF32Bits(0x8000)), -0)).toBe(true);
    expect(fromF32Bits(f16BitsToF32Bits(0x7c00))).toBe(Infinity);
    expect(fromF32Bits(f16BitsToF32Bits(0xfc00))).toBe(-Infinity);
    expect(f16BitsToF32Bits(0x7e00)).toBe(0x7fc00000); // the canonical quiet NaN
  });
});

describe('BF16 -> F32', () => {
  it('widens every one of the 65,536 bfloat16 patterns without rounding: the exact value, the bits shifted up 16', () => {
    const got = readAsF32(u16Bytes(ALL_16), 0, ALL_16.length, 'BF16');
    const gotBits = new Uint32Array(got.buffer);
    const wrong: string[] = [];
    for (const b of ALL_16) {
      const want = ieee(b, 8, 7);
      // The bits of every pattern, NaNs included; and for numbers, the exact IEEE value.
      if (gotBits[b] !== (b << 16) >>> 0 || (!Number.isNaN(want) && !Object.is(got[b], want))) {
        wrong.push(`0x${b.toString(16)}: ${got[b]} vs ${want}`);
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(readAsF32(u16Bytes([0x4049, 0x0001, 0x7f7f]), 0, 3, 'BF16')).toEqual(new Float32Array([3.140625, 2 ** -133, 3.3895313892515355e38]));
  });
});

describe('F64 -> F32', () => {
  const narrow = (values: number[]) => Array.from(readAsF32(f64Bytes(values), 0, values.length, 'F64'));

  it('rounds to nearest, ties to even, including into and below the subnormals', () => {
    expect(narrow([1 / 3, 0.1, -2.5])).toEqual([Math.fround(1 / 3), Math.fround(0.1), -2.5]);
    expect(narrow([1 + 2 ** -24, 1 + 3 * 2 ** -24])).toEqual([1, 1 + 2 ** -22]); // ties: to the even mantissa
    expect(narrow([2 ** -149, 2 ** -150, 3 * 2 ** -151, 1e-50])).toEqual([2 ** -149, 0, 2 ** -149, 0]);
    expect(narrow([F32_MAX, -F32_MAX, 2 ** 128 - 2 ** 103 - 2 ** 76])).toEqual([F32_MAX, -F32_MAX, F32_MAX]); // just below the tie
  });

  it('refuses a finite value beyond float32 (it would become infinity), naming where it is', () => {
    for (const [value, at] of [[2 ** 128 - 2 ** 103, 1], [1e39, 1], [-1e300, 1], [Number.MAX_VALUE, 1]] as const) {
      expect(() => readAsF32(f64Bytes([0, value]), 0, 2, 'F64')).toThrow(`holds ${value} at index ${at}, beyond float32's range`);
    }
  });

  it('lets NaN and infinity through for the checkpoint layer to refuse', () => {
    const got = narrow([NaN, Infinity, -Infinity]);
    expect(got[0]).toBeNaN();
    expect(got.slice(1)).toEqual([Infinity, -Infinity]);
  });
});

describe('F32 reads as before', () => {
  it('bit for bit from any byte offset', () => {
    const src = new Float32Array([1.5, -0, NaN, 1e-45]);
    new Uint32Array(src.buffer)[2] = 0x7fc12345;
    const bytes = new Uint8Array(3 + 16);
    bytes.set(new Uint8Array(src.buffer), 3);
    expect(Array.from(new Uint32Array(readAsF32(bytes, 3, 4, 'F32').buffer))).toEqual(Array.from(new Uint32Array(src.buffer)));
  });
});

describe('the one line a load says', () => {
  it('counts per dtype, singular and plural', () => {
    expect(describeConversions({})).toBeUndefined();
    expect(describeConversions({ F16: 7 })).toBe('converted 7 F16 tensors to F32');
    expect(describeConversions({ BF16: 1 })).toBe('converted 1 BF16 tensor to F32');
    expect(describeConversions({ F16: 2, BF16: 1, F64: 3 })).toBe('converted 2 F16, 1 BF16 and 3 F64 tensors to F32');
  });
});

// ---------------------------------------------------------------------------------------------
// Whole checkpoints stored in another dtype.

const text = 'the quick brown fox jumps over the lazy dog. '.repeat(8);
const tokenizer = CharTokenizer.fromText(text);
const model: ModelConfig = { cell: 'lstm', vocabSize: tokenizer.vocab.length, hiddenSize: 6, layers: 2, dropout: 0 };
const train: TrainConfig = { seqLength: 5, batchSize: 2, optimizer: 'adam', learningRate: 0.01, clip: 5 };

async function f32Checkpoint(): Promise<Uint8Array> {
  const cpu = new CpuBackend(model, train, 5);
  const stream = new BatchStream(tokenizer.encode(text), train.batchSize, train.seqLength);
  for (let i = 0; i < 2; i++) await (await cpu.trainStep(stream.next())).loss;
  return encodeCheckpoint({
    model, train, tokenizer: tokenizer.toJSON(), state: await cpu.exportState(),
    progress: { iteration: 2, stream: stream.state(), seed: 5, corpus: 'test', lowercase: false },
  });
}

/** A half pattern by truncating a float32 in the half's normal range (tiny values flush to zero). */
const toF16 = (x: number): number => {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  if (exp >= 31) throw new Error('test value too large for a half');
  return sign | (exp << 10) | ((b >>> 13) & 0x3ff);
};
const toBF16 = (x: number): number => f32Bits(x) >>> 16;

describe('checkpoints stored as F16, BF16 or F64', () => {
  it('load with the values the conversion gives, say what was converted, and save back as F32', async () => {
    const f32 = await f32Checkpoint();
    const ref = decodeCheckpoint(f32, 'ref');
    expect(ref.conversion).toBeUndefined();
    const tensorCount = Object.keys(decodeSafetensors(f32).tensors).length;
    for (const [dtype, encode, widen] of [
      ['F64', (x: number) => x, (x: number) => x],
      ['F16', toF16, (x: number) => fromF32Bits(f16BitsToF32Bits(toF16(x)))],
      ['BF16', toBF16, (x: number) => fromF32Bits(toBF16(x) << 16)],
    ] as const) {
      const ck = decodeCheckpoint(transcode(f32, dtype, encode), `model-${dtype}.safetensors`);
      expect(ck.conversion).toBe(`converted ${tensorCount} ${dtype} tensors to F32`);
      // F64 holds every float32 exactly, so its round trip is bit for bit.
      expect(ck.state.params).toEqual(ref.state.params.map(widen));
      expect(ck.state.optV).toEqual(ref.state.optV.map(widen));
      expect(ck.state.hidden).toEqual(ref.state.hidden.map(widen));
      if (dtype === 'F64') expect(ck.state).toEqual(ref.state);
      // Saved again it is an ordinary F32 checkpoint that says nothing on loading.
      const again = decodeCheckpoint(encodeCheckpoint(ck), 'again');
      expect(again.conversion).toBeUndefined();
      expect(again.state).toEqual(ck.state);
    }
    // A mixture: only the parameters in half precision.
    const mixed = decodeCheckpoint(transcode(f32, 'F16', toF16, (n) => /^(rnn|decoder)\./.test(n)), 'mixed');
    expect(mixed.conversion).toBe(`converted ${2 * 4 + 2} F16 tensors to F32`);
  });

  it('the CLI says what it converted in one note line, then samples', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'rnn-dtypes-')), 'half.safetensors');
    const bytes = transcode(await f32Checkpoint(), 'BF16', toBF16);
    writeFileSync(path, bytes);
    const r = await cli(['sample', '--checkpoint', path, '--backend', 'cpu', '--length', '20', '--seed', '1']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe(`note: ${path}: converted ${Object.keys(decodeSafetensors(bytes).tensors).length} BF16 tensors to F32\n`);
    expect(r.out.length).toBeGreaterThan(1);
  });

  const refuse = (bytes: Uint8Array, name: string): string => {
    let caught: unknown;
    try {
      decodeCheckpoint(bytes, name);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CheckpointError);
    const message = (caught as Error).message;
    expect(message).not.toMatch(/[\r\n]/);
    expect(message).toContain(name);
    return message;
  };

  it('refuse a half-precision NaN or infinity as they refuse a float32 one, naming the tensor', async () => {
    const f32 = await f32Checkpoint();
    for (const [pattern, shown] of [[0x7e00, 'NaN'], [0xfc00, '-Infinity']] as const) {
      let first = true;
      const bytes = transcode(f32, 'F16', (x) => (first ? ((first = false), pattern) : toF16(x)), (n) => n === 'decoder.bias');
      expect(refuse(bytes, 'nan.safetensors')).toMatch(new RegExp(`tensor decoder.bias holds ${shown} at index 0 \\(damaged or diverged; not loaded\\)`));
    }
  });

  it('refuse an F64 value float32 cannot hold, in one line naming the file and the tensor', async () => {
    const f32 = await f32Checkpoint();
    let i = 0;
    const bytes = transcode(f32, 'F64', (x) => (i++ === 3 ? 1e39 : x), (n) => n === 'rnn.weight_hh_l1');
    expect(refuse(bytes, 'big.safetensors')).toMatch(/"big.safetensors": F64 tensor "rnn.weight_hh_l1" holds 1e\+39 at index 3, beyond float32's range \(largest 3.4028235e\+38\); not loaded$/);
  });
});
