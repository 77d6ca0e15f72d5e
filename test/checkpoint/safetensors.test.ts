import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  type Tensor,
} from '../../src/checkpoint/safetensors.ts';

// ---------------------------------------------------------------------------------------------
// Helpers

/** Deterministic values so failures reproduce; no dependency on the project's Rng. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32 - 0.5) * 8;
  }
  return out;
}

function tensor(shape: number[], seed = 1): Tensor {
  return { shape, data: values(shape.reduce((a, b) => a * b, 1), seed) };
}

/** Bit patterns, so NaN payloads and -0 count as equal only when identical. */
function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.slice().buffer));
}

/** A file from a raw header string and data bytes, for crafting damage the encoder won't make. */
function rawFile(header: string, data: Uint8Array | number = 0, pad = true): Uint8Array {
  let json = new TextEncoder().encode(header);
  if (pad && json.length % 8 !== 0) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

function withHeaderLength(bytes: Uint8Array, n: bigint): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

/** Decoding must throw CheckpointError, on one line, naming the file; returns the message. */
function checkpointError(bytes: Uint8Array, name = 'run/ckpt.safetensors'): string {
  let caught: unknown;
  try {
    decodeSafetensors(bytes, name);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CheckpointError);
  const message = (caught as Error).message;
  expect(message).not.toMatch(/[\r\n\u2028\u2029]/);
  expect(message).toContain(JSON.stringify(name));
  return message;
}

const F32 = (shape: number[], begin: number, end: number) =>
  ({ dtype: 'F32', shape, data_offsets: [begin, end] }) as const;

// ---------------------------------------------------------------------------------------------

describe('encode/decode round trip', () => {
  it('keeps odd shapes, scalars, empty tensors and every bit of the data', () => {
    const special = new Float32Array([NaN, -0, 0, Infinity, -Infinity, 1e-45, -3.4028234663852886e38, 1 / 3]);
    // Unusual NaN payload: must survive byte-for-byte.
    new Uint32Array(special.buffer)[0] = 0x7fc12345;
    const tensors: Record<string, Tensor> = {
      'rnn.weight_ih_l0': tensor([7, 13], 2),
      'rnn.weight_hh_l0': tensor([13, 13], 3),
      scalar: tensor([], 4),
      empty: tensor([0], 5),
      emptyMiddle: tensor([3, 0, 2], 6),
      ones: tensor([1, 1, 1, 1], 7),
      odd: tensor([3, 5, 7], 8),
      special: { shape: [2, 4], data: special },
      // Integer-like names are where JS object key order differs from insertion order.
      '10': tensor([1], 9),
      '2': tensor([3], 10),
      'ünïcødé 漢字 🎉': tensor([2], 11),
    };
    const bytes = encodeSafetensors(tensors, { step: '1200', note: 'hello' });
    const { tensors: out, metadata } = decodeSafetensors(bytes);

    expect(metadata).toEqual({ step: '1200', note: 'hello' });
    expect(Object.keys(out).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      expect(out[name].shape, name).toEqual(t.shape);
      expect(out[name].data).toBeInstanceOf(Float32Array);
      expect(bits(out[name].data), name).toEqual(bits(t.data));
    }
  });

  it('writes tensors contiguously in sorted name order', () => {
    const bytes = encodeSafetensors({ c: tensor([1]), a: tensor([2]), b: tensor([3]) }, {});
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(Object.keys(header)).toEqual(['a', 'b', 'c']);
    expect(header.a.data_offsets).toEqual([0, 8]);
    expect(header.b.data_offsets).toEqual([8, 20]);
    expect(header.c.data_offsets).toEqual([20, 24]);
  });

  it('handles empty metadata and no tensors at all', () => {
    const bytes = encodeSafetensors({}, {});
    expect(new TextDecoder().decode(bytes.subarray(8)).trimEnd()).toBe('{}');
    expect(decodeSafetensors(bytes)).toEqual({ tensors: {}, metadata: {}, converted: {} });
    const one = decodeSafetensors(encodeSafetensors({ w: tensor([2, 2]) }, {}));
    expect(one.metadata).toEqual({});
  });

  it('keeps unicode and JSON-special characters in metadata', () => {
    const metadata = {
      'emoji 🎉': 'ß∂ƒ 漢字 \u2028',
      quotes: 'say "hi"\\ back\nslash\ttab\u0000nul',
      '': 'empty key',
      config: JSON.stringify({ hiddenSize: 128, lr: 0.002 }),
    };
    expect(decodeSafetensors(encodeSafetensors({ w: tensor([1]) }, metadata)).metadata).toEqual(metadata);
  });

  it('treats a tensor or metadata key called __proto__ as a plain name', () => {
    const tensors = JSON.parse('{"__proto__": 0}') as Record<string, Tensor>;
    tensors['__proto__'] = tensor([2]);
    const metadata = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
    const out = decodeSafetensors(encodeSafetensors(tensors, metadata));
    expect(Object.keys(out.tensors)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(out.tensors)).toBe(Object.prototype);
    expect(bits(out.tensors['__proto__'].data)).toEqual(bits(tensors['__proto__'].data));
    expect(Object.getOwnPropertyDescriptor(out.metadata, '__proto__')?.value).toBe('x');
  });

  it('reads from an unaligned, offset view and copies the data out', () => {
    const t = tensor([5, 3], 42);
    const file = encodeSafetensors({ w: t }, { a: 'b' });
    for (const shift of [1, 2, 3, 5]) {
      const backing = new Uint8Array(file.length + shift + 7).fill(0xee);
      backing.set(file, shift);
      const view = backing.subarray(shift, shift + file.length);
      const out = decodeSafetensors(view).tensors.w;
      expect(bits(out.data)).toEqual(bits(t.data));
      expect(out.data.buffer).not.toBe(backing.buffer);
      backing.fill(0); // the result must not alias the input
      expect(bits(out.data)).toEqual(bits(t.data));
    }
  });

  it('reads from a Node Buffer in a shared pool, whose slice() does not copy', () => {
    const t = tensor([4, 7], 11);
    const file = encodeSafetensors({ w: t }, {});
    // Small Buffers come from one pool; Buffer.slice returns a view of it, not a copy.
    const pooled = Buffer.from(file);
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length);
    const out = decodeSafetensors(pooled).tensors.w;
    expect(out.data.length).toBe(t.data.length);
    expect(bits(out.data)).toEqual(bits(t.data));
  });

  it('encodes from a Float32Array that is a view into a larger buffer', () => {
    const big = values(20, 9);
    const view = big.subarray(5, 11);
    const out = decodeSafetensors(encodeSafetensors({ v: { shape: [2, 3], data: view } }, {}));
    expect(bits(out.tensors.v.data)).toEqual(bits(view));
  });

  it('always starts the data section on an 8-byte boundary', () => {
    for (let len = 0; len < 17; len++) {
      const bytes = encodeSafetensors({ ['n'.repeat(len)]: tensor([1]) }, {});
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect((8 + n) % 8).toBe(0);
      expect(bytes.length).toBe(8 + n + 4);
    }
  });

  it('refuses input it cannot write faithfully', () => {
    expect(() => encodeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }, {})).toThrow(RangeError);
    expect(() => encodeSafetensors({ w: { shape: [-1], data: new Float32Array(0) } }, {})).toThrow(TypeError);
    expect(() => encodeSafetensors({ w: { shape: [2], data: new Float64Array(2) as unknown as Float32Array } }, {})).toThrow(
      TypeError,
    );
    expect(() => encodeSafetensors({ __metadata__: tensor([1]) }, {})).toThrow(TypeError);
    // A lone surrogate would be written as "\ud800", which the Rust loader (PyTorch) rejects.
    expect(() => encodeSafetensors({ 'a\ud800': tensor([1]) }, {})).toThrow(TypeError);
    expect(() => encodeSafetensors({}, { k: 'v\udc00' })).toThrow(TypeError);
    expect(() => encodeSafetensors({}, { k: 1 as unknown as string })).toThrow(TypeError);
  });
});

