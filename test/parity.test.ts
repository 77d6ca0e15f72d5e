/**
 * Whole training iterations, GPU against the CPU reference (float32 storage on both), for every
 * cell (rnn, lstm, gru), one layer and stacks of 2-3 layers with dropout (the GPU regenerates the
 * CPU's mask bit for bit from uniformAt(seed, iteration, element)).
 *
 * Tolerances, relative to each tensor's largest magnitude: every flat array is compared tensor by
 * tensor (paramLayout's slots; states layer by layer) with expectPerPart in test/gpu.ts, so a small
 * tensor is held to its own scale and a failure names it:
 * - loss, gradients, hidden states: 1e-4. Both sides round to f32, but sum in different orders
 *   (the GPU in 4-wide register blocks, the CPU sequentially in f64); over K <= a few hundred
 *   terms the difference stays around 1e-6..1e-5 of the largest element.
 * - optimizer updates from identical gradients: 1e-6 (f32 rounding of one update).
 * - a 60-iteration loss curve on real text: 1e-3 of the loss (differences compound over updates).
 */
import { describe, expect, it } from 'vitest';
import { backendMismatch, expectPerPart, forcedBackend, gpu, layerParts, noGpu, relError, relErrorPerPart } from './gpu.ts';
import { CpuBackend } from '../src/cpu/backend.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import { withBindingLimit, type GpuContext } from '../src/gpu/device.ts';
import { dispatchesPerIteration, splitPlan } from '../src/gpu/buffers.ts';
import { paramLayout } from '../src/model/layout.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import { learningRateAt, type OptimizerName, type OptimizerOptions } from '../src/model/optimizer.ts';
import { Rng } from '../src/util/random.ts';
import { loadCorpus } from '../src/node/corpora.ts';
import { CharTokenizer } from '../src/data/tokenizer.ts';
import { BatchStream } from '../src/data/split.ts';
import { optimizerUpdate } from '../src/cpu/optim.ts';
import { Trainer } from '../src/engine/trainer.ts';

const TOL = 1e-4;

const shapes = [
  { V: 13, H: 37, T: 5, B: 3 },
  { V: 5, H: 8, T: 1, B: 1 },
  { V: 87, H: 70, T: 9, B: 1 },
  { V: 30, H: 129, T: 3, B: 33 },
];

type Net = Pick<ModelConfig, 'cell' | 'layers' | 'dropout'>;

/** Every cell alone on every shape; stacks with dropout on the two shapes that keep the CPU side quick. */
const nets: { net: Net; shapes: (typeof shapes)[number][] }[] = [
  { net: { cell: 'rnn' }, shapes },
  { net: { cell: 'lstm' }, shapes },
  { net: { cell: 'gru' }, shapes },
  { net: { cell: 'lstm', layers: 2, dropout: 0.3 }, shapes: [shapes[0], shapes[1]] },
  { net: { cell: 'gru', layers: 3, dropout: 0.25 }, shapes: [shapes[0], shapes[2]] },
  { net: { cell: 'rnn', layers: 2, dropout: 0.4 }, shapes: [shapes[1], shapes[3]] },
  { net: { cell: 'lstm', layers: 3 }, shapes: [shapes[0]] },
];

const netName = (n: Net) => `${n.cell}${n.layers ? ` L=${n.layers}` : ''}${n.dropout ? ` dropout=${n.dropout}` : ''}`;

/**
 * The optimizers the lockstep test runs: Adam and Adagrad on every shape; RMSprop and SGD with
 * Nesterov momentum, each under a schedule that changes the rate every update, on each net's first shape.
 */
const lockstep: { o: OptimizerOptions & Pick<TrainConfig, 'lrSchedule'>; allShapes: boolean }[] = [
  { o: { optimizer: 'adam' }, allShapes: true },
  { o: { optimizer: 'adagrad' }, allShapes: true },
  { o: { optimizer: 'rmsprop', lrSchedule: { kind: 'cosine', min: 0.001, iterations: 4 } }, allShapes: false },
  { o: { optimizer: 'sgd', momentum: 0.9, nesterov: true, lrSchedule: { kind: 'step', decay: 0.5, every: 1, after: 1 } }, allShapes: false },
];
const LR: Record<OptimizerName, number> = { adam: 0.01, adagrad: 0.1, rmsprop: 0.01, sgd: 0.1 };

