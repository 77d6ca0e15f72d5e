/**
 * The iteration plan (src/gpu/plan.ts) as data, with no device: the dispatch count is the
 * formula's, every binding stays inside its buffer, each cell step reads and writes the offsets
 * of its layer and timestep, nothing is read before it is written, every gradient is written, and
 * the plan is the same each time it is made. The GPU tests (parity, kernels) then check that
 * running it computes the right numbers.
 */
import { describe, expect, it } from 'vitest';
import { dispatchesPerIteration, planBuffers, splitPlan, UNIFORM_ALIGN } from '../src/gpu/buffers.ts';
import { KERNELS } from '../src/gpu/kernels/index.ts';
import { OPTIMIZER_UNIFORM_BYTES } from '../src/gpu/kernels/optimizer.ts';
import { checkFits, DeviceLimitError, trainingBuffers } from '../src/gpu/memory.ts';
import { withBindingLimit, type GpuContext } from '../src/gpu/device.ts';
import { forcedBindingLimit, GpuEnvError } from '../src/node/webgpu.ts';
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

/** Nothing is read before it is written (or uploaded), and every gradient is written. */
function expectWrittenBeforeRead(plan: IterationPlan, model: ModelConfig): void {
  for (const list of [[...plan.forward, ...plan.backward, ...plan.update], [...plan.forward, ...plan.backwardWithDh0]]) {
    const valid = new Map(plan.buffers.map((b) => [b.name, new Uint8Array(b.size / 4)]));
    for (const b of ['params', 'optM', 'optV', 'whhT', 'whhAt', 'inputs', 'targets', 'embStart', 'embPos', 'embRuns']) valid.get(b)!.fill(1);
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
}

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

  it('nothing is read before it is written (or uploaded), and every gradient is written', () => expectWrittenBeforeRead(plan, model));

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
    // The input gather: W_ih's 40 rows in x, the chunk's 32 run slots (min(T B, V)) in y, which
    // take turns where y holds fewer (input_gather.wgsl).
    const gather = (p: IterationPlan) => p.forward[0];
    expect(gather(roomy).kernel).toBe('input_gather');
    expect([gather(roomy).x, gather(roomy).y]).toEqual([1, 32]);
    expect([gather(tight).x, gather(tight).y]).toEqual([1, 4]);
    // Every dispatch wider than 4 workgroups in x (the products, the optimizer) spills into y.
    const all = (p: IterationPlan) => [...p.forward, ...p.backward, ...p.update];
    const wide = all(roomy).map((d, i) => [d, all(tight)[i]]).filter(([d]) => d.x > 4);
    expect(wide.length).toBeGreaterThanOrEqual(3);
    for (const [r, t] of wide) {
      expect(t.x, r.label).toBeLessThanOrEqual(4);
      expect(t.x * t.y, r.label).toBeGreaterThanOrEqual(r.x * r.y);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The split plan: parameters larger than one storage binding (forced here with limits of a few KB).

const limited = (bindBytes: number, align = 256, maxPerDim = 65535) => ({
  maxComputeWorkgroupsPerDimension: maxPerDim, maxStorageBufferBindingSize: bindBytes, maxBufferSize: 2 ** 32, minStorageBufferOffsetAlignment: align,
}) as const;
const asDevice = (l: ReturnType<typeof limited>) => l as unknown as GPUSupportedLimits;

const SPLIT_CONFIGS: [ModelConfig, TrainConfig, number, number, number?][] = [
  [{ cell: 'lstm', vocabSize: 5, hiddenSize: 16 }, train(3, 2), 2048, 256],
  [{ cell: 'rnn', vocabSize: 9, hiddenSize: 24 }, train(4, 3, 'adagrad'), 1536, 64],
  [{ cell: 'gru', vocabSize: 7, hiddenSize: 10, layers: 2, dropout: 0.2 }, train(2, 2), 1280, 32],
  [{ cell: 'lstm', vocabSize: 6, hiddenSize: 12, layers: 2 }, train(1, 1), 2560, 256],
  // Deep: the per-layer activations (saved gates, hidden states) past one binding, a layer each fits.
  [{ cell: 'lstm', vocabSize: 5, hiddenSize: 8, layers: 3, dropout: 0.1 }, train(4, 3), 2048, 64],
  // Only the saved gates are too large; the parameters fit one binding.
  [{ cell: 'gru', vocabSize: 3, hiddenSize: 4, layers: 2 }, train(10, 4), 2800, 32],
  // Deep with W_ih above layer 0 split as W_hh is; a grid limit of 2 workgroups per dimension makes
  // dL/dx two ranges of positions.
  [{ cell: 'lstm', vocabSize: 5, hiddenSize: 16, layers: 2 }, train(5, 2), 3072, 256, 2],
  [{ cell: 'rnn', vocabSize: 5, hiddenSize: 24, layers: 3, dropout: 0.5 }, train(3, 2), 2048, 64],
  // Layer 0's W_ih [G*H, V] past one binding (a large vocabulary): input_gather and embedding_grad by its rows.
  [{ cell: 'gru', vocabSize: 30, hiddenSize: 6 }, train(3, 2), 1024, 64],
];

describe.each(SPLIT_CONFIGS)('planIteration, split: %s', (model, t, bindBytes, align, maxPerDim) => {
  const limits = limited(bindBytes, align, maxPerDim);
  const plan = planIteration(model, t, limits);
  const ordinary = planIteration(model, t);
  const split = splitPlan(model, t, limits)!;
  const buffers = new Map(plan.buffers.map((b) => [b.name, b]));
  const { hiddenSize: H, layers: L, cell } = fullModelConfig(model);
  const GH = GATES[cell] * H;

  it(`${name([model, t])} in bindings of ${bindBytes} bytes: fits the device check, and the ordinary plan would not`, () => {
    expect(() => checkFits(model, t, asDevice(limits))).not.toThrow();
    expect(Math.max(...ordinary.buffers.filter((b) => b.usage === 'storage').map((b) => b.size))).toBeGreaterThan(bindBytes);
    expect(split.whhChunks).toBe(Math.ceil(GH / Math.min(GH, Math.floor((bindBytes / 4 - align / 4 + 1) / H))));
    expect(split.whhChunks > 1 || split.wih0Chunks > 1 || L > 1).toBe(true);
  });

  it('the formula counts its dispatches: W_hh row-range matmuls per step and optimizer chunks besides', () => {
    const count = plan.forward.length + plan.backward.length + plan.update.length;
    expect(count).toBe(dispatchesPerIteration(model, t, limits));
    const T = t.seqLength;
    const c = split.whhChunks, dxRanges = Math.ceil((T * t.batchSize) / split.dxRows);
    const wih = c > 1 ? (L - 1) * (2 * (c - 1) + dxRanges * (c + 1) - 1) : 0;
    expect(count - dispatchesPerIteration(model, t)).toBe(L * (2 * T * c - 1) + split.optChunks - 1 + wih + 2 * (split.wih0Chunks - 1));
    expect(plan.update.length).toBe(split.optChunks);
    expect(plan.backwardWithDh0.length).toBe(plan.backward.length + L * (1 + split.whhChunks));
  });

  it('every storage binding inside its buffer and one binding, at an aligned offset, covering what it touches', () => {
    for (const d of all(plan)) {
      const k = KERNELS[d.kernel];
      expect(d.bindings.length, d.label).toBe(k.bindings.length);
      d.bindings.forEach((b, i) => {
        const buf = buffers.get(b.buffer)!;
        expect(b.offset + b.size, `${d.label}: ${b.buffer}`).toBeLessThanOrEqual(buf.size);
        if (k.bindings[i] in k.uniforms || buf.usage !== 'storage') return;
        expect(b.size, `${d.label}: ${b.buffer}`).toBeLessThanOrEqual(bindBytes);
        expect(b.offset % align, `${d.label}: ${b.buffer}`).toBe(0);
        for (const r of b.touches) {
          expect(4 * r.offset, `${d.label}: ${b.buffer}`).toBeGreaterThanOrEqual(b.offset);
          expect(4 * (r.offset + r.count), `${d.label}: ${b.buffer}`).toBeLessThanOrEqual(b.offset + b.size);
        }
      });
    }
  });

  it('nothing is read before it is written, and every gradient is written', () => expectWrittenBeforeRead(plan, model));

  it('the optimizer chunks cover every parameter once; no transposed copies', () => {
    const P = paramLayout(model).length;
    const seen = new Uint8Array(P);
    plan.update.forEach((d, i) => {
      const p = d.bindings[KERNELS.optimizer.bindings.indexOf('params')];
      const w = p.touches.find((r) => r.write)!;
      seen.fill(seen[w.offset] + 1, w.offset, w.offset + w.count);
      expect(w.count).toBe(plan.optimizer.chunks[i]);
      const u = d.bindings[KERNELS.optimizer.bindings.indexOf('u')];
      expect([u.buffer, u.offset]).toEqual(['optimizerUniforms', i * UNIFORM_ALIGN]);
    });
    expect(seen.every((v) => v === 1)).toBe(true);
    expect(plan.optimizer.whh.layers).toBe(0);
    expect(plan.optimizer.whh.decoder).toBeUndefined();
    expect(plan.forward.filter((d) => d.kernel === 'cell_forward').every((d) => d.entryPoint === 'main_gh')).toBe(true);
    expect(plan.backwardWithDh0.filter((d) => d.kernel === 'cell_backward').every((d) => d.entryPoint === 'main_dh')).toBe(true);
    // The logits come from W_dec itself (a transposed B, its window of params), not a decoder copy.
    const logits = plan.forward.find((d) => d.label.endsWith('matmul logits'))!;
    expect(logits.bindings[KERNELS.matmul.bindings.indexOf('B')].buffer).toBe('params');
    expect(logits.constants.TRANS_B).toBe(1);
    expect(plan.matmuls.find((m) => m.label === 'logits')!.transB).toBe(true);
    for (const d of all(plan)) {
      for (const b of d.bindings.filter((x) => x.buffer === 'whhT')) expect(b.touches, d.label).toEqual([]);
    }
  });

  it('lists no recurrent step for the tuner, and a choice of cell blockings leaves it as it is', () => {
    expect(plan.cells).toEqual([]);
    expect(ordinary.cells.length).toBeGreaterThan(0);
    const choice = Object.fromEntries(ordinary.cells.map((c) => [c.key, 'rows1-units4']));
    const bytes = (_: string, v: unknown) => (v instanceof ArrayBuffer ? Array.from(new Uint8Array(v)) : v);
    expect(JSON.stringify(planIteration(model, t, limits, choice), bytes)).toBe(JSON.stringify(plan, bytes));
    expect(JSON.stringify(planIteration(model, t, undefined, choice), bytes)).not.toBe(JSON.stringify(ordinary, bytes));
  });

  it('each step\'s W_hh products cover all G*H rows, in windows of W_hh', () => {
    const layout = paramLayout(model);
    const gathers = plan.forward.filter((d) => d.kernel === 'input_gather');
    expect(gathers.length).toBe(split.wih0Chunks);
    expect(gathers.reduce((a, d) => a + (fields(d).rows as number), 0)).toBe(GH);
    const embeds = plan.backward.filter((d) => d.kernel === 'embedding_grad').flatMap((d) => d.bindings[KERNELS.embedding_grad.bindings.indexOf('out')].touches);
    expect(embeds.reduce((a, r) => a + r.count, 0)).toBe(GH * model.vocabSize);
    for (let l = 0; l < L; l++) {
      if (l > 0 && split.whhChunks > 1) {
        // W_ih above layer 0 likewise: gi by its rows, dW_ih by its rows, dL/dx summed over them.
        expect(plan.matmuls.filter((m) => m.label === `layer ${l} gi rows`).reduce((a, m) => a + m.N, 0)).toBe(GH);
        expect(plan.matmuls.filter((m) => m.label === `layer ${l} dW_ih rows`).reduce((a, m) => a + m.M, 0)).toBe(GH);
        const sums = plan.backward.filter((d) => d.label.startsWith(`backward layer ${l} column_sum dL/dx`));
        expect(sums.length).toBe(Math.ceil((t.seqLength * t.batchSize) / split.dxRows));
        if (maxPerDim) expect(sums.length).toBeGreaterThan(1);
      }
      const gh = plan.matmuls.filter((m) => m.label === `layer ${l} gh rows`);
      expect(gh.length).toBe(t.seqLength * split.whhChunks);
      expect(gh.slice(0, split.whhChunks).reduce((a, m) => a + m.N, 0)).toBe(GH);
      const dW = plan.backward.filter((d) => d.label.startsWith(`backward layer ${l} matmul dW_hh rows`));
      const written = dW.flatMap((d) => d.bindings[KERNELS.matmul.bindings.indexOf('C')].touches);
      expect(written.reduce((a, r) => a + r.count, 0)).toBe(GH * H);
      expect(Math.min(...written.map((r) => r.offset))).toBe(layout.layers[l].weightHh.offset);
    }
  });

  it('buffers as the memory estimate counts them; a roomy limit gives the ordinary plan', () => {
    expect(plan.buffers.map((b) => [b.name, b.size])).toEqual(planBuffers(model, t, limits).map((b) => [b.name, b.size]));
    expect(trainingBuffers(model, t, asDevice(limits)).reduce((a, b) => a + b.bytes, 0)).toBe(plan.buffers.reduce((a, b) => a + b.size, 0));
    const bytes = (_: string, v: unknown) => (v instanceof ArrayBuffer ? Array.from(new Uint8Array(v)) : v);
    expect(JSON.stringify(planIteration(model, t, limited(2 ** 27)), bytes)).toBe(JSON.stringify(ordinary, bytes));
  });
});

describe('checkFits and the split plan agree', () => {
  it('what the check lets through plans within the limit; what it refuses names what does not fit', () => {
    let passed = 0, refused = 0;
    for (const cell of ['rnn', 'lstm', 'gru'] as const) {
      for (const [H, V, layers] of [[8, 5, 1], [16, 20, 1], [12, 4, 2], [32, 3, 1]]) {
        for (const bindBytes of [512, 1024, 2048, 4096, 8192]) {
          const model: ModelConfig = { cell, hiddenSize: H, vocabSize: V, layers };
          const t = train(2, 3), limits = limited(bindBytes, 64);
          let fits = true;
          try {
            checkFits(model, t, asDevice(limits));
          } catch (e) {
            expect(e).toBeInstanceOf(DeviceLimitError);
            expect((e as Error).message).toMatch(/needs .* but this adapter allows/);
            fits = false;
          }
          if (!fits) {
            refused++;
            continue;
          }
          passed++;
          const plan = planIteration(model, t, limits);
          for (const d of all(plan)) {
            for (const b of d.bindings) if (buffersOf(plan).get(b.buffer)!.usage === 'storage') expect(b.size, `${d.label} ${b.buffer}`).toBeLessThanOrEqual(bindBytes);
          }
        }
      }
    }
    expect(passed).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(5);
  });
});

const buffersOf = (p: IterationPlan) => new Map(p.buffers.map((b) => [b.name, b]));

describe('forcing a smaller binding limit (WEBGPU_MAX_BINDING)', () => {
  it('reads bytes with K, M, G suffixes and refuses anything else in words', () => {
    expect(forcedBindingLimit(undefined)).toBeUndefined();
    expect(forcedBindingLimit(' ')).toBeUndefined();
    expect([forcedBindingLimit('65536'), forcedBindingLimit('64K'), forcedBindingLimit('16m'), forcedBindingLimit('1GiB')]).toEqual([65536, 65536, 16 * 2 ** 20, 2 ** 30]);
    for (const bad of ['abc', '100', '-5K', '1.5M']) expect(() => forcedBindingLimit(bad), bad).toThrow(GpuEnvError);
  });

  it('lowers the context\'s limit, never raises it, and keeps every other limit (attributes on the prototype)', () => {
    class Limits {
      get maxStorageBufferBindingSize() { return 2 ** 27; }
      get maxBufferSize() { return 2 ** 32; }
    }
    Object.defineProperties(Limits.prototype, { maxStorageBufferBindingSize: { enumerable: true }, maxBufferSize: { enumerable: true } });
    const ctx = { limits: new Limits() } as unknown as GpuContext;
    expect(withBindingLimit(ctx, 4096).limits).toMatchObject({ maxStorageBufferBindingSize: 4096, maxBufferSize: 2 ** 32 });
    expect(withBindingLimit(ctx, 2 ** 30).limits.maxStorageBufferBindingSize).toBe(2 ** 27);
  });
});
