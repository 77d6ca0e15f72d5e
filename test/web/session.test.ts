/**
 * The web page's engine host (src/web/worker/session.ts) without a browser: the protocol, the training
 * loop, checkpoints and error wording, on the CPU backend in Node. Fast; the browser tests
 * (page.test.ts) cover the same paths on WebGPU.
 */
import { describe, expect, it } from 'vitest';
import { gpu, noGpu } from '../gpu.ts';
import { decodeCheckpoint } from '../../src/checkpoint/model-checkpoint.ts';
import { decodeSafetensors } from '../../src/checkpoint/safetensors.ts';
import { asF64 } from '../checkpoint/transcode.ts';
import type { GpuContext } from '../../src/gpu/device.ts';
import type { Placement, Reply, Request } from '../../src/web/protocol.ts';
import { pageWording } from '../../src/web/worker/errors.ts';
import { checkpointFilename, type ModelStore, type StoredModel } from '../../src/web/worker/model-files.ts';
import { Session } from '../../src/web/worker/session.ts';

class MemoryStore implements ModelStore {
  model: StoredModel | undefined;
  text: { name: string; bytes: ArrayBuffer } | undefined;
  async saveModel(m: StoredModel) { this.model = m; }
  async loadModel() { return this.model; }
  async forgetModel() { this.model = undefined; }
  async saveText(name: string, bytes: ArrayBuffer) { this.text = { name, bytes }; }
  async loadText(name: string) { return this.text?.name === name ? this.text.bytes : undefined; }
}

const TEXT = 'the quick brown fox jumps over the lazy dog. '.repeat(200);
/** The `raw` charset's variant of TEXT: what the cleaning would have removed (a sign-off, an end-of-text byte). */
const RAW_TEXT = `${TEXT}\x03 REUTER\n`;
const CPU: Placement = { backend: 'cpu', adapter: -1 };
const FORM = { cell: 'rnn' as const, hiddenSize: 24, seqLength: 12, batchSize: 4, optimizer: 'adam' as const, learningRate: 0.01, clip: 5, seed: 7 };

/** The worker's view of a GPU: one adapter, the test's Dawn device (Node has no navigator.gpu). */
function dawnProvider(ctx: GpuContext) {
  const { maxStorageBufferBindingSize, maxBufferSize, maxComputeWorkgroupsPerDimension } = ctx.limits;
  return {
    probe: async () => ({
      adapters: [{
        id: 0, label: 'Dawn', name: ctx.adapterName, reportedFallback: ctx.isFallback, software: ctx.isFallback,
        limits: { maxStorageBufferBindingSize, maxBufferSize, maxComputeWorkgroupsPerDimension },
      }],
    }),
    acquire: async () => ctx,
  };
}

