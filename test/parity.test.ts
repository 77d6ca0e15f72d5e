/**
 * Whole training iterations, GPU against the CPU reference (float32 storage on both), for every
 * cell (rnn, lstm, gru), one layer and stacks of 2-3 layers with dropout (the GPU regenerates the
 * CPU's mask bit for bit from uniformAt(seed, iteration, element)).
 *
 * Tolerances, relative to each tensor's largest magnitude (relError in test/gpu.ts):
 * - loss, gradients, hidden states: 1e-4. Both sides round to f32, but sum in different orders
 *   (the GPU in 4-wide register blocks, the CPU sequentially in f64); over K <= a few hundred
 *   terms the difference stays around 1e-6..1e-5 of the largest element.
 * - optimizer updates from identical gradients: 1e-6 (f32 rounding of one update).
 * - a 60-iteration loss curve on real text: 1e-3 of the loss (differences compound over updates).
 */
import { describe, expect, it } from 'vitest';
import { gpu, noGpu, relError } from './gpu.ts';
import { CpuBackend } from '../src/cpu/backend.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import { paramLayout } from '../src/model/layout.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import type { OptimizerName } from '../src/model/optimizer.ts';
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

function make(shape: (typeof shapes)[number], optimizer: OptimizerName, seed: number, net: Net = { cell: 'rnn' }) {
  const model: ModelConfig = { ...net, vocabSize: shape.V, hiddenSize: shape.H };
  const train: TrainConfig = { seqLength: shape.T, batchSize: shape.B, optimizer, learningRate: optimizer === 'adam' ? 0.01 : 0.1, clip: 5 };
  const rng = new Rng(seed);
  const n = shape.T * shape.B;
  const chunks = Array.from({ length: 4 }, () => ({
    inputs: Uint32Array.from({ length: n }, () => Math.floor(rng.next() * shape.V)),
    targets: Uint32Array.from({ length: n }, () => Math.floor(rng.next() * shape.V)),
  }));
  return { model, train, chunks };
}

describe.skipIf(noGpu)('GPU training iteration vs CPU reference', () => {
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
        for (const s of paramLayout(model).slots) {
          const part = (a: Float32Array) => a.subarray(s.offset, s.offset + s.size);
          expect(relError(part(gr.grads), part(cr.grads)), s.name).toBeLessThan(TOL);
        }
        expect(relError(gr.hLast, cr.hLast), 'hLast').toBeLessThan(TOL);
        expect(relError(gr.dh0, cr.dh0), 'dh0').toBeLessThan(TOL);
        expect(gr.cLast === undefined).toBe(net.cell !== 'lstm');
        if (cr.cLast) {
          expect(relError(gr.cLast!, cr.cLast), 'cLast').toBeLessThan(TOL);
          expect(relError(gr.dc0!, cr.dc0!), 'dc0').toBeLessThan(TOL);
        }
      } finally {
        g.destroy();
      }
    });

    for (const optimizer of ['adam', 'adagrad'] as const) {
      it(`4 ${optimizer} iterations in lockstep: ${name}`, async () => {
        const { model, train, chunks } = make(shape, optimizer, 2, net);
        const g = await GpuBackend.create(gpu!, model, train, 7);
        const c = new CpuBackend(model, train, 7);
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
            expect(relError(gr.grads, cr.grads), 'gradients').toBeLessThan(TOL);
            const gl = await (await g.trainStep(chunk)).loss;
            const cl = await (await c.trainStep(chunk)).loss;
            expect(Math.abs(gl - cl) / cl).toBeLessThan(TOL);
            // The update itself, from identical gradients: only f32 rounding separates the two,
            // so 1e-6 of the largest parameter.
            const expected = { m: before.optM.slice(), v: before.optV.slice(), step: before.optStep };
            const params = before.params.slice();
            optimizerUpdate(optimizer, params, gr.grads, expected, train.learningRate, train.clip);
            const after = await g.exportState();
            expect(after.optStep).toBe(expected.step);
            expect(relError(after.params, params), 'parameters').toBeLessThan(1e-6);
            expect(relError(after.optM, expected.m), 'moment 1').toBeLessThan(1e-6);
            if (optimizer === 'adam') expect(relError(after.optV, expected.v), 'moment 2').toBeLessThan(1e-6);
            expect(relError(after.hidden, gr.hLast), 'carried hidden state').toBe(0);
            if (gr.cLast) expect(relError(after.cellState!, gr.cLast), 'carried memory cells').toBe(0);
          }
        } finally {
          g.destroy();
        }
      });
    }
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
      expect(after.hidden).toEqual(before.hidden);
      expect(after.params).toEqual(before.params);
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
      expect(relError(gs.hidden, cs.hidden)).toBeLessThan(TOL);
      expect(relError(gs.cellState!, cs.cellState!)).toBeLessThan(TOL);
      const [gg, cg] = [await g.gradients(chunks[1]), await c.gradients(chunks[1])];
      expect(relError(gg.grads, cg.grads)).toBeLessThan(TOL);
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
