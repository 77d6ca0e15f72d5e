/**
 * One training iteration on the GPU as plain data, computed without a device: every buffer (its
 * size and what it holds: src/gpu/buffers.ts), the ordered dispatches (kernel, entry point,
 * override constants, bindings by buffer name with the words each touches, packed uniforms,
 * grid), and the copies around them. GpuBackend allocates exactly these buffers and replays these
 * dispatches; the memory estimate (src/gpu/memory.ts) sums the same buffer list, and
 * test/plan.test.ts checks the plan itself: dispatch counts, bounds, offsets, and that nothing is
 * read before it is written.
 *
 * With L layers, T steps, G gates (1 rnn, 4 lstm, 3 gru) and d = 1 if dropout > 0 else 0:
 *   forward, per layer l       input_gather (l = 0) or matmul (l > 0)   gi = W_ih x + b_ih, all T*B positions
 *                              T x cell_forward                         gh = W_hh h + b_hh, gates, h, c
 *                              d x dropout                              what goes up (into l+1 or the decoder)
 *   decoder                    matmul + softmax_xent + loss_sum         logits, dlogits, loss
 *   backward, decoder          matmul x2 + column_sum                   dW_dec, dL/d(top), db_dec
 *            per layer l       d x dropout                              the same mask on dL/d(output)
 *                              T x cell_backward                        dgi, dgh per step (BPTT)
 *                              matmul + column_sum                      dW_hh = dgh^T h_{t-1}, db_hh
 *                              embedding_grad (l = 0) or matmul         dW_ih, all steps at once
 *                              column_sum                               db_ih
 *                              (l > 0) matmul                           dL/dx = dgi W_ih for the layer below
 *   update                     optimizer                                clip + Adagrad/Adam/RMSprop/SGD, flat parameters
 * = L(2T + 6) + 2dL + 6 dispatches (src/gpu/buffers.ts: dispatchesPerIteration). backwardWithDh0
 * adds, after each layer's step 0, a cell_backward that forms that layer's dh0 (gradients() only).
 */
import { GATES, hasCellState, SAVED, type CellType } from '../model/cells.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';
import { decoderCopyPlace, LOSS_RING, planBuffers, UNIFORM_ALIGN, type PlanBuffer } from './buffers.ts';
import { cellBlocking, cellEntryPoint, cellShapeKey, DEFAULT_CELL_CANDIDATE, type CellBlocking, type CellKernel } from './kernels/cell.ts';
import { cellBackwardLaunch, type CellBackwardStep } from './kernels/cell_backward.ts';
import { cellForwardLaunch } from './kernels/cell_forward.ts';
import { columnSumLaunch } from './kernels/column_sum.ts';
import type { KernelName, Launch, Region } from './kernels/common.ts';
import { dropoutLaunch } from './kernels/dropout.ts';
import { embeddingGradLaunch } from './kernels/embedding_grad.ts';
import { inputGatherLaunch } from './kernels/input_gather.ts';
import { lossSumLaunch } from './kernels/loss_sum.ts';
import { DEFAULT_MATMUL_CANDIDATE, MATMUL_CANDIDATES, matmulLaunch, matmulShapeKey, matmulVariantFor, type MatmulArgs, type MatmulVariant } from './kernels/matmul.ts';
import { optimizerLaunch, type WhhCopies } from './kernels/optimizer.ts';
import { softmaxXentLaunch } from './kernels/softmax_xent.ts';

export { dispatchesPerIteration, type PlanBuffer } from './buffers.ts';

export interface PlanBinding {
  buffer: string;
  /** The bound range in bytes: the whole buffer, or one uniform struct's slot of the arena. */
  offset: number;
  size: number;
  /** The words (4 bytes) the dispatch reads or writes in it. */
  touches: readonly Region[];
}

export interface PlannedDispatch {
  /** Where it sits in the iteration, e.g. "backward layer 1 cell_backward t=3". */
  label: string;
  kernel: KernelName;
  entryPoint: string;
  constants: Record<string, number>;
  /** In @binding order. */
  bindings: PlanBinding[];
  /** The uniform struct packed at its arena slot; absent for the update, whose uniforms change every step. */
  uniforms?: ArrayBuffer;
  x: number;
  y: number;
}