function harness(store = new MemoryStore(), ctx?: GpuContext) {
  const replies: Reply[] = [];
  const waiters: { pred: (r: Reply) => boolean; resolve: (r: Reply) => void }[] = [];
  const session = new Session({
    post: (r) => {
      replies.push(r);
      for (const w of [...waiters]) {
        if (w.pred(r)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(r);
        }
      }
    },
    gpu: ctx ? dawnProvider(ctx) : { probe: async () => ({ adapters: [], error: 'no WebGPU in this test' }), acquire: async () => { throw new Error('no GPU'); } },
    store,
    builtins: [{ id: 'fox', checkpointName: 'fox-text', url: 'mem://fox', rawUrl: 'mem://fox-raw' }],
    fetchText: async (url: string) => new TextEncoder().encode(url === 'mem://fox-raw' ? RAW_TEXT : TEXT).buffer as ArrayBuffer,
    timing: { firstValidation: 0, validation: 0.05, snapshot: 0.05, autosave: 0.2, progress: 0.02 },
  });
  const send = (r: Request) => session.handle(r);
  /** The next reply (from now on, or already received since `from`) that matches. */
  const next = <T extends Reply['type']>(type: T, pred: (r: Extract<Reply, { type: T }>) => boolean = () => true, from = 0) => {
    const hit = replies.slice(from).find((r) => r.type === type && pred(r as Extract<Reply, { type: T }>));
    if (hit) return Promise.resolve(hit as Extract<Reply, { type: T }>);
    return new Promise<Extract<Reply, { type: T }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} reply; last: ${JSON.stringify(replies.slice(-3)).slice(0, 400)}`)), 20_000);
      waiters.push({ pred: (r) => r.type === type && pred(r as Extract<Reply, { type: T }>), resolve: (r) => { clearTimeout(timer); resolve(r as Extract<Reply, { type: T }>); } });
    });
  };
  const lastStatus = () => [...replies].reverse().find((r) => r.type === 'status') as Extract<Reply, { type: 'status' }>;
  const errors = () => replies.filter((r): r is Extract<Reply, { type: 'error' }> => r.type === 'error');
  return { session, send, next, replies, lastStatus, errors, store };
}

describe('web session (CPU backend, no browser)', () => {
  it('says plainly when there is no GPU', async () => {
    const h = harness();
    await h.send({ type: 'init' });
    const hello = await h.next('hello');
    expect(hello.adapters).toEqual([]);
    expect(hello.gpuError).toBe('no WebGPU in this test');
    await h.send({ type: 'data', source: { kind: 'builtin', id: 'fox', url: '' }, options: { level: 'char', charset: 'clean', lowercase: false, maxVocab: 100 } });
    await h.send({ type: 'build', form: FORM, placement: { backend: 'gpu', adapter: 0 } });
    expect(h.errors().at(-1)?.message).toBe('no WebGPU in this test');
    expect(h.lastStatus().status.phase).toBe('empty');
  });

  it('trains, validates, samples, pauses, and round-trips a checkpoint', async () => {
    const h = harness();
    await h.send({ type: 'init' });
    await h.send({ type: 'data', source: { kind: 'builtin', id: 'fox', url: '' }, options: { level: 'char', charset: 'clean', lowercase: false, maxVocab: 100 } });
    const data = await h.next('data');
    expect(data.info.vocabSize).toBe(new Set(TEXT).size);
    expect(data.info.preview.startsWith('the quick')).toBe(true);

    await h.send({ type: 'sampling', settings: { prime: 'the ', temperature: 0.5, length: 40, every: 0.05 } });
    await h.send({ type: 'build', form: { ...FORM, stateReset: 3 }, placement: CPU });
    expect(h.lastStatus().status.phase).toBe('ready');
    expect(h.lastStatus().status.model?.stateReset).toBe(3);
    // weight_ih, weight_hh, bias_ih, bias_hh (nn.RNN's two biases), decoder weight and bias.
    expect(h.lastStatus().status.model?.parameters).toBe(24 * 28 + 24 * 24 + 24 + 24 + 28 * 24 + 28);

    await h.send({ type: 'start' });
    const losses: number[] = [];
    let seen = 0;
    while (losses.length < 60) {
      const p = await h.next('progress', (r) => r.iterations[0]! > seen);
      seen = p.iterations.at(-1)!;
      losses.push(...p.losses);
    }
    await h.next('val');
    const sample = await h.next('sample');
    expect(sample.prime).toBe('the ');
    expect(sample.text.length).toBe(40);
    await h.send({ type: 'pause' });
    const paused = h.lastStatus().status;
    expect(paused.phase).toBe('paused');
    expect(paused.elapsed).toBeGreaterThan(0);
    const head = losses.slice(0, 10).reduce((a, b) => a + b) / 10;
    const tail = losses.slice(-10).reduce((a, b) => a + b) / 10;
    expect(tail).toBeLessThan(head - 0.5);
    // Pausing keeps a copy in the browser's store.
    expect(h.store.model?.info.iteration).toBe(paused.iteration);

    // The same argmax sample before saving and after loading.
    await h.send({ type: 'sampling', settings: { prime: 'the q', temperature: 0, length: 30, every: 0 } });
    let from = h.replies.length;
    await h.send({ type: 'sample' });
    const before = (await h.next('sample', () => true, from)).text;

    from = h.replies.length;
    await h.send({ type: 'save' });
    const ck = await h.next('checkpoint', () => true, from);
    expect(ck.filename).toMatch(/^fox-text-rnn24-char-i\d+-val\d\.\d{3}\.safetensors$/);
    const decoded = decodeCheckpoint(new Uint8Array(ck.bytes), ck.filename);
    expect(decoded.progress.iteration).toBe(paused.iteration);
    expect(decoded.progress.corpus).toBe('fox-text');
    expect(decoded.model.hiddenSize).toBe(24);
    expect(decoded.train.stateReset).toBe(3);

    await h.send({ type: 'build', form: { ...FORM, seed: 8 }, placement: CPU });
    expect(h.lastStatus().status.iteration).toBe(0);
    from = h.replies.length;
    await h.send({ type: 'load', name: ck.filename, bytes: ck.bytes, placement: CPU });
    const loaded = h.lastStatus().status;
    expect(loaded.iteration).toBe(paused.iteration);
    expect(loaded.canTrain).toBe(true);
    expect(loaded.model?.seed).toBe(7);
    await h.send({ type: 'sample' });
    expect((await h.next('sample', () => true, from)).text).toBe(before);

    // The same model stored as F64 (as PyTorch may save it) loads converted, says so, samples the same.
    from = h.replies.length;
    const f64 = asF64(new Uint8Array(ck.bytes));
    await h.send({ type: 'load', name: 'from-pytorch.safetensors', bytes: f64.buffer as ArrayBuffer, placement: CPU });
    const tensors = Object.keys(decodeSafetensors(f64).tensors).length;
    expect((await h.next('notice', () => true, from)).message)
      .toBe(`Loaded from-pytorch.safetensors (iteration ${paused.iteration}, converted ${tensors} F64 tensors to F32).`);
    await h.send({ type: 'sample' });
    expect((await h.next('sample', () => true, from)).text).toBe(before);
    expect(h.errors()).toEqual([]);
  });

  it('charsets: raw fetches the text as it comes; letters reads a prime as letters and is kept in the checkpoint', async () => {
    const h = harness();
    await h.send({ type: 'init' });
    const fox = { kind: 'builtin', id: 'fox', url: '' } as const;
    await h.send({ type: 'data', source: fox, options: { level: 'char', charset: 'raw', lowercase: false, maxVocab: 100 } });
    expect((await h.next('data')).info.vocabSize).toBe(new Set(RAW_TEXT).size);
    let from = h.replies.length;
    await h.send({ type: 'data', source: fox, options: { level: 'char', charset: 'letters', lowercase: false, maxVocab: 100 } });
    const letters = (await h.next('data', () => true, from)).info;
    expect(letters.options).toMatchObject({ charset: 'letters', lowercase: true });
    expect(letters.vocabSize).toBe(new Set(TEXT.replace(/\./g, '')).size);
    expect(letters.preview.startsWith('the quick brown fox jumps over the lazy dog the quick')).toBe(true);

    await h.send({ type: 'sampling', settings: { prime: 'The QUICK!', temperature: 0, length: 5, every: 0 } });
    await h.send({ type: 'build', form: FORM, placement: CPU });
    expect(h.lastStatus().status.model).toMatchObject({ charset: 'letters', lowercase: true });
    from = h.replies.length;
    await h.send({ type: 'sample' });
    expect((await h.next('sample', () => true, from)).prime).toBe('the quick ');
    from = h.replies.length;
    await h.send({ type: 'save' });
    const ck = await h.next('checkpoint', () => true, from);
    expect(decodeCheckpoint(new Uint8Array(ck.bytes), ck.filename).progress.charset).toBe('letters');

    // From the raw text, loading it finds its own text again (cleaned, then letters) and can train on.
    await h.send({ type: 'data', source: fox, options: { level: 'char', charset: 'raw', lowercase: false, maxVocab: 100 } });
    await h.send({ type: 'load', name: ck.filename, bytes: ck.bytes, placement: CPU });
    const loaded = h.lastStatus().status;
    expect(loaded.model?.charset).toBe('letters');
    expect(loaded.canTrain).toBe(true);
    expect(h.errors()).toEqual([]);
  });

  it('builds SGD with Nesterov momentum under a step schedule from the form; the model, its checkpoint and a reload keep them', async () => {
    const h = harness();
    await h.send({ type: 'init' });
    await h.send({ type: 'data', source: { kind: 'builtin', id: 'fox', url: '' }, options: { level: 'char', charset: 'clean', lowercase: false, maxVocab: 100 } });
    await h.next('data');
    const form = { ...FORM, optimizer: 'sgd' as const, momentum: 0.8, nesterov: true, learningRate: 0.05, lrSchedule: 'step' as const, lrDecay: 0.5, lrDecayEvery: 5, lrDecayAfter: 10 };
    await h.send({ type: 'build', form, placement: CPU });
    const fields = { optimizer: 'sgd', momentum: 0.8, nesterov: true, lrSchedule: 'step', lrDecay: 0.5, lrDecayEvery: 5, lrDecayAfter: 10 };
    expect(h.lastStatus().status.model).toMatchObject(fields);
    expect(h.lastStatus().status.model).not.toHaveProperty('rmsDecay');
    await h.send({ type: 'start' });
    await h.next('progress', (r) => r.iterations.at(-1)! >= 12);
    await h.send({ type: 'pause' });
    const from = h.replies.length;
    await h.send({ type: 'save' });
    const ck = await h.next('checkpoint', () => true, from);
    const decoded = decodeCheckpoint(new Uint8Array(ck.bytes), ck.filename);
    expect(decoded.train).toMatchObject({ optimizer: 'sgd', momentum: 0.8, nesterov: true, lrSchedule: { kind: 'step', decay: 0.5, every: 5, after: 10 } });
    await h.send({ type: 'build', form: FORM, placement: CPU });
    expect(h.lastStatus().status.model).toMatchObject({ optimizer: 'adam', lrSchedule: 'none' });
    await h.send({ type: 'load', name: ck.filename, bytes: ck.bytes, placement: CPU });
    expect(h.lastStatus().status.model).toMatchObject(fields);
    expect(h.errors()).toEqual([]);
  });

  it('gives one-line errors for bad files and impossible settings, in the page\'s words', async () => {
    const h = harness();
    await h.send({ type: 'init' });
    const bad = new Uint8Array([...new TextEncoder().encode('caf'), 0xe9, 0x20, 0x6f, 0x6b]).buffer;
    await h.send({ type: 'data', source: { kind: 'file', name: 'latin1.txt', bytes: bad }, options: { level: 'char', charset: 'clean', lowercase: false, maxVocab: 100 } });
    expect(h.errors().at(-1)).toEqual({ type: 'error', area: 'data', message: 'latin1.txt: not valid UTF-8 at byte 3 (try converting it with iconv -f latin1 -t utf-8)' });

    await h.send({ type: 'data', source: { kind: 'file', name: 'tiny.txt', bytes: new TextEncoder().encode('abcabc').buffer as ArrayBuffer }, options: { level: 'char', charset: 'clean', lowercase: false, maxVocab: 100 } });
    await h.send({ type: 'build', form: FORM, placement: CPU });
    const e = h.errors().at(-1)!;
    expect(e.area).toBe('model');
    expect(e.message).toMatch(/^corpus too short: .* \(lower the batch size or the sequence length\)$/);

    await h.send({ type: 'build', form: { ...FORM, stateReset: -1 }, placement: CPU });
    expect(h.errors().at(-1)).toEqual({ type: 'error', area: 'model', message: 'the state reset (iterations, 0 for never) must be a whole number from 0 to 2147483647, got -1' });

    await h.send({ type: 'build', form: { ...FORM, optimizer: 'sgd', momentum: 2 }, placement: CPU });
    expect(h.errors().at(-1)).toEqual({ type: 'error', area: 'model', message: 'bad optimizer settings: momentum 2 is not in [0, 1)' });
    await h.send({ type: 'build', form: { ...FORM, lrSchedule: 'step', lrDecayEvery: 0 }, placement: CPU });
    expect(h.errors().at(-1)?.message).toMatch(/^bad optimizer settings: learning-rate schedule .*every must be a whole number/);

    await h.send({ type: 'load', name: 'junk.safetensors', bytes: new Uint8Array([1, 2, 3]).buffer, placement: CPU });
    expect(h.errors().at(-1)?.area).toBe('file');
    expect(h.errors().at(-1)?.message).toMatch(/^invalid safetensors file "junk\.safetensors": /);
    expect(h.errors().every((x) => !x.message.includes('\n'))).toBe(true);
  });

  it('trains at word level, and a model moved to a fresh CPU backend keeps its state', async () => {
    const h = harness();
    await h.send({ type: 'init' });
    await h.send({ type: 'data', source: { kind: 'builtin', id: 'fox', url: '' }, options: { level: 'word', charset: 'clean', lowercase: false, maxVocab: 8 } });
    const data = await h.next('data');
    expect(data.info.vocabSize).toBe(8);
    await h.send({ type: 'sampling', settings: { prime: 'the quick', temperature: 0, length: 12, every: 0 } });
    await h.send({ type: 'build', form: { ...FORM, seqLength: 6 }, placement: CPU });
    await h.send({ type: 'start' });
    await h.next('progress', (r) => r.iteration >= 20);
    await h.send({ type: 'pause' });
    const from = h.replies.length;
    await h.send({ type: 'sample' });
    const s = await h.next('sample', () => true, from);
    expect(s.text.length).toBeGreaterThan(0);
    expect(h.lastStatus().status.model?.level).toBe('word');
    // Moving to the same backend kind keeps weights, optimizer state and position.
    const before = h.lastStatus().status.iteration;
    await h.send({ type: 'place', placement: CPU });
    expect(h.lastStatus().status.iteration).toBe(before);
    const again = h.replies.length;
    await h.send({ type: 'sample' });
    expect((await h.next('sample', () => true, again)).text).toBe(s.text);
    expect(h.errors()).toEqual([]);
  });

  it('samples several side by side with top-k, top-p and a penalty, and refuses controls out of range', async () => {
    const h = harness();
    await h.send({ type: 'init' });
    await h.send({ type: 'data', source: { kind: 'builtin', id: 'fox', url: '' }, options: { level: 'char', charset: 'clean', lowercase: false, maxVocab: 100 } });
    await h.send({ type: 'build', form: FORM, placement: CPU });
    const controls = { topK: 5, topP: 0.9, repetitionPenalty: 1.3, repetitionWindow: 8 };
    await h.send({ type: 'sampling', settings: { prime: 'the ', temperature: 1, length: 25, every: 0, controls, count: 3 } });
    let from = h.replies.length;
    await h.send({ type: 'sample' });
    const s = await h.next('sample', () => true, from);
    expect(s.text.length).toBe(25);
    expect(s.more?.length).toBe(2);
    for (const t of s.more!) expect(t.length).toBe(25);
    expect(s.controls).toEqual(controls);
    expect(new Set([s.text, ...s.more!]).size).toBe(3);
    for (const [controls, message] of [
      [{ topP: 0 }, /top-p must be in \(0, 1\]/],
      [{ topK: 1.5 }, /top-k must be a positive integer/],
      [{ repetitionPenalty: -2 }, /repetition penalty must be a number greater than 0/],
    ] as const) {
      await h.send({ type: 'sampling', settings: { prime: 'the ', temperature: 1, length: 25, every: 0, controls } });
      from = h.replies.length;
      await h.send({ type: 'sample' });
      const e = await h.next('error', () => true, from);
      expect(e.area).toBe('sample');
      expect(e.message).toMatch(message);
    }
  });

  it('names checkpoints safely and rewords CLI flags', () => {
    const name = checkpointFilename({ corpus: '<img src=x onerror=alert(1)>.txt', model: { cell: 'rnn', vocabSize: 5, hiddenSize: 8 }, level: 'char', iteration: 3 });
    expect(name).toBe('img-src-x-onerror-alert-1-rnn8-char-i3.safetensors');
    expect(pageWording('the training loss became NaN at iteration 9: lower --lr (now 2) or --clip (now 5)'))
      .toBe('the training loss became NaN at iteration 9: lower the learning rate (now 2) or the gradient clip (now 5)');
  });
});

describe.skipIf(noGpu)('web session on the GPU (Dawn in Node)', () => {
  it('moves a model between the GPU and the CPU backends: same weights, same samples, training continues on each', async () => {
    const h = harness(new MemoryStore(), gpu);
    const GPU: Placement = { backend: 'gpu', adapter: 0 };
    await h.send({ type: 'init' });
    await h.send({ type: 'data', source: { kind: 'builtin', id: 'fox', url: '' }, options: { level: 'char', charset: 'clean', lowercase: false, maxVocab: 100 } });
    await h.send({ type: 'sampling', settings: { prime: 'the q', temperature: 0, length: 30, every: 0 } });
    const weights = async () => {
      const from = h.replies.length;
      await h.send({ type: 'save' });
      const ck = await h.next('checkpoint', () => true, from);
      return decodeCheckpoint(new Uint8Array(ck.bytes), ck.filename);
    };
    const sample = async () => {
      const from = h.replies.length;
      await h.send({ type: 'sample' });
      return (await h.next('sample', () => true, from)).text;
    };
    const trainTo = async (iteration: number) => {
      await h.send({ type: 'start' });
      await h.next('progress', (r) => r.iteration >= iteration);
      await h.send({ type: 'pause' });
    };

    await h.send({ type: 'build', form: FORM, placement: GPU });
    expect(h.lastStatus().status.backend?.kind).toBe('gpu');
    await trainTo(30);
    const onGpu = await weights();
    const gpuSample = await sample();

    await h.send({ type: 'place', placement: CPU });
    let s = h.lastStatus().status;
    expect(s.backend?.kind).toBe('cpu');
    expect(s.iteration).toBe(onGpu.progress.iteration);
    const onCpu = await weights();
    expect(onCpu.state.params).toEqual(onGpu.state.params);
    expect(onCpu.state.optM).toEqual(onGpu.state.optM);
    expect(onCpu.state.hidden).toEqual(onGpu.state.hidden);
    expect(onCpu.progress.stream).toEqual(onGpu.progress.stream);
    // Argmax from the same weights and state: the kernels and the CPU reference agree to ~1e-6.
    expect(await sample()).toBe(gpuSample);

    await trainTo(onCpu.progress.iteration + 10);
    const trainedOnCpu = await weights();
    expect(trainedOnCpu.progress.iteration).toBeGreaterThanOrEqual(onCpu.progress.iteration + 10);
    expect(trainedOnCpu.state.params).not.toEqual(onCpu.state.params);

    await h.send({ type: 'place', placement: GPU });
    s = h.lastStatus().status;
    expect(s.backend?.kind).toBe('gpu');
    expect(s.iteration).toBe(trainedOnCpu.progress.iteration);
    expect((await weights()).state.params).toEqual(trainedOnCpu.state.params);
    await trainTo(trainedOnCpu.progress.iteration + 10);
    expect(h.lastStatus().status.iteration).toBeGreaterThanOrEqual(trainedOnCpu.progress.iteration + 10);
    expect(h.errors()).toEqual([]);
  });
});
