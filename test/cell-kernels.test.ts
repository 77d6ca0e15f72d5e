/**
 * The recurrent layers' kernels, each alone against its CPU twin, on shapes that are not multiples
 * of the blocks (B = 1 included), through both entry points (scalar and vec4 W_hh loads), for every cell
 * and every blocking the tuner may pick (CELL_CANDIDATES: the default on every shape, the others on
 * the ragged ones):
 *   cell_forward.wgsl   vs gatePreactivations + cellPointwise (src/cpu/cells.ts)
 *   cell_backward.wgsl  vs cellPointwiseBackward + the W_hh^T dgh part of gatePreactivationsBackward
 *   input_gather.wgsl   vs gatePreactivations' gi for token inputs
 *   dropout.wgsl        vs dropoutMask (src/model/dropout.ts)
 * Each kernel reads and writes at non-zero offsets, as GpuBackend's per-step dispatches do.
 */
import { describe, expect, it } from 'vitest';
import { gpu, noGpu, relError } from './gpu.ts';
import { KernelRunner } from '../src/gpu/kernels/common.ts';
import { CELL_CANDIDATES, cellBlocking, cellEntryPoint, DEFAULT_CELL_CANDIDATE } from '../src/gpu/kernels/cell.ts';
import { cellForwardLaunch } from '../src/gpu/kernels/cell_forward.ts';
import { cellBackwardLaunch } from '../src/gpu/kernels/cell_backward.ts';
import { inputGatherLaunch } from '../src/gpu/kernels/input_gather.ts';
import { positionsByToken } from '../src/gpu/kernels/embedding_grad.ts';
import { dropoutLaunch, dropoutMaskUniform } from '../src/gpu/kernels/dropout.ts';
import { transposedWhh } from '../src/gpu/kernels/optimizer.ts';
import { cellPointwise, cellPointwiseBackward, gatePreactivations, type LayerTensors } from '../src/cpu/cells.ts';
import { type CellType, GATES } from '../src/model/cells.ts';
import { dropoutMask } from '../src/model/dropout.ts';
import { GpuBackend, dispatchesPerIteration } from '../src/gpu/backend.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import { Rng } from '../src/util/random.ts';

async function withRunner<T>(fn: (r: KernelRunner) => Promise<T>): Promise<T> {
  const r = new KernelRunner(gpu!.device);
  try {
    return await fn(r);
  } finally {
    r.destroy();
  }
}

const rand = (rng: Rng, n: number, scale = 1) => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * scale);
const cells: CellType[] = ['rnn', 'lstm', 'gru'];
// v4: H and the W_hh offset multiples of 4, so the kernels take their vec4 entry point (main_v4).
const shapes = [
  { B: 3, H: 37, v4: false }, { B: 1, H: 5, v4: false }, { B: 6, H: 9, v4: false }, { B: 5, H: 1, v4: false },
  { B: 6, H: 36, v4: true }, { B: 1, H: 20, v4: true }, { B: 5, H: 4, v4: true }, { B: 2, H: 68, v4: true },
  // Past one block of 8 sequences (cellBlock's rows for B >= 5), with a ragged last block.
  { B: 11, H: 37, v4: false }, { B: 13, H: 20, v4: true },
];
// Every blocking on every shape above for the default, on shapes ragged for every block size for the others.
const ragged = new Set([shapes[0], shapes[2], shapes[9]]);
const variants = shapes.flatMap((shape) => Object.keys(CELL_CANDIDATES)
  .filter((c) => c === DEFAULT_CELL_CANDIDATE || ragged.has(shape)).map((candidate) => ({ ...shape, candidate })));
const named = (c: string) => (c === DEFAULT_CELL_CANDIDATE ? '' : ` [${c}]`);