describe('byte layout', () => {
  it('matches a hand-computed file exactly', () => {
    const bytes = encodeSafetensors(
      { b: { shape: [2], data: new Float32Array([1, -2]) }, a: { shape: [1, 1], data: new Float32Array([1.5]) } },
      { format: 'pt' },
    );
    const json =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    expect(json.length).toBe(141);
    const expected = [
      ...[144, 0, 0, 0, 0, 0, 0, 0], // u64 LE header length: 141 rounded up to 144
      ...new TextEncoder().encode(json),
      0x20, 0x20, 0x20, // padding: spaces, so the JSON stays valid
      ...[0x00, 0x00, 0xc0, 0x3f], // a = 1.5
      ...[0x00, 0x00, 0x80, 0x3f], // b[0] = 1
      ...[0x00, 0x00, 0x00, 0xc0], // b[1] = -2
    ];
    expect(bytes.length).toBe(164);
    expect(Array.from(bytes)).toEqual(expected);
  });

  it('matches what the reference writer produces for save_file({"a": torch.zeros(2)})', () => {
    // serde_json compact output, field order dtype/shape/data_offsets, no __metadata__ when
    // there is none, space padding to a multiple of 8 (54 -> 56).
    const bytes = encodeSafetensors({ a: { shape: [2], data: new Float32Array(2) } }, {});
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  ';
    expect(Array.from(bytes)).toEqual([56, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode(json), ...new Array(8).fill(0)]);
  });
});

