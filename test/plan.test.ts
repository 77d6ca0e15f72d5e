/**
 * The iteration plan (src/gpu/plan.ts) as data, with no device: the dispatch count is the
 * formula's, every binding stays inside its buffer, each cell step reads and writes the offsets
 * of its layer and timestep, nothing is read before it is written, every gradient is written, and
 * the plan is the same each time it is made. The GPU tests (parity, kernels) then check that
 * running it computes the right numbers.
 */
import { describe, expect, it } from 'vitest';
import { dispatchesPerIteration, planBuffers, UNIFORM_ALIGN } from '../src/gpu/buffers.ts';
import { KERNELS } from '../src/gpu/kernels/index.ts';
import { OPTIMIZER_UNIFORM_BYTES } from '../src/gpu/kernels/optimizer.ts';
import { trainingBuffers } from '../src/gpu/memory.ts';
import { planIteration, type IterationPlan, type PlannedDispatch } from '../src/gpu/plan.ts';
import { GATES, SAVED } from '../src/model/cells.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../src/model/config.ts';
import { paramLayout } from '../src/model/layout.ts';

const train = (seqLength: number, batchSize: number, optimizer: 'adam' | 'adagrad' = 'adam'): TrainConfig =>
  ({ seqLength, batchSize, optimizer, learningRate: 1e-3, clip: 5 });

const CONFIGS: [ModelConfig, TrainConfig][] = [
  [{ cell: 'rnn', vocabSize: 87, hiddenSize: 64 }, train(5, 8)],
  [{ cell: 'rnn', vocabSize: 11, hiddenSize: 7 }, train(3, 3, 'adagrad')],
  [{ cell: 'lstm', vocabSize: 65, hiddenSize: 36, layers: 2 }, train(4, 11)],
  [{ cell: 'gru', vocabSize: 30, hiddenSize: 20, layers: 3, dropout: 0.3 }, train(3, 1)],
  [{ cell: 'lstm', vocabSize: 2000, hiddenSize: 16, layers: 2, dropout: 0.5 }, train(2, 2)],
  [{ cell: 'gru', vocabSize: 13, hiddenSize: 9 }, train(6, 5)],
  [{ cell: 'rnn', vocabSize: 5, hiddenSize: 3, layers: 2, dropout: 0.1 }, train(1, 1)],
];
const name = ([m, t]: [ModelConfig, TrainConfig]) =>
  `${m.cell} L=${m.layers ?? 1} H=${m.hiddenSize} V=${m.vocabSize} T=${t.seqLength} B=${t.batchSize}${m.dropout ? ` dropout ${m.dropout}` : ''}`;

const all = (p: IterationPlan) => [...p.forward, ...p.backwardWithDh0, ...p.update];
const fields = (d: PlannedDispatch) => KERNELS[d.kernel].uniforms.u!.unpack(d.uniforms!);

