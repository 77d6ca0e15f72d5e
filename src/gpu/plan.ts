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
 *
 * The split plan (src/gpu/buffers.ts: splitPlan), for a buffer larger than one storage binding:
 * params, grads, optM and optV are bound per dispatch as the window (aligned offset + size) of
 * the tensors it touches, the per-layer activations (hAll, cAll, saved, xUp, dState) as the
 * layer's window, and the dispatches that would touch more change: the gi products leave out b_ih
 * (input_gather without its bias, a matmul without bias), each forward step is whhChunks matmuls
 * gh[:, rows] = h_{t-1} W_hh[rows]^T then cell_forward's main_gh (the pointwise part, + b_ih + b_hh),
 * each backward step with a step t+1 is whhChunks matmuls dhPart[c] = dgh_{t+1}[:, rows] W_hh[rows]
 * then cell_backward's main_dh (which sums the parts), dW_hh is whhChunks matmuls over its rows, W_ih
 * above layer 0 goes by the same row ranges (gi, dW_ih, and dL/dx as partial products summed by
 * column_sum), layer 0's W_ih by wih0Chunks row ranges (input_gather by rows, embedding_grad main_rows),
 * and the optimizer runs over chunks of the flat parameters. It keeps no transposed copies: the
 * logits read W_dec itself (a transposed B, scalar loads), and its steps run the default blocking
 * (the tuner times no cell there).
 */
import { GATES, hasCellState, SAVED, type CellType } from '../model/cells.ts';
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';
import { decoderCopyPlace, LOSS_RING, perLayerWords, planBuffers, splitPlan, UNIFORM_ALIGN, type BindingLimits, type PlanBuffer } from './buffers.ts';
import { cellBlocking, cellEntryPoint, cellShapeKey, DEFAULT_CELL_CANDIDATE, type CellBlocking, type CellKernel } from './kernels/cell.ts';
import { cellBackwardLaunch, type CellBackwardStep } from './kernels/cell_backward.ts';
import { cellForwardLaunch } from './kernels/cell_forward.ts';
import { columnSumLaunch } from './kernels/column_sum.ts';
import type { KernelName, Launch, Region } from './kernels/common.ts';
import { dropoutLaunch } from './kernels/dropout.ts';
import { embeddingGradLaunch } from './kernels/embedding_grad.ts';
import { inputGatherLaunch } from './kernels/input_gather.ts';
import { lossSumLaunch } from './kernels/loss_sum.ts';
import { DEFAULT_MATMUL_CANDIDATE, MATMUL, MATMUL_CANDIDATES, matmulLaunch, matmulShapeKey, matmulVariantFor, type MatmulArgs, type MatmulVariant } from './kernels/matmul.ts';
import { OPTIMIZER_UNIFORM_BYTES, optimizerLaunch, type WhhCopies } from './kernels/optimizer.ts';
import { softmaxXentLaunch } from './kernels/softmax_xent.ts';

export { dispatchesPerIteration, type PlanBuffer } from './buffers.ts';

/** A window of a plan buffer: bound from word `base` on, `size` bytes (the split plan's). */
type Windowed = PlanBuffer & { base?: number };

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
  /**
   * What the update's uniforms describe besides the step (src/gpu/kernels/optimizer.ts:
   * optimizerSettings): one struct per update dispatch, `n` words each, at UNIFORM_ALIGN strides of
   * optimizerUniforms (one dispatch over all parameters but in the split plan).
   */
  optimizer: { n: number; whh: WhhCopies; chunks: number[] };
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
 * it into y; the default is WebGPU's guaranteed minimum) and, when given, its binding limits
 * (parameters larger than one binding take the split plan).
 */