/** A copy between buffers, in bytes. */
export interface BufferCopy { from: string; fromOffset: number; to: string; toOffset: number; size: number }

export interface IterationPlan {
  buffers: PlanBuffer[];
  forward: PlannedDispatch[];
  backward: PlannedDispatch[];
  backwardWithDh0: PlannedDispatch[];
  update: PlannedDispatch[];
  /** Each layer's carried state (hState, and cState for the lstm) into step 0 of hAll / cAll, before the dispatches. */
  stateIn: BufferCopy[];
  /** Step T back into the carried state, after them (training; not gradients()). */
  stateOut: BufferCopy[];
  /** The mean loss, after the forward pass: what is copied into a staging buffer of the ring. */
  loss: { buffer: string; offset: number; size: number };
  /** Word offsets per layer for gradients(): the last step's h (and c) in hAll (cAll), dh0 and dc0 in dState. */
  readout: { last: number[]; dh0: number[]; dc0: number[] };
  /** What the update's uniforms describe besides the step (src/gpu/kernels/optimizer.ts: optimizerSettings). */
  optimizer: { n: number; whh: WhhCopies };
  /** The readback staging buffers, LOSS_RING of them. */
  lossRing: string[];
  /** Every matrix product, in dispatch order: its tuning key and the candidate it runs. */
  matmuls: PlannedMatmul[];
  /** Each recurrent step shape once (cell_forward, cell_backward per layer size): its tuning key and the candidate it runs. */
  cells: PlannedCell[];
}

/** One recurrent step shape of the plan as the tuner sees it (src/gpu/tuner.ts). */
export interface PlannedCell {
  key: string;
  kernel: CellKernel;
  cell: CellType;
  B: number; H: number;
  /** Whether the plan reads W_hh as vec4s there (what the tuner's own buffers must reproduce). */
  vec4: boolean;
  /** The CELL_CANDIDATES name it runs. */
  candidate: string;
}

/** One product of the plan as the tuner sees it (src/gpu/tuner.ts). */
export interface PlannedMatmul {
  label: string;
  key: string;
  M: number; N: number; K: number;
  transA: boolean; transB: boolean;
  lda: number; ldb: number; ldc: number;
  /** The register-blocked entry point its layout allows (what a 'registers' candidate runs). */
  variant: MatmulVariant;
  /** The MATMUL_CANDIDATES name it runs. */
  candidate: string;
}

/**
 * Which matmul candidate (MATMUL_CANDIDATES) each product shape runs, by matmulShapeKey, and which
 * blocking (CELL_CANDIDATES) each recurrent step runs, by cellShapeKey: the tuner's choice. Shapes
 * it does not name run the default, so {} is the untuned plan.
 */
export type KernelChoice = Readonly<Record<string, string>>;

/**
 * The plan of one iteration. `limits`: the device's workgroups per dimension (grids spill past
 * it into y); the default is WebGPU's guaranteed minimum.
 */