describe.each(CONFIGS)('planIteration: %s', (...config) => {
  const [model, t] = config;
  const plan = planIteration(model, t);
  const full = fullModelConfig(model);
  const { hiddenSize: H, layers: L, cell } = full;
  const { seqLength: T, batchSize: B } = t;
  const BH = B * H, GH = GATES[cell] * H, N = T * B, S = SAVED[cell];
  const buffers = new Map(plan.buffers.map((b) => [b.name, b]));
  it(`${name(config)}: L(2T + 6) + 2dL + 6 dispatches, and one dh0 dispatch per layer besides`, () => {
    const count = plan.forward.length + plan.backward.length + plan.update.length;
    expect(count).toBe(dispatchesPerIteration(model, t));
    expect(count).toBe(L * (2 * T + 6) + 2 * (full.dropout > 0 ? 1 : 0) * L + 6);
    expect(plan.backwardWithDh0.length).toBe(plan.backward.length + L);
    expect(plan.backwardWithDh0.filter((d) => !plan.backward.includes(d)).every((d) => d.label.endsWith('dh0'))).toBe(true);
  });

  it('every binding inside its buffer, of the right kind; uniforms at their own 256-byte arena slot', () => {
    const slots = new Set<number>();
    for (const d of all(plan)) {
      const k = KERNELS[d.kernel];
      expect(d.bindings.length, d.label).toBe(k.bindings.length);
      d.bindings.forEach((b, i) => {
        const buf = buffers.get(b.buffer);
        expect(buf, `${d.label}: ${b.buffer}`).toBeDefined();
        expect(b.offset + b.size, `${d.label}: ${b.buffer}`).toBeLessThanOrEqual(buf!.size);
        const uniform = k.bindings[i] in k.uniforms;
        expect(buf!.usage, `${d.label}: binding ${k.bindings[i]}`).toBe(uniform ? 'uniform' : 'storage');
        if (b.buffer === 'uniforms') {
          expect(b.offset % UNIFORM_ALIGN).toBe(0);
          expect(slots.has(b.offset), `${d.label}: slot shared`).toBe(false);
          slots.add(b.offset);
          expect(new Uint8Array(buf!.init!, b.offset, b.size)).toEqual(new Uint8Array(d.uniforms!));
        } else if (!uniform) {
          expect([b.offset, b.size]).toEqual([0, buf!.size]);
        }
        for (const r of b.touches) {
          expect(r.count, `${d.label}: ${b.buffer}`).toBeGreaterThan(0);
          expect(4 * r.offset, `${d.label}: ${b.buffer}`).toBeGreaterThanOrEqual(b.offset);
          expect(4 * (r.offset + r.count), `${d.label}: ${b.buffer} [${r.offset}, +${r.count})`).toBeLessThanOrEqual(b.offset + b.size);
        }
      });
      // WebGPU refuses a buffer bound twice in one dispatch when one binding writes it.
      const names = d.bindings.map((b) => b.buffer);
      const written = d.bindings.filter((b) => b.touches.some((r) => r.write)).map((b) => b.buffer);
      expect(written.filter((w) => names.indexOf(w) !== names.lastIndexOf(w)), d.label).toEqual([]);
    }
    expect(slots.size * UNIFORM_ALIGN).toBe(buffers.get('uniforms')!.size);
  });

  it('each cell step reads step t of its layer and writes step t + 1 (forward), and back (backward)', () => {
    const hBase = (l: number) => l * (T + 1) * BH;
    for (let l = 0; l < L; l++) {
      const fwd = plan.forward.filter((d) => d.label.startsWith(`forward layer ${l} cell_forward`));
      expect(fwd.map((d) => d.label)).toEqual(Array.from({ length: T }, (_, s) => `forward layer ${l} cell_forward t=${s}`));
      fwd.forEach((d, s) => {
        expect(fields(d)).toMatchObject({
          B, H, offWhhT: l * GH * H, offGi: s * B * GH, offHin: hBase(l) + s * BH, offHout: hBase(l) + (s + 1) * BH,
          offCin: hBase(l) + s * BH, offCout: hBase(l) + (s + 1) * BH, offSaved: (l * N + s * B) * S * H,
        });
        const h = d.bindings[KERNELS.cell_forward.bindings.indexOf('hAll')];
        expect(h.touches).toEqual([{ offset: hBase(l) + s * BH, count: BH }, { offset: hBase(l) + (s + 1) * BH, count: BH, write: true }]);
      });
      const bwd = plan.backwardWithDh0.filter((d) => d.label.startsWith(`backward layer ${l} cell_backward`));
      expect(bwd.map((d) => d.label)).toEqual([...Array.from({ length: T }, (_, i) => `backward layer ${l} cell_backward t=${T - 1 - i}`), `backward layer ${l} cell_backward dh0`]);
      bwd.forEach((d, i) => {
        const s = i < T ? T - 1 - i : 0;
        const tail = i === T;
        const hasNext = tail || s < T - 1;
        expect(fields(d)).toMatchObject({
          B, H, offDG: s * B * GH, offDAbove: s * BH, offHin: hBase(l) + s * BH, offHout: hBase(l) + (s + 1) * BH,
          offSaved: (l * N + s * B) * S * H, offDState: l * 3 * BH, hasNext: hasNext ? 1 : 0,
          offDGhNext: tail ? 0 : hasNext ? (s + 1) * B * GH : 0, tail: tail ? 1 : 0,
        });
      });
    }
    expect(plan.stateIn.filter((c) => c.to === 'hAll').map((c) => c.toOffset / 4)).toEqual(Array.from({ length: L }, (_, l) => hBase(l)));
    expect(plan.stateOut.filter((c) => c.from === 'hAll').map((c) => c.fromOffset / 4)).toEqual(Array.from({ length: L }, (_, l) => hBase(l) + T * BH));
    expect(plan.readout.last).toEqual(Array.from({ length: L }, (_, l) => hBase(l) + T * BH));
  });

  it('nothing is read before it is written (or uploaded), and every gradient is written', () => {
    for (const list of [[...plan.forward, ...plan.backward, ...plan.update], [...plan.forward, ...plan.backwardWithDh0]]) {
      const valid = new Map(plan.buffers.map((b) => [b.name, new Uint8Array(b.size / 4)]));
      for (const b of ['params', 'optM', 'optV', 'whhT', 'whhAt', 'inputs', 'targets', 'embStart', 'embPos']) valid.get(b)!.fill(1);
      for (const c of plan.stateIn) valid.get(c.to)!.fill(1, c.toOffset / 4, (c.toOffset + c.size) / 4);
      // The padding between tensors: zero since the buffer was created, and no kernel writes it.
      const slots = paramLayout(model).slots;
      const grads = valid.get('grads')!.fill(1);
      for (const slot of slots) grads.fill(0, slot.offset, slot.offset + slot.size);
      for (const d of list) {
        for (const b of d.bindings) {
          for (const r of b.touches.filter((x) => !x.write)) {
            const unset = valid.get(b.buffer)!.subarray(r.offset, r.offset + r.count).indexOf(0);
            expect(unset, `${d.label} reads ${b.buffer}[${r.offset + unset}] before anything wrote it`).toBe(-1);
          }
        }
        for (const b of d.bindings) for (const r of b.touches.filter((x) => x.write)) valid.get(b.buffer)!.fill(1, r.offset, r.offset + r.count);
      }
      for (const slot of slots) expect(grads.subarray(slot.offset, slot.offset + slot.size).every((v) => v === 1), `gradient of ${slot.name}`).toBe(true);
    }
  });

  it('the logits product reads the decoder copy the optimizer keeps, through vec4 loads', () => {
    const logits = plan.forward.find((d) => d.label.endsWith('matmul logits'))!;
    expect(logits.entryPoint).toBe('main_vb');
    expect(logits.bindings[1].buffer).toBe('whhT');
    const u = fields(logits) as Record<string, number>;
    const dec = plan.optimizer.whh.decoder!;
    expect([u.offB, u.ldb, u.offBias, u.hasBias]).toEqual([dec.off, dec.ld, dec.off + H * dec.ld, 1]);
    const update = plan.update[0].bindings[5];
    expect(update.buffer).toBe('whhT');
    for (let k = 0; k <= H; k++) expect(update.touches).toContainEqual({ offset: dec.off + k * dec.ld, count: full.vocabSize, write: true });
    expect(OPTIMIZER_UNIFORM_BYTES).toBeLessThanOrEqual(buffers.get('optimizerUniforms')!.size);
  });

  it('buffers as the memory estimate counts them, and the same plan every time', () => {
    expect(plan.buffers.map((b) => [b.name, b.size])).toEqual(planBuffers(model, t).map((b) => [b.name, b.size]));
    expect(trainingBuffers(model, t).reduce((a, b) => a + b.bytes, 0)).toBe(plan.buffers.reduce((a, b) => a + b.size, 0));
    const bytes = (_: string, v: unknown) => (v instanceof ArrayBuffer ? Array.from(new Uint8Array(v)) : v);
    expect(JSON.stringify(planIteration(model, t), bytes)).toBe(JSON.stringify(plan, bytes));
  });
});

describe('planIteration: the grid spills into y past the per-dimension limit', () => {
  it('as the device allows, with the same dispatches otherwise', () => {
    const model: ModelConfig = { cell: 'rnn', vocabSize: 300, hiddenSize: 40 };
    const roomy = planIteration(model, train(4, 8));
    const tight = planIteration(model, train(4, 8), { maxComputeWorkgroupsPerDimension: 4 });
    expect(tight.forward.map((d) => d.kernel)).toEqual(roomy.forward.map((d) => d.kernel));
    const gather = (p: IterationPlan) => p.forward[0];
    expect([gather(roomy).x, gather(roomy).y]).toEqual([Math.ceil((32 * 40) / 64), 1]);
    expect(gather(tight).x).toBe(4);
    expect(gather(tight).x * gather(tight).y * 64).toBeGreaterThanOrEqual(32 * 40);
  });
});