describe.skipIf(noGpu)('cell_forward.wgsl vs gatePreactivations + cellPointwise', () => {
  // Tolerance: 2e-6 absolute on h, c and the saved gates. They are O(1) (c at most |c_{t-1}| + 1);
  // the only difference is the f32 dot of length H (terms ~1/sqrt(H) each) against the CPU's f64
  // one, a few 1e-7, and the activations have derivatives <= 1.
  for (const cell of cells) for (const { B, H, v4, candidate } of variants) {
    it(`${cell} B=${B} H=${H}${v4 ? ' (main_v4)' : ''}${named(candidate)}`, async () => {
      const tuned = cellBlocking('cell_forward', cell, B, candidate);
      const G = GATES[cell], GH = G * H;
      const rng = new Rng(B * 100 + H + G);
      const offWhh = v4 ? 8 : 3, offBhh = offWhh + GH * H + 1;
      const params = rand(rng, offBhh + GH + 20, 1 / Math.sqrt(H));
      const gi = rand(rng, 2 + B * GH, 1.5); // W_ih x + b_ih of this step
      const hPrev = rand(rng, B * H, 0.9), cPrev = rand(rng, B * H, 2);
      const offHin = 4, offHout = offHin + B * H + 3, offSaved = 5;
      const hBuf = new Float32Array(offHout + B * H + 1);
      hBuf.set(hPrev, offHin);
      const cBuf = new Float32Array(offHout + B * H + 1);
      cBuf.set(cPrev, offHin);

      const ref = { h: new Float64Array(B * H), c: new Float64Array(B * H), saved: new Float64Array(B * 4 * H) };
      const w: LayerTensors = {
        wIh: new Float64Array(GH), wHh: Float64Array.from(params.subarray(offWhh, offWhh + GH * H)),
        bIh: new Float64Array(GH), bHh: Float64Array.from(params.subarray(offBhh, offBhh + GH)), inputSize: 1,
      };
      const giRow = new Float64Array(GH), gh = new Float64Array(GH);
      for (let b = 0; b < B; b++) {
        const row = (a: Float64Array | Float32Array, width: number) => a.subarray(b * width, (b + 1) * width);
        const hIn = Float64Array.from(row(hPrev, H));
        gatePreactivations(w, GH, H, { tokens: [0] }, 0, hIn, giRow, gh);
        giRow.set(gi.subarray(2 + b * GH, 2 + (b + 1) * GH)); // the kernel's gi comes precomputed
        cellPointwise(cell, H, giRow, gh, hIn, Float64Array.from(row(cPrev, H)), row(ref.h, H) as Float64Array, row(ref.c, H) as Float64Array, row(ref.saved, 4 * H) as Float64Array);
      }

      const got = await withRunner(async (r) => {
        // The kernel reads W_hh from its transposed copy (as the optimizer keeps it), here at an offset.
        const offWhhT = v4 ? 8 : 3;
        const whhT = new Float32Array(offWhhT + GH * H + 16);
        whhT.set(transposedWhh(params, [offWhh], GH, H), offWhhT);
        const bufs = {
          params: r.storage(params), gi: r.storage(gi), hAll: r.storage(hBuf), cAll: r.storage(cBuf), saved: r.storage(offSaved + B * 4 * H),
          whhT: r.storage(whhT),
        };
        expect(cellEntryPoint(bufs.whhT, H, offWhhT, cell)).toBe(v4 ? 'main_v4' : 'main');
        const launch = cellForwardLaunch(cell, {
          B, H, offWhhT, offBhh, offGi: 2, offHin, offHout, offSaved, offCin: offHin, offCout: offHout,
        }, bufs, tuned);
        expect(launch.entryPoint).toBe(v4 && (tuned?.units ?? 4) % 4 === 0 ? 'main_v4' : 'main');
        await r.run([r.launch(launch)]);
        return { h: await r.read(bufs.hAll), c: await r.read(bufs.cAll), saved: await r.read(bufs.saved) };
      });
      const diff = (a: Float32Array, off: number, b: Float64Array) => Math.max(...Array.from(b, (v, i) => Math.abs(a[off + i] - v)));
      expect(diff(got.h, offHout, ref.h)).toBeLessThan(2e-6);
      expect(Array.from(got.h.subarray(offHin, offHin + B * H))).toEqual(Array.from(hPrev)); // h_{t-1} intact
      if (cell === 'lstm') expect(diff(got.c, offHout, ref.c)).toBeLessThan(2e-6);
      if (cell !== 'rnn') expect(diff(got.saved, offSaved, ref.saved)).toBeLessThan(2e-6);
    });
  }
});