function make(shape: (typeof shapes)[number], optimizer: OptimizerName | OptimizerOptions, seed: number, net: Net = { cell: 'rnn' }) {
  const model: ModelConfig = { ...net, vocabSize: shape.V, hiddenSize: shape.H };
  const o = typeof optimizer === 'string' ? { optimizer } : optimizer;
  const train: TrainConfig = { seqLength: shape.T, batchSize: shape.B, ...o, learningRate: LR[o.optimizer], clip: 5 };
  const rng = new Rng(seed);
  const n = shape.T * shape.B;
  const chunks = Array.from({ length: 4 }, () => ({
    inputs: Uint32Array.from({ length: n }, () => Math.floor(rng.next() * shape.V)),
    targets: Uint32Array.from({ length: n }, () => Math.floor(rng.next() * shape.V)),
  }));
  return { model, train, chunks };
}

describe('the comparison itself', () => {
  it('holds each tensor to its own scale: a 1% error in a small bias fails where one relError over the array passes', () => {
    const model: ModelConfig = { cell: 'gru', vocabSize: 7, hiddenSize: 5, layers: 2 };
    const layout = paramLayout(model);
    const b = new Float32Array(layout.length);
    for (const s of layout.slots) b.fill(s.name === 'decoder.weight' ? 1000 : 0.1, s.offset, s.offset + s.size);
    const a = b.slice();
    a[layout.byName['rnn.bias_hh_l1'].offset + 2] *= 1.01;
    expect(relError(a, b)).toBeLessThan(TOL);
    const worst = relErrorPerPart(a, b, layout.slots).filter((p) => p.error >= TOL);
    expect(worst.map((p) => p.name)).toEqual(['rnn.bias_hh_l1']);
    expect(() => expectPerPart(a, b, layout.slots, TOL, 'gradient')).toThrow(/gradient: rnn\.bias_hh_l1/);
    // Padding between tensors must match exactly; a part past the array is a mistake in the test.
    const padded = b.slice();
    padded[layout.byName['decoder.bias'].offset + model.vocabSize] = 1e-30;
    expect(() => expectPerPart(padded, b, layout.slots, TOL, 'gradient')).toThrow(/padding/);
    expect(() => relErrorPerPart(a, b, [{ name: 'x', offset: layout.length - 1, size: 2 }])).toThrow(/past the array/);
  });

  it('tells a Vulkan device from an OpenGL compatibility one by name and by feature level', () => {
    const ctx = (adapterName: string, core: boolean) =>
      ({ adapterName, device: { features: new Set(core ? ['core-features-and-limits'] : []) } }) as unknown as GpuContext;
    const gl = ctx('OpenGL version 4.5 (Core Profile) Mesa 25.0.7 via OpenGL (compatibility)', false);
    const vk = ctx('llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) via Vulkan', true);
    expect(backendMismatch(gl, 'opengl')).toBeUndefined();
    expect(backendMismatch(vk, 'vulkan')).toBeUndefined();
    expect(backendMismatch(gl, undefined)).toBeUndefined();
    expect(backendMismatch(vk, 'opengl')).toMatch(/WEBGPU_BACKEND=opengl but the device is "llvmpipe/);
    expect(backendMismatch(gl, 'vulkan')).toMatch(/compatibility feature level/);
    // The name alone is not enough: an "OpenGL"-labelled core device is not Dawn's GL backend.
    expect(backendMismatch(ctx('OpenGL via OpenGL (compatibility)', true), 'opengl')).toMatch(/core feature level/);
  });
});

describe.skipIf(noGpu)('GPU training iteration vs CPU reference', () => {
  it(`runs on the adapter WEBGPU_BACKEND asks for (${forcedBackend ?? 'unset: any'})`, () => {
    console.log(`parity suite adapter: ${gpu!.adapterName}`);
    expect(backendMismatch(gpu!, forcedBackend)).toBeUndefined();
    if (forcedBackend === 'opengl') expect(gpu!.adapterName).toMatch(/OpenGL/);
    if (forcedBackend === 'vulkan') expect(gpu!.adapterName).toMatch(/Vulkan/);
  });

  for (const { net, shapes: netShapes } of nets) for (const shape of netShapes) {
    const name = `${netName(net)} V=${shape.V} H=${shape.H} T=${shape.T} B=${shape.B}`;

    it(`loss, every gradient, hidden state and dh0: ${name}`, async () => {
      const { model, train, chunks } = make(shape, 'adam', 1, net);
      const g = await GpuBackend.create(gpu!, model, train, 42);
      const c = new CpuBackend(model, train, 42);
      try {
        // A non-zero carried hidden state, so h0 and its gradient matter. The CPU then starts from
        // the GPU's exact parameters and state: after independent Adam steps the two would differ
        // by up to lr wherever a gradient is near zero (its sign decides the step), and the
        // gradients compared here would inherit that instead of measuring the kernels.
        await (await g.trainStep(chunks[0])).loss;
        c.importState(await g.exportState());
        const gr = await g.gradients(chunks[1]);
        const cr = await c.gradients(chunks[1]);
        expect(Math.abs(gr.loss - cr.loss) / cr.loss).toBeLessThan(TOL);
        expectPerPart(gr.grads, cr.grads, paramLayout(model).slots, TOL, 'gradient');
        const layers = layerParts(net.layers ?? 1, shape.B * shape.H);
        expectPerPart(gr.hLast, cr.hLast, layers, TOL, 'hLast');
        expectPerPart(gr.dh0, cr.dh0, layers, TOL, 'dh0');
        expect(gr.cLast === undefined).toBe(net.cell !== 'lstm');
        if (cr.cLast) {
          expectPerPart(gr.cLast!, cr.cLast, layers, TOL, 'cLast');
          expectPerPart(gr.dc0!, cr.dc0!, layers, TOL, 'dc0');
        }
      } finally {
        g.destroy();
      }
    });

    for (const { o, allShapes } of lockstep) {
      if (!allShapes && shape !== netShapes[0]) continue;
      const optimizer = o.optimizer;
      it(`4 ${optimizer}${o.lrSchedule ? ` (${o.lrSchedule.kind} schedule)` : ''} iterations in lockstep: ${name}`, async () => {
        const { model, train, chunks } = make(shape, o, 2, net);
        const g = await GpuBackend.create(gpu!, model, train, 7);
        const c = new CpuBackend(model, train, 7);
        const slots = paramLayout(model).slots;
        try {
          for (const chunk of chunks) {
            // Each step starts the CPU from the GPU's exact state: independent runs drift apart
            // chaotically (Adagrad/Adam divide by sqrt of tiny second moments, so a 1e-7 change
            // in a near-zero gradient moves a parameter by up to lr), which says nothing about
            // either implementation.
            const before = await g.exportState();
            c.importState(before);
            const gr = await g.gradients(chunk);
            const cr = await c.gradients(chunk);
            expectPerPart(gr.grads, cr.grads, slots, TOL, 'gradient');
            const gl = await (await g.trainStep(chunk)).loss;
            const cl = await (await c.trainStep(chunk)).loss;
            expect(Math.abs(gl - cl) / cl).toBeLessThan(TOL);
            // The update itself, from identical gradients: only f32 rounding separates the two,
            // so 1e-6 of the largest parameter.
            const expected = { m: before.optM.slice(), v: before.optV.slice(), step: before.optStep };
            const params = before.params.slice();
            optimizerUpdate(train, params, gr.grads, expected, learningRateAt(train.learningRate, train.lrSchedule, before.optStep + 1), train.clip);
            const after = await g.exportState();
            expect(after.optStep).toBe(expected.step);
            expectPerPart(after.params, params, slots, 1e-6, 'parameter');
            if (optimizer !== 'rmsprop') expectPerPart(after.optM, expected.m, slots, 1e-6, 'moment 1');
            if (optimizer === 'adam' || optimizer === 'rmsprop') expectPerPart(after.optV, expected.v, slots, 1e-6, 'moment 2');
            // Exact (error 0, so per tensor adds nothing): the carried state is the one gradients() returned.
            expect(relError(after.hidden, gr.hLast), 'carried hidden state').toBe(0);
            if (gr.cLast) expect(relError(after.cellState!, gr.cLast), 'carried memory cells').toBe(0);
          }
        } finally {
          g.destroy();
        }
      });
    }
  }

  // The split plan (src/gpu/plan.ts): a binding limit of a few KB forced on this adapter, so the
  // parameters are bound in windows, each step's W_hh products run over row ranges and the
  // optimizer in chunks. Held to the same tolerances as the ordinary plan.
  const splitCases: { net: Net; shape: (typeof shapes)[number]; bytes: number }[] = [
    { net: { cell: 'lstm' }, shape: shapes[0], bytes: 12288 },
    { net: { cell: 'gru' }, shape: shapes[0], bytes: 10240 },
    { net: { cell: 'rnn' }, shape: shapes[0], bytes: 4096 },
    { net: { cell: 'lstm', layers: 2, dropout: 0.3 }, shape: { V: 5, H: 8, T: 3, B: 2 }, bytes: 1536 },
    // Only the saved gates exceed the limit: each layer's part is bound as a window.
    { net: { cell: 'gru', layers: 2 }, shape: { V: 3, H: 4, T: 10, B: 4 }, bytes: 3072 },
    // W_ih above layer 0 split by rows too, dL/dx summed from partial products.
    { net: { cell: 'lstm', layers: 2, dropout: 0.2 }, shape: { V: 5, H: 16, T: 3, B: 2 }, bytes: 2048 },
    // Layer 0's W_ih [G*H, V] past one binding: input_gather and embedding_grad by its rows.
    { net: { cell: 'gru' }, shape: { V: 30, H: 6, T: 3, B: 2 }, bytes: 1024 },
  ];
  for (const { net, shape, bytes } of splitCases) {
    const name = `${netName(net)} V=${shape.V} H=${shape.H} T=${shape.T} B=${shape.B}`;
    it(`split plan in bindings of ${bytes} bytes: gradients, dh0 and 2 Adam iterations in lockstep: ${name}`, async () => {
      const { model, train, chunks } = make(shape, 'adam', 4, net);
      const ctx = withBindingLimit(gpu!, bytes);
      const split = splitPlan(model, train, ctx.limits)!;
      expect(split, 'the forced limit splits the plan').toBeDefined();
      expect(split.whhChunks > 1 || split.wih0Chunks > 1 || (net.layers ?? 1) > 1).toBe(true);
      const g = await GpuBackend.create(ctx, model, train, 11);
      const c = new CpuBackend(model, train, 11);
      const slots = paramLayout(model).slots;
      try {
        expect(g.perStep.dispatches).toBe(dispatchesPerIteration(model, train, ctx.limits));
        expect(g.perStep.dispatches).toBeGreaterThan(dispatchesPerIteration(model, train));
        for (const chunk of chunks.slice(0, 2)) {
          const before = await g.exportState();
          c.importState(before);
          const gr = await g.gradients(chunk);
          const cr = await c.gradients(chunk);
          expect(Math.abs(gr.loss - cr.loss) / cr.loss).toBeLessThan(TOL);
          expectPerPart(gr.grads, cr.grads, slots, TOL, 'gradient');
          const layers = layerParts(net.layers ?? 1, shape.B * shape.H);
          expectPerPart(gr.hLast, cr.hLast, layers, TOL, 'hLast');
          expectPerPart(gr.dh0, cr.dh0, layers, TOL, 'dh0');
          if (cr.dc0) expectPerPart(gr.dc0!, cr.dc0, layers, TOL, 'dc0');
          const gl = await (await g.trainStep(chunk)).loss;
          expect(Math.abs(gl - cr.loss) / cr.loss).toBeLessThan(TOL);
          const expected = { m: before.optM.slice(), v: before.optV.slice(), step: before.optStep };
          const params = before.params.slice();
          optimizerUpdate(train, params, gr.grads, expected, learningRateAt(train.learningRate, train.lrSchedule, before.optStep + 1), train.clip);
          const after = await g.exportState();
          expectPerPart(after.params, params, slots, 1e-6, 'parameter');
          expectPerPart(after.optM, expected.m, slots, 1e-6, 'moment 1');
          expectPerPart(after.optV, expected.v, slots, 1e-6, 'moment 2');
        }
      } finally {
        g.destroy();
      }
    });
  }

  it('evaluation matches and leaves the training state alone', async () => {
    const { model, train, chunks } = make(shapes[0], 'adam', 3);
    const g = await GpuBackend.create(gpu!, model, train, 5);
    const c = new CpuBackend(model, train, 5);
    try {
      await (await g.trainStep(chunks[0])).loss;
      await c.trainStep(chunks[0]);
      const before = await g.exportState();
      const ge = await g.evaluate(chunks);
      const ce = await c.evaluate(chunks);
      expect(Math.abs(ge - ce) / ce).toBeLessThan(TOL);
      const after = await g.exportState();
      expect(after).toEqual(before);
    } finally {
      g.destroy();
    }
  });

  it('zeroing some streams\' carried state (stacked lstm): exactly those rows, on both backends', async () => {
    const { model, train, chunks } = make(shapes[0], 'adam', 9, { cell: 'lstm', layers: 2 });
    const g = await GpuBackend.create(gpu!, model, train, 3);
    const c = new CpuBackend(model, train, 3);
    try {
      await (await g.trainStep(chunks[0])).loss;
      await c.trainStep(chunks[0]);
      g.resetState([2, 0]);
      c.resetState([2, 0]);
      const [gs, cs] = [await g.exportState(), await c.exportState()];
      const { B, H } = shapes[0];
      for (const [name, a] of [['h', gs.hidden], ['c', gs.cellState!]] as const) {
        for (let l = 0; l < 2; l++) {
          for (let b = 0; b < B; b++) {
            const row = a.subarray((l * B + b) * H, (l * B + b + 1) * H);
            if (b === 1) expect(row.some((x) => x !== 0), `${name} layer ${l} stream 1 kept`).toBe(true);
            else expect(row.every((x) => x === 0), `${name} layer ${l} stream ${b} zeroed`).toBe(true);
          }
        }
      }
      const layers = layerParts(2, B * H);
      expectPerPart(gs.hidden, cs.hidden, layers, TOL, 'h');
      expectPerPart(gs.cellState!, cs.cellState!, layers, TOL, 'c');
      const [gg, cg] = [await g.gradients(chunks[1]), await c.gradients(chunks[1])];
      expectPerPart(gg.grads, cg.grads, paramLayout(model).slots, TOL, 'gradient');
    } finally {
      g.destroy();
    }
  });

  it('the trainer\'s staggered state resets run in lockstep on both backends', async () => {
    const text = loadCorpus('shakespeare').text.slice(0, 6_000);
    const tok = CharTokenizer.fromText(text);
    const ids = tok.encode(text);
    const model: ModelConfig = { cell: 'gru', vocabSize: tok.vocab.length, hiddenSize: 24 };
    const train: TrainConfig = { seqLength: 8, batchSize: 4, optimizer: 'adam', learningRate: 0.01, clip: 5, stateReset: 3 };
    const g = await GpuBackend.create(gpu!, model, train, 4);
    const c = new CpuBackend(model, train, 4);
    const never = new CpuBackend(model, { ...train, stateReset: 0 }, 4);
    try {
      const [tg, tc, tn] = [new Trainer(g, ids, ids), new Trainer(c, ids, ids), new Trainer(never, ids, ids)];
      let differs = 0;
      for (let i = 0; i < 7; i++) {
        const [lg, lc, ln] = [await (await tg.step()).loss, await (await tc.step()).loss, await (await tn.step()).loss];
        expect(Math.abs(lg - lc) / lc, `iteration ${i}`).toBeLessThan(1e-4);
        differs = Math.max(differs, Math.abs(ln - lc) / lc);
      }
      // The resets happened: without them the same run drifts apart.
      expect(differs).toBeGreaterThan(1e-3);
      const [gs, cs] = [await g.exportState(), await c.exportState()];
      expect(relError(gs.hidden, cs.hidden)).toBeLessThan(TOL);
    } finally {
      g.destroy();
    }
  });

  it('a few kilobytes of real text: the loss falls on both backends and the curves agree', async () => {
    const text = loadCorpus('shakespeare').text.slice(20_000, 28_000);
    const tok = CharTokenizer.fromText(text);
    const ids = tok.encode(text);
    const model: ModelConfig = { cell: 'rnn', vocabSize: tok.vocab.length, hiddenSize: 48 };
    const train: TrainConfig = { seqLength: 16, batchSize: 8, optimizer: 'adam', learningRate: 0.01, clip: 5 };
    const g = await GpuBackend.create(gpu!, model, train, 11);
    const c = new CpuBackend(model, train, 11);
    try {
      const sg = new BatchStream(ids, 8, 16);
      const gl: number[] = [];
      const cl: number[] = [];
      for (let i = 0; i < 60; i++) {
        const batch = sg.next();
        if (batch.wrapped) { g.resetState(); c.resetState(); }
        gl.push(await (await g.trainStep(batch)).loss);
        cl.push(await (await c.trainStep(batch)).loss);
      }
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      expect(mean(gl.slice(-10))).toBeLessThan(mean(gl.slice(0, 5)) - 0.8);
      expect(mean(cl.slice(-10))).toBeLessThan(mean(cl.slice(0, 5)) - 0.8);
      // f32 differences grow through 60 updates but stay small against the loss itself.
      for (let i = 0; i < gl.length; i++) expect(Math.abs(gl[i] - cl[i]) / cl[i], `iteration ${i}`).toBeLessThan(1e-3);
    } finally {
      g.destroy();
    }
  });
});
