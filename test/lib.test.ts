/**
 * The public API (src/lib) in-process, on what a consumer relies on beyond "it runs" (that is
 * test/package.test.ts): the AbortSignal stops after an iteration and leaves a usable model,
 * save/load round-trips the whole state bit for bit and continues training exactly, fit resumes
 * its streams, the research level agrees with the engine, a caller's GPUDevice survives dispose,
 * and bad input is one clear error.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createModel, createTokenizer, loadModel, type RNNModel, type Tokenizer, type TrainingState } from '../src/lib/index.ts';
import { gpu, noGpu } from './gpu.ts';

const TEXT = 'the cat sat on the mat. the dog sat on the log. '.repeat(60);
const SMALL = { hiddenSize: 12, seqLength: 8, batchSize: 4, cell: 'gru', numLayers: 2, dropout: 0.1 } as const;
const open: RNNModel[] = [];
async function model(backend: 'cpu' | 'gpu', extra: object = {}): Promise<RNNModel> {
  const m = await createModel({ tokenizer: createTokenizer(TEXT), backend, ...SMALL, ...extra });
  open.push(m);
  return m;
}
afterAll(() => {
  for (const m of open) m.dispose();
});

const same = (a: TrainingState, b: TrainingState) => {
  for (const k of ['params', 'optM', 'optV', 'hidden'] as const) expect(a[k], k).toEqual(b[k]);
  expect(a.optStep).toBe(b.optStep);
};

describe.each([['cpu'], ['gpu']] as const)('the library on the %s', (backend) => {
  it.skipIf(backend === 'gpu' && noGpu)('an aborted signal stops fit after the iteration in flight; the model stays usable', async () => {
    const m = await model(backend);
    const stop = new AbortController();
    const seen: number[] = [];
    const r = await m.fit(TEXT, { iterations: 1000, signal: stop.signal, onProgress: (p) => {
      seen.push(p.iteration);
      if (p.iteration === 5) stop.abort();
    } });
    expect(r.stopped).toBe(true);
    expect(r.iteration).toBeGreaterThanOrEqual(5);
    expect(r.iteration).toBeLessThan(20); // a few in flight at most, not the 1000 asked for
    expect(seen).toEqual(Array.from({ length: r.iteration }, (_, i) => i + 1));
    expect(m.iteration).toBe(r.iteration);
    expect(Number.isFinite(r.valLoss)).toBe(true);
    const already = await m.fit(TEXT, { iterations: 10, signal: AbortSignal.abort() });
    expect(already).toMatchObject({ stopped: true, iteration: r.iteration });
    expect(await m.sample({ length: 10, seed: 1 })).toHaveLength(10);
  });

  it.skipIf(backend === 'gpu' && noGpu)('save and load: the whole state bit for bit, and training continues exactly as without the round trip', async () => {
    const a = await model(backend, { seed: 3 });
    await a.fit(TEXT, { iterations: 6 });
    const b = await loadModel(await a.save(), { backend });
    open.push(b);
    expect(b.config).toEqual(a.config);
    expect(b.iteration).toBe(6);
    expect(b.tokenizer.vocab).toEqual(a.tokenizer.vocab);
    same(await b.exportState(), await a.exportState());
    // Same text: both continue the streams where they stopped, with the same dropout masks.
    const ra = await a.fit(TEXT, { iterations: 4, valFraction: 0.05 });
    const rb = await b.fit(TEXT, { iterations: 4, valFraction: 0.05 });
    expect(rb.loss).toBe(ra.loss);
    same(await b.exportState(), await a.exportState());
    expect(await b.sample({ prime: 'the ', length: 20, seed: 9 })).toBe(await a.sample({ prime: 'the ', length: 20, seed: 9 }));
  });

  it.skipIf(backend === 'gpu' && noGpu)('sampling controls and samples side by side: the first of many is the single sample, top-k 1 is the argmax', async () => {
    const m = await model(backend, { seed: 5 });
    await m.fit(TEXT, { iterations: 8 });
    const opts = { prime: 'the ', length: 30, seed: 4, topP: 0.9, repetitionPenalty: 1.3, repetitionWindow: 8 };
    const many = await m.sampleMany(3, opts);
    expect(many).toHaveLength(3);
    expect(many[0]).toBe(await m.sample(opts));
    const greedy = await m.sampleMany(2, { prime: 'the ', length: 30, seed: 4, topK: 1 });
    expect(greedy[0]).toBe(await m.sample({ prime: 'the ', length: 30, argmax: true }));
    expect(greedy[1]).toBe(greedy[0]);
    await expect(m.sample({ topP: 0 })).rejects.toThrow(/top-p must be in \(0, 1\]/);
    await expect(m.sampleMany(0)).rejects.toThrow(/count must be a positive integer/);
  });

  it.skipIf(backend === 'gpu' && noGpu)('lossAndGradients leaves the state alone; importState(exportState()) is the identity', async () => {
    const m = await model(backend);
    const before = await m.exportState();
    const n = m.config.seqLength * m.config.batchSize;
    const ids = m.tokenizer.encode(TEXT.slice(0, n + 1));
    const g = await m.lossAndGradients({ inputs: ids.slice(0, n), targets: ids.slice(1, n + 1) });
    expect(g.loss).toBeGreaterThan(0);
    expect(g.grads).toHaveLength(before.params.length);
    expect(g.dh0).toHaveLength(m.config.numLayers * m.config.batchSize * m.config.hiddenSize);
    same(await m.exportState(), before);
    m.importState(before);
    same(await m.exportState(), before);
    const dict = await m.stateDict();
    const layout = m.parameters();
    expect(Object.keys(dict)).toEqual(layout.map((p) => p.name));
    expect(dict['rnn.weight_hh_l1']!.shape).toEqual([3 * 12, 12]);
    expect(dict['decoder.bias']!.data).toEqual(before.params.slice(layout.at(-1)!.offset, layout.at(-1)!.offset + layout.at(-1)!.size));
    await expect(async () => m.lossAndGradients({ inputs: ids.slice(0, 3), targets: ids.slice(1, 4) })).rejects.toThrow(/seqLength x batchSize = 32/);
  });
});

describe('the same model on the CPU and the GPU', () => {
  it.skipIf(noGpu)('agree on the loss and gradients of a chunk (float32 rounding) through the public API', async () => {
    const [c, g] = [await model('cpu', { dropout: 0 }), await model('gpu', { dropout: 0 })];
    g.importState(await c.exportState());
    const n = 32;
    const ids = c.tokenizer.encode(TEXT.slice(5, 5 + n + 1));
    const chunk = { inputs: ids.slice(0, n), targets: ids.slice(1) };
    const [a, b] = [await c.lossAndGradients(chunk), await g.lossAndGradients(chunk)];
    // The parity suite's bound for one iteration's loss and gradients (test/parity.test.ts).
    expect(Math.abs(a.loss - b.loss) / a.loss).toBeLessThan(1e-5);
    const scale = Math.max(...a.grads.map(Math.abs));
    expect(Math.max(...a.grads.map((x, i) => Math.abs(x - b.grads[i]!))) / scale).toBeLessThan(1e-4);
  });

  it.skipIf(noGpu)('a caller\'s GPUDevice is used, and not destroyed by dispose', async () => {
    let lost = false;
    void gpu!.device.lost.then(() => (lost = true));
    const m = await createModel({ tokenizer: createTokenizer(TEXT), device: gpu!.device, ...SMALL });
    expect(m.device).toBe('gpu');
    await m.fit(TEXT, { iterations: 3 });
    m.dispose();
    await new Promise((r) => setTimeout(r, 50));
    expect(lost).toBe(false);
    expect(() => m.iteration).not.toThrow();
    await expect(m.sample()).rejects.toThrow('this model was disposed');
  });
});

describe('charsets', () => {
  it('letters: a-z and the space only, applied to training text and primes alike, and kept by save and load', async () => {
    const text = 'The Fox, 42 times!\nA fox -- jumps. '.repeat(40);
    const tokenizer = createTokenizer(text, { charset: 'letters' });
    expect(tokenizer).toMatchObject({ charset: 'letters', lowercase: true });
    expect(tokenizer.vocab.join('')).toBe(' aefhijmopstux');
    expect(tokenizer.decode(tokenizer.encode('The FOX!'))).toBe('the fox ');
    const m = await createModel({ tokenizer, backend: 'cpu', hiddenSize: 8, seqLength: 8, batchSize: 2 });
    open.push(m);
    await m.fit(text, { iterations: 2 });
    const back = await loadModel(await m.save(), { backend: 'cpu' });
    open.push(back);
    expect(back.tokenizer).toMatchObject({ charset: 'letters', lowercase: true });
    expect(await back.sample({ prime: 'A FOX', length: 5, seed: 1 })).toBe(await m.sample({ prime: 'a fox', length: 5, seed: 1 }));
  });
});

describe('bad input, one clear error', () => {
  it('names what is wrong', async () => {
    const tokenizer = createTokenizer(TEXT);
    await expect(createModel({ tokenizer, backend: 'cpu', hiddenSize: 0 })).rejects.toThrow('hiddenSize must be an integer >= 1, got 0');
    await expect(createModel({ tokenizer, backend: 'cpu', dropout: 1 })).rejects.toThrow('dropout must be in [0, 1), got 1');
    const own: Tokenizer = { level: 'char', charset: 'clean', lowercase: false, vocab: ['a'], vocabSize: 1, encode: () => new Uint32Array(1), decode: () => 'a' };
    await expect(createModel({ tokenizer: own, backend: 'cpu' })).rejects.toThrow('the tokenizer must come from createTokenizer');
    await expect(loadModel(new Uint8Array(20))).rejects.toThrow('invalid safetensors file "model file": header is not valid JSON');
    expect(() => createTokenizer('')).toThrow('cannot build a vocabulary from empty text');
    expect(() => createTokenizer('abc', { charset: 'ascii' as 'raw' })).toThrow('charset must be one of clean, raw, letters, got "ascii"');
    const m = await model('cpu');
    await expect(m.sample({ prime: 'Z' })).rejects.toThrow(`character 'Z' (U+005A) is not in the vocabulary`);
    await expect(m.fit('the cat', { iterations: 1 })).rejects.toThrow(/corpus too short/);
  });
});