describe.skipIf(noGpu)('cell_backward.wgsl vs cellPointwiseBackward + W_hh^T dgh', () => {
  // Tolerance: 1e-5 relative to each output's (each gate's) largest magnitude: an f32 sum of G*H
  // products (W_hh^T dgh_{t+1}) feeding algebraic pointwise formulas, as for the plain matmul.
  for (const cell of cells) for (const { B, H, v4, candidate } of variants) for (const hasNext of [true, false]) {
    it(`${cell} B=${B} H=${H}${hasNext ? '' : ' (last step)'}${v4 ? ' (main_v4)' : ''}${named(candidate)}`, async () => {
      const tuned = cellBlocking('cell_backward', cell, B, candidate);
      const G = GATES[cell], GH = G * H, BH = B * H;
      const rng = new Rng(B * 300 + H + G + (hasNext ? 1 : 0));
      const offWhh = v4 ? 12 : 5;
      const params = rand(rng, offWhh + GH * H + 16, 1 / Math.sqrt(H));
      const offNext = 2, offDG = offNext + B * GH + 1;
      const dGhBuf = new Float32Array(offDG + B * GH + 2);
      const dGhNext = rand(rng, B * GH);
      dGhBuf.set(dGhNext, offNext);
      const dAbove = rand(rng, 3 + BH), offDAbove = 3;
      // Activated gates in (0, 1) or (-1, 1), states of either sign: any values exercise the algebra.
      const saved = Float32Array.from({ length: 1 + B * 4 * H }, () => rng.next());
      const offSaved = 1;
      const hAll = rand(rng, 4 + 2 * BH, 0.95), cAll = rand(rng, 4 + 2 * BH, 2);
      const offHin = 4, offHout = 4 + BH;
      const offDState = 7;
      const dState = new Float32Array(offDState + 3 * BH);
      const direct = rand(rng, BH), dcNext = rand(rng, BH);
      dState.set(direct, offDState);
      dState.set(dcNext, offDState + BH);

      const wHh = Float64Array.from(params.subarray(offWhh, offWhh + GH * H));
      const ref = { dGi: new Float64Array(B * GH), dGh: new Float64Array(B * GH), direct: new Float64Array(BH), dc: new Float64Array(BH), dh0: new Float64Array(BH) };
      const dhOut = new Float64Array(H);
      for (let b = 0; b < B; b++) {
        const at = (a: Float32Array, off: number, width: number) => Float64Array.from(a.subarray(off + b * width, off + (b + 1) * width));
        for (let k = 0; k < H; k++) {
          let s = 0;
          for (let j = 0; j < GH; j++) s += wHh[j * H + k] * dGhNext[b * GH + j];
          dhOut[k] = dAbove[offDAbove + b * H + k] + (hasNext ? s + direct[b * H + k] : 0);
          ref.dh0[b * H + k] = s + direct[b * H + k];
        }
        const dcOut = hasNext ? Float64Array.from(dcNext.subarray(b * H, (b + 1) * H)) : new Float64Array(H);
        const sub = (a: Float64Array, width: number) => a.subarray(b * width, (b + 1) * width);
        cellPointwiseBackward(
          cell, H, at(saved, offSaved, 4 * H), at(hAll, offHin, H), at(cAll, offHin, H), at(hAll, offHout, H), at(cAll, offHout, H),
          dhOut, dcOut, sub(ref.dGi, GH), sub(ref.dGh, GH), sub(ref.direct, H), sub(ref.dc, H),
        );
      }

      const got = await withRunner(async (r) => {
        const bufs = {
          params: r.storage(params), dGh: r.storage(dGhBuf), dGi: r.storage(dGhBuf.length), dAbove: r.storage(dAbove),
          hAll: r.storage(hAll), cAll: r.storage(cAll), saved: r.storage(saved), dState: r.storage(dState),
        };
        expect(cellEntryPoint(bufs.params, H, offWhh, cell)).toBe(v4 ? 'main_v4' : 'main');
        const step = { B, H, offWhh, offDG, offDAbove, offSaved, offHin, offHout, offCin: offHin, offCout: offHout, offDState };
        const launch = cellBackwardLaunch(cell, { ...step, offDGhNext: hasNext ? offNext : undefined }, bufs, tuned);
        expect(launch.entryPoint).toBe(v4 && (tuned?.units ?? 4) % 4 === 0 ? 'main_v4' : 'main');
        await r.run([r.launch(launch)]);
        const out = { dGh: await r.read(bufs.dGh), dGi: await r.read(bufs.dGi), dState: await r.read(bufs.dState) };
        // The tail (dh0) reads the same dgh and the direct term just written; run it on the originals.
        r.write(bufs.dState, dState);
        await r.run([r.launch(cellBackwardLaunch(cell, { ...step, offDGhNext: offNext, tail: true }, bufs, tuned))]);
        return { ...out, dh0: (await r.read(bufs.dState)).subarray(offDState + 2 * BH, offDState + 3 * BH) };
      });
      // Per gate, so that one gate's small gradient cannot hide behind another's large one.
      const gate = (a: ArrayLike<number>, off: number, q: number) => Float64Array.from({ length: BH }, (_, i) => a[off + Math.floor(i / H) * GH + q * H + (i % H)]);
      for (let q = 0; q < G; q++) {
        expect(relError(gate(got.dGi, offDG, q), gate(ref.dGi, 0, q)), `dgi gate ${q}`).toBeLessThan(1e-5);
        expect(relError(gate(got.dGh, offDG, q), gate(ref.dGh, 0, q)), `dgh gate ${q}`).toBeLessThan(1e-5);
      }
      expect(Array.from(got.dGh.subarray(offNext, offNext + B * GH))).toEqual(Array.from(dGhNext)); // step t+1 intact
      if (cell === 'gru') expect(relError(got.dState.subarray(offDState, offDState + BH), ref.direct), 'direct').toBeLessThan(1e-5);
      else expect(Array.from(got.dState.subarray(offDState, offDState + BH)).every((v) => v === 0)).toBe(true);
      if (cell === 'lstm') expect(relError(got.dState.subarray(offDState + BH, offDState + 2 * BH), ref.dc), 'dc').toBeLessThan(1e-5);
      expect(relError(got.dh0, ref.dh0), 'dh0 (tail)').toBeLessThan(1e-5);
    });
  }
});