export function planIteration(
  model: ModelConfig, train: TrainConfig,
  limits: { maxComputeWorkgroupsPerDimension: number } & Partial<BindingLimits> = { maxComputeWorkgroupsPerDimension: 65535 },
  choice: KernelChoice = {},
): IterationPlan {
  const { cell, hiddenSize: H, vocabSize: V, layers: L, dropout } = fullModelConfig(model);
  const { seqLength: T, batchSize: B } = train;
  const G = GATES[cell], S = SAVED[cell], GH = G * H;
  const N = T * B, BH = B * H;
  const layout = paramLayout(model);
  const maxPerDim = limits.maxComputeWorkgroupsPerDimension;
  const bindingLimits = limits.maxStorageBufferBindingSize === undefined ? undefined : {
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
    maxBufferSize: limits.maxBufferSize ?? limits.maxStorageBufferBindingSize,
    minStorageBufferOffsetAlignment: limits.minStorageBufferOffsetAlignment ?? 256,
    maxComputeWorkgroupsPerDimension: maxPerDim,
  };
  const split = splitPlan(model, train, bindingLimits);
  const buffers = planBuffers(model, train, bindingLimits);
  const b = Object.fromEntries(buffers.map((x) => [x.name, x])) as Record<string, PlanBuffer>;

  /**
   * Words lo .. hi of a buffer as a binding: the whole buffer, or in the split plan, for a buffer
   * larger than one binding, the window from lo rounded down to the offset alignment; `base` is
   * what the kernel's offsets into it lose.
   */
  const win = (buf: PlanBuffer, lo: number, hi: number): { buf: Windowed; base: number } => {
    if (!split || buf.size <= 4 * split.bindWords) return { buf, base: 0 };
    const base = Math.floor(lo / split.alignWords) * split.alignWords;
    if (hi - base > split.bindWords) throw new Error(`internal: words ${lo} .. ${hi} of ${buf.name} exceed one binding of ${split.bindWords} words`);
    return { buf: { ...buf, base, size: 4 * (hi - base) }, base };
  };

  const arena: ArrayBuffer[] = [];
  const plan = (label: string, l: Launch<PlanBuffer>): PlannedDispatch => {
    let uniforms: ArrayBuffer | undefined;
    const bindings = l.bindings.map((x): PlanBinding => {
      if (!('uniforms' in x)) {
        const base = (x.buffer as Windowed).base;
        if (base === undefined) return { buffer: x.buffer.name, offset: 0, size: x.buffer.size, touches: x.touches };
        return { buffer: x.buffer.name, offset: 4 * base, size: x.buffer.size, touches: x.touches.map((r) => ({ ...r, offset: r.offset + base })) };
      }
      uniforms = x.uniforms;
      arena.push(x.uniforms);
      return { buffer: 'uniforms', offset: (arena.length - 1) * UNIFORM_ALIGN, size: x.uniforms.byteLength, touches: [] };
    });
    return { label, kernel: l.kernel.name, entryPoint: l.entryPoint, constants: l.constants, bindings, uniforms, x: l.x, y: l.y };
  };

  const matmuls: PlannedMatmul[] = [];
  /** A product under the tiling the choice names for its shape (an unknown name is refused). */
  const matmul = (label: string, whole: MatmulArgs<PlanBuffer>): Launch<PlanBuffer> => {
    // Keyed as it runs: a window's size can rule out a vec4 variant.
    const a = windowed(whole);
    const key = matmulShapeKey(a);
    const candidate = choice[key] ?? DEFAULT_MATMUL_CANDIDATE;
    const tiling = MATMUL_CANDIDATES[candidate];
    if (!tiling) throw new Error(`internal: no matmul candidate ${candidate} (for ${key})`);
    matmuls.push({ label, key, M: a.M, N: a.N, K: a.K, transA: !!a.transA, transB: !!a.transB, lda: a.lda, ldb: a.ldb, ldc: a.ldc, variant: matmulVariantFor(a), candidate });
    return matmulLaunch(a, tiling);
  };
  /** A product with each operand bound as the window it touches (the bias is in B's buffer). */
  function windowed(a: MatmulArgs<PlanBuffer>): MatmulArgs<PlanBuffer> {
    if (!split) return a;
    const whole = matmulLaunch(a);
    const span = (name: 'A' | 'B' | 'C', buf: PlanBuffer) => {
      const bound = whole.bindings[MATMUL.bindings.indexOf(name)];
      const touches = 'touches' in bound ? bound.touches : [];
      return win(buf, Math.min(...touches.map((r) => r.offset)), Math.max(...touches.map((r) => r.offset + r.count)));
    };
    const A = span('A', a.A), B = span('B', a.B), C = span('C', a.C);
    return {
      ...a, A: A.buf, offA: (a.offA ?? 0) - A.base, B: B.buf, offB: (a.offB ?? 0) - B.base, C: C.buf, offC: (a.offC ?? 0) - C.base,
      bias: a.bias === undefined ? undefined : a.bias - B.base,
    };
  }

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
  /** Layer l's part of a per-layer buffer (perLayerWords): whole when it fits, else the layer's window. */
  const perLayer = perLayerWords(model, train);
  const layerWin = (name: string, l: number) => win(b[name], l * perLayer[name], (l + 1) * perLayer[name]);
  // Layer l's output as seen from above (after dropout): the input of layer l+1 or of the decoder.
  const up = (l: number) => (dropout > 0 ? { buffer: b.xUp, offset: l * N * H } : { buffer: b.hAll, offset: hBase(l) + BH });
  const dUp = dropout > 0 ? b.dAboveRaw : b.dAbove;
  const mask = dropout > 0 ? { buffer: b.dropoutMask } : undefined;
  const dec = { w: layout.decoderWeight.offset, b: layout.decoderBias.offset };
  // W_dec^T and the bias as the optimizer keeps them in whhT: logits = h W_dec^T as a row-major
  // product (matmul's vec4 path; the transposed-B one reads scalars, at half the speed).
  const decT = decoderCopyPlace(model);

  /** Row ranges [first, count] of G*H rows, R at a time. */
  const ranges = (R: number): [number, number][] => Array.from({ length: Math.ceil(GH / R) }, (_, i) => [i * R, Math.min(R, GH - i * R)]);
  /** Of a [G*H, H] weight (W_hh; W_ih above layer 0): one, but in the split plan. */
  const rowRanges = () => ranges(split?.whhChunkRows ?? GH);
  /** Of layer 0's W_ih [G*H, V]: one, but where it exceeds a binding. */
  const wih0Ranges = () => ranges(split?.wih0Rows ?? GH);
  // W_ih above layer 0 [G*H, H] is split by rows as W_hh is, where W_hh is.
  const wihSplit = split !== undefined && split.whhChunks > 1;

  const forward: PlannedDispatch[] = [];
  for (let l = 0; l < L; l++) {
    const w = layout.layers[l];
    // The split plan adds b_ih in the cell (W_ih and b_ih lie apart, W_hh between them).
    const bih = split ? undefined : w.biasIh.offset;
    if (l === 0 && !split) {
      forward.push(plan('forward layer 0 input_gather', inputGatherLaunch({
        params: b.params, tokens: b.inputs, positions: b.embPos, runs: b.embRuns, gi: b.gi, N, GH, V, offWih: w.weightIh.offset, offBih: bih,
      }, maxPerDim)));
    } else if (l === 0) {
      for (const [r0, rows] of wih0Ranges()) {
        const p = win(b.params, w.weightIh.offset + r0 * V, w.weightIh.offset + (r0 + rows) * V);
        forward.push(plan(`forward layer 0 input_gather${rows < GH ? ` rows ${r0}..` : ''}`, inputGatherLaunch({
          params: p.buf, tokens: b.inputs, positions: b.embPos, runs: b.embRuns, gi: b.gi, N, GH, V, offWih: w.weightIh.offset + r0 * V - p.base, rows: { start: r0, count: rows },
        }, maxPerDim)));
      }
    } else {
      const x = up(l - 1);
      for (const [r0, rows] of wihSplit ? rowRanges() : [[0, GH]]) {
        forward.push(plan(`forward layer ${l} matmul gi${wihSplit ? ` rows ${r0}..` : ''}`, matmul(`layer ${l} gi${wihSplit ? ' rows' : ''}`, {
          M: N, N: rows, K: H, transB: true, A: x.buffer, offA: x.offset, lda: H,
          B: b.params, offB: w.weightIh.offset + r0 * H, ldb: H, C: b.gi, offC: r0, ldc: GH, bias: bih,
        })));
      }
    }
    // The split plan's steps (main_gh) keep the default blocking: no cell choice, nothing for the tuner.
    const fwdTuned = split ? undefined : cellTuning('cell_forward', cellEntryPoint(b.whhT, H, l * GH * H, cell) === 'main_v4');
    for (let t = 0; t < T; t++) {
      const biases = win(b.params, split ? w.biasIh.offset : w.biasHh.offset, w.biasHh.offset + GH);
      if (split) {
        for (const [r0, rows] of rowRanges()) {
          forward.push(plan(`forward layer ${l} matmul gh rows ${r0}.. t=${t}`, matmul(`layer ${l} gh rows`, {
            M: B, N: rows, K: H, transB: true, A: b.hAll, offA: hBase(l) + t * BH, lda: H,
            B: b.params, offB: w.weightHh.offset + r0 * H, ldb: H, C: b.gh, offC: r0, ldc: GH,
          })));
        }
      }
      const h = layerWin('hAll', l), c = layerWin('cAll', l), sv = layerWin('saved', l);
      forward.push(plan(`forward layer ${l} cell_forward t=${t}`, cellForwardLaunch(cell, {
        B, H, offWhhT: split ? 0 : l * GH * H, offBhh: w.biasHh.offset - biases.base, offGi: t * B * GH,
        offHin: hBase(l) + t * BH - h.base, offHout: hBase(l) + (t + 1) * BH - h.base, offSaved: (l * N + t * B) * S * H - sv.base,
        offCin: hBase(l) + t * BH - c.base, offCout: hBase(l) + (t + 1) * BH - c.base,
      }, { params: biases.buf, gi: b.gi, hAll: h.buf, cAll: c.buf, saved: sv.buf, whhT: b.whhT },
      fwdTuned, split ? { gh: b.gh, offBih: w.biasIh.offset - biases.base } : undefined)));
    }
    if (mask) {
      const h = layerWin('hAll', l), x = layerWin('xUp', l);
      forward.push(plan(`forward layer ${l} dropout`, dropoutLaunch({
        src: h.buf, dst: x.buf, n: N * H, offSrc: hBase(l) + BH - h.base, offDst: l * N * H - x.base, maskBase: l * N * H, mask,
      }, maxPerDim)));
    }
  }
  const top = up(L - 1);
  // The split plan keeps no decoder copy: W_dec itself as a transposed B, bound as its window.
  forward.push(plan('forward decoder matmul logits', matmul('logits', split ? {
    M: N, N: V, K: H, transB: true, A: top.buffer, offA: top.offset, lda: H, B: b.params, offB: dec.w, ldb: H, C: b.logits, ldc: V, bias: dec.b,
  } : {
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
  const gBias = (off: number, n: number) => {
    const g = win(b.grads, off, off + n);
    return { out: g.buf, offOut: off - g.base };
  };
  bw('decoder column_sum db_dec', columnSumLaunch({ X: b.logits, rows: N, cols: V, ...gBias(dec.b, V) }, maxPerDim));
  bw('decoder matmul dL/d(top)', matmul('dL/d(top)', { M: N, N: H, K: V, A: b.logits, lda: V, B: b.params, offB: dec.w, ldb: H, C: dUp, ldc: H }));
  for (let l = L - 1; l >= 0; l--) {
    const w = layout.layers[l];
    if (mask) {
      bw(`layer ${l} dropout`, dropoutLaunch({ src: b.dAboveRaw, dst: b.dAbove, n: N * H, offSrc: 0, offDst: 0, maskBase: l * N * H, mask }, maxPerDim));
    }
    const h = layerWin('hAll', l), c = layerWin('cAll', l), sv = layerWin('saved', l), ds = layerWin('dState', l);
    const cellBuffers = { params: b.params, dGh: b.dGh, dGi: b.dGi, dAbove: b.dAbove, hAll: h.buf, cAll: c.buf, saved: sv.buf, dState: ds.buf };
    const step = (t: number): CellBackwardStep => ({
      B, H, offWhh: w.weightHh.offset, offDG: t * B * GH, offDAbove: t * BH, offSaved: (l * N + t * B) * S * H - sv.base,
      offHin: hBase(l) + t * BH - h.base, offHout: hBase(l) + (t + 1) * BH - h.base, offCin: hBase(l) + t * BH - c.base, offCout: hBase(l) + (t + 1) * BH - c.base,
      offDState: l * 3 * BH - ds.base,
    });
    /** The split plan's W_hh^T dgh of step `next` as partial sums over row ranges of W_hh, into dhPart. */
    const dhParts = (label: string, next: number) => {
      if (!split) return undefined;
      const ranges = rowRanges();
      ranges.forEach(([r0, rows], c) => {
        bw(`layer ${l} matmul dh rows ${r0}.. ${label}`, matmul(`layer ${l} dh rows`, {
          M: B, N: H, K: rows, A: b.dGh, offA: next * B * GH + r0, lda: GH, B: b.params, offB: w.weightHh.offset + r0 * H, ldb: H,
          C: b.dhPart, offC: c * BH, ldc: H,
        }));
      });
      return { dh: b.dhPart, parts: ranges.length };
    };
    // The split plan's steps (main_dh) keep the default blocking: no cell choice, nothing for the tuner.
    const bwdTuned = split ? undefined : cellTuning('cell_backward', cellEntryPoint(b.params, H, w.weightHh.offset, cell) === 'main_v4');
    for (let t = T - 1; t >= 0; t--) {
      const next = t === T - 1 ? undefined : (t + 1) * B * GH;
      const pre = next === undefined ? (split ? { dh: b.dhPart, parts: 0 } : undefined) : dhParts(`t=${t}`, t + 1);
      bw(`layer ${l} cell_backward t=${t}`, cellBackwardLaunch(cell, { ...step(t), offDGhNext: next }, cellBuffers, bwdTuned, pre));
    }
    const beforeDh0 = backwardWithDh0.length;
    const pre0 = dhParts('dh0', 0);
    bw(`layer ${l} cell_backward dh0`, cellBackwardLaunch(cell, { ...step(0), offDGhNext: 0, tail: true }, cellBuffers, bwdTuned, pre0));
    for (const d of backwardWithDh0.slice(beforeDh0)) dh0Only.add(d);
    for (const [r0, rows] of rowRanges()) {
      bw(`layer ${l} matmul dW_hh${split ? ` rows ${r0}..` : ''}`, matmul(`layer ${l} dW_hh${split ? ' rows' : ''}`, {
        M: rows, N: H, K: N, transA: true, A: b.dGh, offA: r0, lda: GH, B: b.hAll, offB: hBase(l), ldb: H, C: b.grads, offC: w.weightHh.offset + r0 * H, ldc: H,
      }));
    }
    bw(`layer ${l} column_sum db_hh`, columnSumLaunch({ X: b.dGh, rows: N, cols: GH, ...gBias(w.biasHh.offset, GH) }, maxPerDim));
    if (l === 0) {
      for (const [r0, rows] of wih0Ranges()) {
        bw(`layer 0 embedding_grad dW_ih${rows < GH ? ` rows ${r0}..` : ''}`, embeddingGradLaunch({
          dZ: b.dGi, start: b.embStart, positions: b.embPos, H: GH, V, N, ...gBias(w.weightIh.offset + r0 * V, rows * V),
          rows: rows < GH ? { start: r0, count: rows } : undefined,
        }, maxPerDim));
      }
    } else {
      const x = up(l - 1);
      for (const [r0, rows] of wihSplit ? rowRanges() : [[0, GH]]) {
        bw(`layer ${l} matmul dW_ih${wihSplit ? ` rows ${r0}..` : ''}`, matmul(`layer ${l} dW_ih${wihSplit ? ' rows' : ''}`, {
          M: rows, N: H, K: N, transA: true, A: b.dGi, offA: r0, lda: GH, B: x.buffer, offB: x.offset, ldb: H, C: b.grads, offC: w.weightIh.offset + r0 * H, ldc: H,
        }));
      }
    }
    bw(`layer ${l} column_sum db_ih`, columnSumLaunch({ X: b.dGi, rows: N, cols: GH, ...gBias(w.biasIh.offset, GH) }, maxPerDim));
    if (l > 0 && !wihSplit) bw(`layer ${l} matmul dL/dx`, matmul(`layer ${l} dL/dx`, { M: N, N: H, K: GH, A: b.dGi, lda: GH, B: b.params, offB: w.weightIh.offset, ldb: H, C: dUp, ldc: H }));
    if (l > 0 && wihSplit) {
      // Per range of positions: the partial products over W_ih's row ranges, then their sum.
      const ranges = rowRanges();
      for (let n0 = 0; n0 < N; n0 += split!.dxRows) {
        const rows = Math.min(split!.dxRows, N - n0);
        ranges.forEach(([r0, k], p) => {
          bw(`layer ${l} matmul dL/dx rows ${r0}.. positions ${n0}..`, matmul(`layer ${l} dL/dx rows`, {
            M: rows, N: H, K: k, A: b.dGi, offA: n0 * GH + r0, lda: GH, B: b.params, offB: w.weightIh.offset + r0 * H, ldb: H, C: b.dxPart, offC: p * rows * H, ldc: H,
          }));
        });
        bw(`layer ${l} column_sum dL/dx positions ${n0}..`, columnSumLaunch({ X: b.dxPart, rows: ranges.length, cols: rows * H, out: dUp, offOut: n0 * H }, maxPerDim));
      }
    }
  }

  // The split plan keeps no transposed copies (its steps read W_hh itself, the logits W_dec).
  const whh: WhhCopies = split ? { layers: 0, rows: GH, cols: H } : {
    layers: L, rows: GH, cols: H,
    decoder: { at: dec.w, biasAt: dec.b, rows: V, cols: H, off: decT.off, ld: decT.ld },
  };
  const P = layout.length, chunk = split?.optChunkWords ?? P;
  const chunks = Array.from({ length: Math.ceil(P / chunk) }, (_, i) => Math.min(chunk, P - i * chunk));
  const update = chunks.map((n, i) => {
    const at = (buf: PlanBuffer) => win(buf, i * chunk, i * chunk + n).buf;
    const uniforms: Windowed = { ...b.optimizerUniforms, base: (i * UNIFORM_ALIGN) / 4, size: OPTIMIZER_UNIFORM_BYTES };
    return plan(`update optimizer${split ? ` words ${i * chunk}..` : ''}`, optimizerLaunch({
      params: at(b.params), grads: at(b.grads), m: at(b.optM), v: at(b.optV), whhT: b.whhT, whhAt: b.whhAt,
      n, kind: train.optimizer, whh, uniforms: { buffer: chunks.length > 1 ? uniforms : b.optimizerUniforms },
    }, maxPerDim));
  });

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
    optimizer: { n: layout.length, whh, chunks },
    lossRing: Array.from({ length: LOSS_RING }, (_, i) => `lossRing${i}`),
    matmuls,
    cells: [...cells.values()],
  };
}