describe('corrupt files throw a one-line CheckpointError', () => {
  const good = encodeSafetensors({ a: tensor([2, 3]), b: tensor([4]) }, { step: '7' });

  it('file shorter than 8 bytes', () => {
    for (const n of [0, 1, 7]) expect(checkpointError(new Uint8Array(n))).toMatch(/shorter than the 8-byte/);
  });

  it('header length larger than the file', () => {
    expect(checkpointError(withHeaderLength(good, BigInt(good.length - 8 + 1)))).toMatch(/header length .* exceeds/);
    expect(checkpointError(withHeaderLength(good, 2n ** 64n - 1n))).toMatch(/header length 18446744073709551615 exceeds/);
    expect(checkpointError(withHeaderLength(new Uint8Array(8), 1n))).toMatch(/exceeds the 0 bytes/);
  });

  it('header not UTF-8, not JSON, or not an object', () => {
    const notUtf8 = rawFile('{"a":"x"}');
    notUtf8[8 + 6] = 0xff; // the "x"
    expect(checkpointError(notUtf8)).toMatch(/header is not valid UTF-8/);
    expect(checkpointError(rawFile('{nope'))).toMatch(/not valid JSON/);
    expect(checkpointError(rawFile(''))).toMatch(/not valid JSON/);
    expect(checkpointError(rawFile('{"a":\n{'))).toMatch(/not valid JSON/);
    expect(checkpointError(rawFile('[]'))).toMatch(/JSON array, not an object/);
    expect(checkpointError(rawFile('null'))).toMatch(/JSON null, not an object/);
    expect(checkpointError(rawFile('42'))).toMatch(/JSON number, not an object/);
    expect(checkpointError(rawFile('"x"'))).toMatch(/JSON string, not an object/);
  });

  it('tensor entry that is not an object', () => {
    expect(checkpointError(rawFile('{"a": 3}'))).toMatch(/tensor "a" is not an object/);
    expect(checkpointError(rawFile('{"a": null}'))).toMatch(/tensor "a" is not an object/);
  });

  it('unsupported or missing dtype', () => {
    // F16, BF16 and F64 load converted (test/checkpoint/dtypes.test.ts); integers, F8 and a
    // lowercase spelling do not.
    for (const dtype of ['I32', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'f32', 'f16']) {
      const h = JSON.stringify({ a: { ...F32([2], 0, 8), dtype } });
      expect(checkpointError(rawFile(h, 8))).toMatch(new RegExp(`unsupported dtype "${dtype}" \\(supported: F32, F16, BF16, F64\\)`));
    }
    expect(checkpointError(rawFile('{"a":{"shape":[2],"data_offsets":[0,8]}}', 8))).toMatch(/no dtype/);
    expect(checkpointError(rawFile('{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}', 8))).toMatch(/no dtype/);
  });

  it('invalid shapes', () => {
    for (const shape of ['[-1]', '[1.5]', '["2"]', '2', 'null', '[9007199254740993]']) {
      const h = `{"a":{"dtype":"F32","shape":${shape},"data_offsets":[0,8]}}`;
      expect(checkpointError(rawFile(h, 8))).toMatch(/shape .* is not a list of non-negative integers/);
    }
    expect(checkpointError(rawFile('{"a":{"dtype":"F32","data_offsets":[0,8]}}', 8))).toMatch(/shape missing/);
  });

  it('shape product not matching the data_offsets span', () => {
    expect(checkpointError(rawFile(JSON.stringify({ a: F32([3], 0, 8) }), 8))).toMatch(
      /tensor "a" shape \[3\] needs 12 bytes but data_offsets \[0,8\] span 8/,
    );
    expect(checkpointError(rawFile(JSON.stringify({ a: F32([2, 2], 0, 8) }), 8))).toMatch(/needs 16 bytes/);
    // A shape whose product is astronomically large must not round its way into a match.
    const huge = JSON.stringify({ a: F32([2 ** 30, 2 ** 30, 2 ** 30], 0, 8) });
    expect(checkpointError(rawFile(huge, 8))).toMatch(/more than the whole file/);
    // A zero dimension wins even after a huge one.
    expect(decodeSafetensors(rawFile(JSON.stringify({ a: F32([2 ** 40, 0], 0, 0) }))).tensors.a.data.length).toBe(0);
  });

  it('malformed data_offsets', () => {
    for (const offsets of ['[8,0]', '[-4,4]', '[0]', '[0,4,8]', '[0.5,4.5]', '"0,8"', 'null']) {
      const h = `{"a":{"dtype":"F32","shape":[1],"data_offsets":${offsets}}}`;
      expect(checkpointError(rawFile(h, 8))).toMatch(/data_offsets .* are not \[begin, end\]/);
    }
  });

  it('data_offsets outside the data section', () => {
    expect(checkpointError(rawFile(JSON.stringify({ a: F32([2], 0, 8) }), 4))).toMatch(
      /tensors need 8 data bytes .* but the file has 4/,
    );
    expect(checkpointError(rawFile(JSON.stringify({ a: F32([1], 0, 4), b: F32([1], 4, 8) }), 4))).toMatch(
      /truncated or out-of-range/,
    );
  });

  it('overlapping data_offsets', () => {
    const h = JSON.stringify({ a: F32([2], 0, 8), b: F32([2], 4, 12) });
    expect(checkpointError(rawFile(h, 12))).toMatch(/tensor "b" data_offsets \[4,12\] overlap tensor "a" \[0,8\]/);
    const same = JSON.stringify({ a: F32([2], 0, 8), b: F32([2], 0, 8) });
    expect(checkpointError(rawFile(same, 8))).toMatch(/overlap/);
  });

  it('holes and trailing bytes in the data section (the reference loader rejects both)', () => {
    const gap = JSON.stringify({ a: F32([1], 0, 4), b: F32([1], 8, 12) });
    expect(checkpointError(rawFile(gap, 12))).toMatch(/data bytes \[4,8\) belong to no tensor/);
    const late = JSON.stringify({ a: F32([1], 4, 8) });
    expect(checkpointError(rawFile(late, 8))).toMatch(/\[0,4\) belong to no tensor/);
    expect(checkpointError(rawFile(JSON.stringify({ a: F32([1], 0, 4) }), 5))).toMatch(/1 trailing bytes/);
    const withJunk = new Uint8Array(good.length + 3);
    withJunk.set(good);
    expect(checkpointError(withJunk)).toMatch(/3 trailing bytes/);
  });

  it('accepts empty tensors sharing an offset with a neighbour', () => {
    const h = JSON.stringify({ e: F32([0], 4, 4), a: F32([1], 0, 4), b: F32([1], 4, 8), z: F32([2, 0], 8, 8) });
    const out = decodeSafetensors(rawFile(h, 8));
    expect(Object.keys(out.tensors).sort()).toEqual(['a', 'b', 'e', 'z']);
  });

  it('metadata that is not a string-to-string object', () => {
    for (const meta of ['{"k":1}', '{"k":null}', '{"k":["v"]}', '{"ok":"v","k":{"x":"y"}}', '{"k":true}']) {
      expect(checkpointError(rawFile(`{"__metadata__":${meta}}`))).toMatch(/__metadata__ value for "k" is .*, not a string/);
    }
    expect(checkpointError(rawFile('{"__metadata__":["a"]}'))).toMatch(/__metadata__ is not an object/);
    expect(checkpointError(rawFile('{"__metadata__":"a"}'))).toMatch(/__metadata__ is not an object/);
    // null means "none" to the reference loader.
    expect(decodeSafetensors(rawFile('{"__metadata__":null}')).metadata).toEqual({});
  });

  it('keeps the message on one line whatever the file and tensor names hold', () => {
    const message = checkpointError(rawFile(JSON.stringify({ 'x\ny\u2028z': { ...F32([1], 0, 4), dtype: 'I8' } }), 4), 'dir\nname\r.st');
    expect(message).toMatch(/^invalid safetensors file "dir\\nname\\r.st": tensor "x\\ny z" has unsupported dtype "I8"/);
    // The default name is used when none is given.
    expect(() => decodeSafetensors(new Uint8Array(3))).toThrow(/"checkpoint"/);
    // Long names are cut short rather than flooding the log.
    expect(checkpointError(rawFile(JSON.stringify({ ['n'.repeat(5000)]: 1 }))).length).toBeLessThan(400);
  });

  it('truncation at every cut point throws CheckpointError', () => {
    const file = encodeSafetensors(
      { 'rnn.weight_ih_l0': tensor([3, 5]), 'rnn.bias': tensor([3]), empty: tensor([0]), s: tensor([]) },
      { step: '12', config: '{"hiddenSize":3}', ünï: 'cødé' },
    );
    for (let cut = 0; cut < file.length; cut++) checkpointError(file.subarray(0, cut));
    // Also from an unaligned offset into a larger buffer.
    const backing = new Uint8Array(file.length + 1);
    backing.set(file, 1);
    for (let cut = 0; cut < file.length; cut++) checkpointError(backing.subarray(1, 1 + cut));
  });

  it('damaged header bytes give a result or CheckpointError, never another exception', () => {
    const file = encodeSafetensors({ a: tensor([2, 3]), b: tensor([1]) }, { k: 'v' });
    const headerEnd = 8 + Number(new DataView(file.buffer).getBigUint64(0, true));
    let failures = 0;
    for (let pos = 0; pos < headerEnd; pos++) {
      for (const value of [0x00, 0x01, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x7b, 0x7d, 0x80, 0xff]) {
        if (file[pos] === value) continue;
        const damaged = file.slice();
        damaged[pos] = value;
        try {
          decodeSafetensors(damaged, 'fuzz');
        } catch (err) {
          expect(err).toBeInstanceOf(CheckpointError);
          expect((err as Error).message).not.toMatch(/[\r\n]/);
          failures++;
        }
      }
    }
    expect(failures).toBeGreaterThan(0);
  });
});