describe.skipIf(noGpu)('input_gather.wgsl and dropout.wgsl vs their CPU twins (exact)', () => {
  // maxPerDim 2 and 3: more runs of distinct tokens than the dispatch's y holds, so they take turns;
  // V > N: fewer run slots than tokens.
  for (const { N, GH, V, maxPerDim } of [
    { N: 7, GH: 12, V: 5 }, { N: 1, GH: 3, V: 1 }, { N: 33, GH: 148, V: 87 }, { N: 33, GH: 70, V: 9, maxPerDim: 2 }, { N: 6, GH: 5, V: 40, maxPerDim: 3 },
  ]) {
    it(`input_gather N=${N} G*H=${GH} V=${V}${maxPerDim ? `, at most ${maxPerDim} workgroups in y` : ''}`, async () => {
      const rng = new Rng(N + GH + V);
      const offWih = 6, offBih = offWih + GH * V + 2;
      const params = rand(rng, offBih + GH + 1);
      const tokens = Uint32Array.from({ length: N }, () => Math.floor(rng.next() * V));
      const w: LayerTensors = {
        wIh: Float64Array.from(params.subarray(offWih, offWih + GH * V)), wHh: new Float64Array(GH), bIh: Float64Array.from(params.subarray(offBih, offBih + GH)),
        bHh: new Float64Array(GH), inputSize: V,
      };
      const ref = new Float32Array(N * GH);
      const gi = new Float64Array(GH), gh = new Float64Array(GH);
      for (let p = 0; p < N; p++) {
        gatePreactivations(w, GH, 1, { tokens }, p, new Float64Array(1), gi, gh);
        ref.set(gi, p * GH);
      }
      const got = await withRunner(async (r) => {
        const out = r.storage(N * GH);
        const { positions, runs } = positionsByToken(tokens, V);
        await r.run([r.launch(inputGatherLaunch({
          params: r.storage(params), tokens: r.storage(tokens), positions: r.storage(positions), runs: r.storage(runs), gi: out, N, GH, V, offWih, offBih,
        }, maxPerDim ?? r.maxPerDim))]);
        return r.read(out, 0, N * GH);
      });
      // One f32 addition on both sides (the CPU's f64 sum of two f32s rounds to the same f32).
      expect(Array.from(got)).toEqual(Array.from(ref));
    });
  }

  for (const p of [0.3, 0.5, 0.05]) {
    it(`dropout p=${p}: the CPU's mask, bit for bit`, async () => {
      const config = { cell: 'lstm' as const, vocabSize: 3, hiddenSize: 7, layers: 2, dropout: p };
      const T = 5, B = 3, seed = 1234, iteration = 17;
      const mask = dropoutMask(config, T, B, seed, iteration, Float32Array) as Float32Array;
      const rng = new Rng(9);
      const n = T * B * 7, layer = 1, base = layer * n;
      const src = rand(rng, 5 + n);
      const got = await withRunner(async (r) => {
        const dst = r.storage(2 + n);
        const mask = dropoutMaskUniform(seed, iteration, p);
        await r.run([r.launch(dropoutLaunch({ src: r.storage(src), dst, n, offSrc: 5, offDst: 2, maskBase: base, mask }, r.maxPerDim))]);
        return r.read(dst, 2, n);
      });
      const ref = Float32Array.from({ length: n }, (_, i) => src[5 + i] * mask[base + i]);
      expect(Array.from(got, (v) => v + 0)).toEqual(Array.from(ref, (v) => v + 0)); // +0 folds -0 (the CPU's h*0) into 0
      expect(Array.from(got).filter((v) => v === 0).length).toBeGreaterThan(0);
    });
  }
});