export function planIteration(
  model: ModelConfig, train: TrainConfig, limits: { maxComputeWorkgroupsPerDimension: number } = { maxComputeWorkgroupsPerDimension: 65535 },
  choice: KernelChoice = {},
): IterationPlan {
  const { cell, hiddenSize: H, vocabSize: V, layers: L, dropout } = fullModelConfig(model);
  const { seqLength: T, batchSize: B } = train;
  const G = GATES[cell], S = SAVED[cell], GH = G * H;
  const N = T * B, BH = B * H;
  const layout = paramLayout(model);
  const maxPerDim = limits.maxComputeWorkgroupsPerDimension;
  const buffers = planBuffers(model, train);
  const b = Object.fromEntries(buffers.map((x) => [x.name, x])) as Record<string, PlanBuffer>;

  const arena: ArrayBuffer[] = [];
  const plan = (label: string, l: Launch<PlanBuffer>): PlannedDispatch => {
    let uniforms: ArrayBuffer | undefined;
    const bindings = l.bindings.map((x): PlanBinding => {
      if (!('uniforms' in x)) return { buffer: x.buffer.name, offset: 0, size: x.buffer.size, touches: x.touches };
      uniforms = x.uniforms;
      arena.push(x.uniforms);
      return { buffer: 'uniforms', offset: (arena.length - 1) * UNIFORM_ALIGN, size: x.uniforms.byteLength, touches: [] };
    });
    return { label, kernel: l.kernel.name, entryPoint: l.entryPoint, constants: l.constants, bindings, uniforms, x: l.x, y: l.y };
  };

  const matmuls: PlannedMatmul[] = [];
  /** A product under the tiling the choice names for its shape (an unknown name is refused). */
  const matmul = (label: string, a: MatmulArgs<PlanBuffer>): Launch<PlanBuffer> => {
    const key = matmulShapeKey(a);
    const candidate = choice[key] ?? DEFAULT_MATMUL_CANDIDATE;
    const tiling = MATMUL_CANDIDATES[candidate];
    if (!tiling) throw new Error(`internal: no matmul candidate ${candidate} (for ${key})`);
    matmuls.push({ label, key, M: a.M, N: a.N, K: a.K, transA: !!a.transA, transB: !!a.transB, lda: a.lda, ldb: a.ldb, ldc: a.ldc, variant: matmulVariantFor(a), candidate });
    return matmulLaunch(a, tiling);
  };

  const cells = new Map<string, PlannedCell>();
  /** A recurrent step's blocking under the choice (undefined: the default); vec4: whether the default reads W_hh as vec4s there. */
  const cellTuning = (kernel: CellKernel, vec4: boolean): CellBlocking | undefined => {
    const key = cellShapeKey(kernel, cell, B, H, vec4);
    const candidate = choice[key] ?? DEFAULT_CELL_CANDIDATE;
    if (!cells.has(key)) cells.set(key, { key, kernel, cell, B, H, vec4, candidate });
    return cellBlocking(kernel, cell, B, candidate);
  };

  // hAll (and cAll) [L][T+1][B][H]: step 0 is the carried state, step t+1 the output of step t.
  const hBase = (l: number) => l * (T + 1) * BH;
  // Layer l's output as seen from above (after dropout): the input of layer l+1 or of the decoder.
  const up = (l: number) => (dropout > 0 ? { buffer: b.xUp, offset: l * N * H } : { buffer: b.hAll, offset: hBase(l) + BH });
  const dUp = dropout > 0 ? b.dAboveRaw : b.dAbove;
  const mask = dropout > 0 ? { buffer: b.dropoutMask } : undefined;
  const dec = { w: layout.decoderWeight.offset, b: layout.decoderBias.offset };
  // W_dec^T and the bias as the optimizer keeps them in whhT: logits = h W_dec^T as a row-major
  // product (matmul's vec4 path; the transposed-B one reads scalars, at half the speed).
  const decT = decoderCopyPlace(model);

  const forward: PlannedDispatch[] = [];
  for (let l = 0; l < L; l++) {
    const w = layout.layers[l];
    if (l === 0) {
      forward.push(plan('forward layer 0 input_gather', inputGatherLaunch({
        params: b.params, tokens: b.inputs, gi: b.gi, N, GH, V, offWih: w.weightIh.offset, offBih: w.biasIh.offset,
      }, maxPerDim)));
    } else {
      const x = up(l - 1);
      forward.push(plan(`forward layer ${l} matmul gi`, matmul(`layer ${l} gi`, {
        M: N, N: GH, K: H, transB: true, A: x.buffer, offA: x.offset, lda: H,
        B: b.params, offB: w.weightIh.offset, ldb: H, C: b.gi, ldc: GH, bias: w.biasIh.offset,
      })));
    }
    const fwdTuned = cellTuning('cell_forward', cellEntryPoint(b.whhT, H, l * GH * H, cell) === 'main_v4');
    for (let t = 0; t < T; t++) {
      forward.push(plan(`forward layer ${l} cell_forward t=${t}`, cellForwardLaunch(cell, {
        B, H, offWhhT: l * GH * H, offBhh: w.biasHh.offset, offGi: t * B * GH,
        offHin: hBase(l) + t * BH, offHout: hBase(l) + (t + 1) * BH, offSaved: (l * N + t * B) * S * H,
        offCin: hBase(l) + t * BH, offCout: hBase(l) + (t + 1) * BH,
      }, { params: b.params, gi: b.gi, hAll: b.hAll, cAll: b.cAll, saved: b.saved, whhT: b.whhT }, fwdTuned)));
    }
    if (mask) {
      forward.push(plan(`forward layer ${l} dropout`, dropoutLaunch({
        src: b.hAll, dst: b.xUp, n: N * H, offSrc: hBase(l) + BH, offDst: l * N * H, maskBase: l * N * H, mask,
      }, maxPerDim)));
    }
  }
  const top = up(L - 1);
  forward.push(plan('forward decoder matmul logits', matmul('logits', {
    M: N, N: V, K: H, A: top.buffer, offA: top.offset, lda: H, B: b.whhT, offB: decT.off, ldb: decT.ld, C: b.logits, ldc: V, bias: decT.off + H * decT.ld,
  })));
  forward.push(plan('forward decoder softmax_xent', softmaxXentLaunch({ logits: b.logits, targets: b.targets, rowLoss: b.rowLoss, rows: N, cols: V, scale: 1 / N }, maxPerDim)));
  forward.push(plan('forward decoder loss_sum', lossSumLaunch({ rowLoss: b.rowLoss, out: b.lossOut, n: N, scale: 1 / N })));

  const backwardWithDh0: PlannedDispatch[] = [];
  const dh0Only = new Set<PlannedDispatch>();
  const bw = (label: string, l: Launch<PlanBuffer>) => backwardWithDh0.push(plan(`backward ${label}`, l));
  bw('decoder matmul dW_dec', matmul('dW_dec', {
    M: V, N: H, K: N, transA: true, A: b.logits, lda: V, B: top.buffer, offB: top.offset, ldb: H, C: b.grads, offC: dec.w, ldc: H,
  }));
  bw('decoder column_sum db_dec', columnSumLaunch({ X: b.logits, out: b.grads, rows: N, cols: V, offOut: dec.b }));
  bw('decoder matmul dL/d(top)', matmul('dL/d(top)', { M: N, N: H, K: V, A: b.logits, lda: V, B: b.params, offB: dec.w, ldb: H, C: dUp, ldc: H }));
  for (let l = L - 1; l >= 0; l--) {
    const w = layout.layers[l];
    if (mask) {
      bw(`layer ${l} dropout`, dropoutLaunch({ src: b.dAboveRaw, dst: b.dAbove, n: N * H, offSrc: 0, offDst: 0, maskBase: l * N * H, mask }, maxPerDim));
    }
    const cellBuffers = { params: b.params, dGh: b.dGh, dGi: b.dGi, dAbove: b.dAbove, hAll: b.hAll, cAll: b.cAll, saved: b.saved, dState: b.dState };
    const step = (t: number): CellBackwardStep => ({
      B, H, offWhh: w.weightHh.offset, offDG: t * B * GH, offDAbove: t * BH, offSaved: (l * N + t * B) * S * H,
      offHin: hBase(l) + t * BH, offHout: hBase(l) + (t + 1) * BH, offCin: hBase(l) + t * BH, offCout: hBase(l) + (t + 1) * BH,
      offDState: l * 3 * BH,
    });
    const bwdTuned = cellTuning('cell_backward', cellEntryPoint(b.params, H, w.weightHh.offset, cell) === 'main_v4');
    for (let t = T - 1; t >= 0; t--) {
      bw(`layer ${l} cell_backward t=${t}`, cellBackwardLaunch(cell, { ...step(t), offDGhNext: t === T - 1 ? undefined : (t + 1) * B * GH }, cellBuffers, bwdTuned));
    }
    bw(`layer ${l} cell_backward dh0`, cellBackwardLaunch(cell, { ...step(0), offDGhNext: 0, tail: true }, cellBuffers, bwdTuned));
    dh0Only.add(backwardWithDh0[backwardWithDh0.length - 1]);
    bw(`layer ${l} matmul dW_hh`, matmul(`layer ${l} dW_hh`, {
      M: GH, N: H, K: N, transA: true, A: b.dGh, lda: GH, B: b.hAll, offB: hBase(l), ldb: H, C: b.grads, offC: w.weightHh.offset, ldc: H,
    }));
    bw(`layer ${l} column_sum db_hh`, columnSumLaunch({ X: b.dGh, out: b.grads, rows: N, cols: GH, offOut: w.biasHh.offset }));
    if (l === 0) {
      bw('layer 0 embedding_grad dW_ih', embeddingGradLaunch({
        dZ: b.dGi, start: b.embStart, positions: b.embPos, out: b.grads, H: GH, V, N, offOut: w.weightIh.offset,
      }, maxPerDim));
    } else {
      const x = up(l - 1);
      bw(`layer ${l} matmul dW_ih`, matmul(`layer ${l} dW_ih`, {
        M: GH, N: H, K: N, transA: true, A: b.dGi, lda: GH, B: x.buffer, offB: x.offset, ldb: H, C: b.grads, offC: w.weightIh.offset, ldc: H,
      }));
    }
    bw(`layer ${l} column_sum db_ih`, columnSumLaunch({ X: b.dGi, out: b.grads, rows: N, cols: GH, offOut: w.biasIh.offset }));
    if (l > 0) bw(`layer ${l} matmul dL/dx`, matmul(`layer ${l} dL/dx`, { M: N, N: H, K: GH, A: b.dGi, lda: GH, B: b.params, offB: w.weightIh.offset, ldb: H, C: dUp, ldc: H }));
  }

  const whh: WhhCopies = {
    layers: L, rows: GH, cols: H,
    decoder: { at: dec.w, biasAt: dec.b, rows: V, cols: H, off: decT.off, ld: decT.ld },
  };
  const update = [plan('update optimizer', optimizerLaunch({
    params: b.params, grads: b.grads, m: b.optM, v: b.optV, whhT: b.whhT, whhAt: b.whhAt,
    n: layout.length, kind: train.optimizer, whh, uniforms: { buffer: b.optimizerUniforms },
  }, maxPerDim))];

  if (arena.length * UNIFORM_ALIGN !== b.uniforms.size) throw new Error(`internal: ${arena.length} uniform structs planned, the arena has room for ${b.uniforms.size / UNIFORM_ALIGN}`);
  const arenaData = new Uint8Array(b.uniforms.size);
  arena.forEach((u, i) => arenaData.set(new Uint8Array(u), i * UNIFORM_ALIGN));
  b.uniforms.init = arenaData.buffer;
  b.whhAt.init = Uint32Array.from(layout.layers, (w) => w.weightHh.offset).buffer;

  const pairs = hasCellState(cell) ? [['hState', 'hAll'], ['cState', 'cAll']] : [['hState', 'hAll']];
  const copies = (step: number, into: boolean): BufferCopy[] => pairs.flatMap(([carried, all]) => Array.from({ length: L }, (_, l) => {
    const a = { buffer: carried, offset: 4 * l * BH }, z = { buffer: all, offset: 4 * (hBase(l) + step * BH) };
    const [from, to] = into ? [a, z] : [z, a];
    return { from: from.buffer, fromOffset: from.offset, to: to.buffer, toOffset: to.offset, size: 4 * BH };
  }));

  return {
    buffers,
    forward,
    backward: backwardWithDh0.filter((d) => !dh0Only.has(d)),
    backwardWithDh0,
    update,
    stateIn: copies(0, true),
    stateOut: copies(T, false),
    loss: { buffer: 'lossOut', offset: 0, size: 4 },
    readout: {
      last: Array.from({ length: L }, (_, l) => hBase(l) + T * BH),
      dh0: Array.from({ length: L }, (_, l) => (3 * l + 2) * BH),
      dc0: Array.from({ length: L }, (_, l) => (3 * l + 1) * BH),
    },
    optimizer: { n: layout.length, whh },
    lossRing: Array.from({ length: LOSS_RING }, (_, i) => `lossRing${i}`),
    matmuls,
    cells: [...cells.values()],
  };
}