describe.skipIf(noGpu)('dispatches per iteration: L(2T + 6) + 2dL + 6', () => {
  const train: TrainConfig = { seqLength: 7, batchSize: 3, optimizer: 'adam', learningRate: 1e-3, clip: 5 };
  const cases: [Pick<ModelConfig, 'cell' | 'layers' | 'dropout'>, number][] = [
    [{ cell: 'rnn' }, 2 * 7 + 12],
    [{ cell: 'lstm' }, 2 * 7 + 12],
    [{ cell: 'gru', layers: 3 }, 3 * (2 * 7 + 6) + 6],
    [{ cell: 'lstm', layers: 2, dropout: 0.5 }, 2 * (2 * 7 + 6) + 4 + 6],
  ];
  for (const [net, expected] of cases) {
    it(`${net.cell} layers=${net.layers ?? 1} dropout=${net.dropout ?? 0}: ${expected}`, async () => {
      const model: ModelConfig = { ...net, vocabSize: 11, hiddenSize: 6 };
      expect(dispatchesPerIteration(model, train)).toBe(expected);
      const g = await GpuBackend.create(gpu!, model, train, 1);
      try {
        expect(g.perStep).toEqual({ dispatches: expected, readbacks: 1, submits: 1 });
      } finally {
        g.destroy();
      }
    });
  }
});
