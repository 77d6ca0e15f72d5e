/**
 * The GPU backend: the TypeScript host that owns the buffers, pipelines and command encoding, for
 * every cell (rnn, lstm, gru) and depth, with dropout between layers.
 *
 * One training iteration is one command buffer and one queue.submit, with no readback inside it.
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
 *   update                     optimizer                                clip + Adagrad/Adam, flat parameters
 * = L(2T + 6) + 2dL + 6 dispatches (dispatchesPerIteration). The dispatch lists are built once
 * (shapes are fixed), so an iteration only uploads its tokens and two small uniforms and replays
 * them. The loss travels back through a small ring of staging buffers, so the CPU never waits for
 * the GPU unless it runs a whole ring ahead.
 */
import {
  checkStateShape, streamState, type Backend, type GradientResult, type HostSampler, type ModelState, type SampleOptions, type TokenChunk,
} from '../model/backend.ts';
import { GATES, hasCellState, SAVED } from '../model/cells.ts';
import { fullModelConfig, type FullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { dropoutSeed } from '../model/dropout.ts';
import { initParams } from '../model/init.ts';
import { paramLayout, type ParamLayout } from '../model/layout.ts';
import { ADAGRAD_EPS, ADAM } from '../model/optimizer.ts';
import {
  CELL_CODE, Kernels, cellConstants, cellEntryPoint, MATMUL_VARIANTS, cellBackwardUniforms, cellForwardUniforms, cellGrid,
  dropoutMaskUniform, dropoutUniforms, grid1D, inputGatherUniforms, matmulConstants, matmulGrid, matmulUniforms, matmulVariantFor, optimizerUniforms, transposedWhh, softmaxVariantFor, softmaxXentLaunch, type MatmulArgs,
} from './kernels.ts';
import { checkFits } from './memory.ts';
import type { GpuContext } from './device.ts';

export class DeviceLostError extends Error {}

interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  x: number;
  y: number;
}

// A function, not a constant: in Node the GPUBufferUsage global exists only once dawn.node is loaded.
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const UNIFORM_ALIGN = 256;
const LOSS_RING = 3;
const MATMUL_WG = 8;
/** Layers sample.wgsl's uniforms have room for. */
const SAMPLE_MAX_LAYERS = 8;

/** Packs many small uniform blocks into one buffer at 256-byte offsets, written once. */
class UniformArena {
  private blocks: ArrayBuffer[] = [];
  buffer!: GPUBuffer;

  add(fields: { u32?: number[]; f32?: number[] } | ArrayBuffer): number {
    const data = fields instanceof ArrayBuffer ? fields : packFields(fields.u32 ?? [], fields.f32 ?? []);
    this.blocks.push(data);
    return this.blocks.length - 1;
  }

  finish(device: GPUDevice, label: string): void {
    this.buffer = device.createBuffer({ label, size: Math.max(1, this.blocks.length) * UNIFORM_ALIGN, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.blocks.forEach((b, i) => device.queue.writeBuffer(this.buffer, i * UNIFORM_ALIGN, b));
  }

  binding(slot: number): GPUBufferBinding {
    return { buffer: this.buffer, offset: slot * UNIFORM_ALIGN, size: this.blocks[slot].byteLength };
  }
}

function packFields(u32: number[], f32: number[]): ArrayBuffer {
  const bytes = Math.ceil(((u32.length + f32.length) * 4) / 16) * 16;
  const buf = new ArrayBuffer(Math.max(16, bytes));
  new Uint32Array(buf, 0, u32.length).set(u32);
  new Float32Array(buf, u32.length * 4, f32.length).set(f32);
  return buf;
}

/** Dispatches per training iteration (see the header): the formula `perStep.dispatches` reports. */
export function dispatchesPerIteration(model: ModelConfig, train: TrainConfig): number {
  const { layers: L, dropout } = fullModelConfig(model);
  const d = dropout > 0 ? 1 : 0;
  return L * (2 * train.seqLength + 6) + 2 * d * L + 6;
}

export class GpuBackend implements Backend {
  readonly kind = 'gpu';
  readonly description: string;
  readonly perStep: { dispatches: number; readbacks: number; submits: number };
  /** Bytes of GPU memory the training buffers take (computed before allocating). */
  readonly memoryBytes: number;
  private readonly device: GPUDevice;
  private readonly kernels: Kernels;
  private readonly shape: FullModelConfig;
  private readonly layout: ParamLayout;
  private readonly maskSeed: number;
  private readonly buf: Record<string, GPUBuffer> = {};
  private readonly uniforms = new UniformArena();
  private readonly optUniform: GPUBuffer;
  private readonly maskUniform: GPUBuffer;
  private readonly forward: Dispatch[];
  private readonly backward: Dispatch[];
  /** backward with, after each layer's last step, the dispatch that forms that layer's dh0 (gradients() only). */
  private readonly backwardWithDh0: Dispatch[];
  private readonly update: Dispatch;
  private readonly staging: GPUBuffer[] = [];
  private readonly pending: (Promise<number> | undefined)[] = [];
  private ringNext = 0;
  private optStep = 0;
  private lostReason: string | undefined;
  private destroyed = false;

  constructor(
    private readonly ctx: GpuContext, readonly model: ModelConfig, readonly train: TrainConfig, seed: number,
    private readonly hostSampler?: HostSampler,
  ) {
    this.memoryBytes = checkFits(model, train, ctx.limits).totalBytes;
    this.device = ctx.device;
    this.description = ctx.adapterName;
    this.kernels = new Kernels(this.device);
    this.shape = fullModelConfig(model);
    this.layout = paramLayout(model);
    this.maskSeed = dropoutSeed(seed);
    void this.device.lost.then((info) => {
      if (!this.destroyed) this.lostReason = info.message || String(info.reason);
    });

    const { cell, hiddenSize: H, vocabSize: V, layers: L, dropout } = this.shape;
    const { seqLength: T, batchSize: B } = train;
    const G = GATES[cell], S = SAVED[cell], GH = G * H, lstm = hasCellState(cell);
    const N = T * B, BH = B * H;
    const P = this.layout.length;
    const f32 = (name: string, n: number) => this.createBuffer(name, n * 4);
    f32('params', P); f32('grads', P); f32('optM', P); f32('optV', P);
    f32('hState', L * BH); f32('cState', lstm ? L * BH : 4);
    f32('hAll', L * (T + 1) * BH); f32('cAll', lstm ? L * (T + 1) * BH : 4); f32('saved', S ? L * N * S * H : 4);
    f32('gi', N * GH); f32('dGi', N * GH); f32('dGh', N * GH);
    f32('xUp', dropout > 0 ? L * N * H : 4); f32('dAbove', N * H); f32('dAboveRaw', dropout > 0 ? N * H : 4);
    f32('dState', L * 3 * BH);
    // W_hh^T per layer for cell_forward, kept in step by the optimizer (transposedWhh's layout).
    f32('whhT', L * GH * H + 16); this.createBuffer('whhAt', 4 * L);
    f32('logits', N * V); f32('rowLoss', N); f32('lossOut', 4);
    f32('inputs', N); f32('targets', N); f32('embStart', V + 1); f32('embPos', N);
    for (let i = 0; i < LOSS_RING; i++) {
      this.staging.push(this.device.createBuffer({ label: `loss staging ${i}`, size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
    }
    this.device.queue.writeBuffer(this.buf.whhAt, 0, Uint32Array.from(this.layout.layers, (w) => w.weightHh.offset));
    this.writeParams(initParams(model, seed, Float32Array) as Float32Array);
    this.maskUniform = this.device.createBuffer({ label: 'dropout mask', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });

    // Build every dispatch of an iteration once; bind groups refer to uniform slots filled below.
    const forward: (() => Dispatch)[] = [];
    const backward: { build: () => Dispatch; dh0Only?: boolean }[] = [];
    const b = this.buf;
    const hBase = (l: number) => l * (T + 1) * BH;
    // Layer l's output as seen from above (after dropout): the input of layer l+1 or of the decoder.
    const up = (l: number) => (dropout > 0 ? { buffer: b.xUp, offset: l * N * H } : { buffer: b.hAll, offset: hBase(l) + BH });
    const dUp = dropout > 0 ? b.dAboveRaw : b.dAbove;
    for (let l = 0; l < L; l++) {
      const w = this.layout.layers[l];
      if (l === 0) {
        forward.push(this.gather({ N, GH, V, offWih: w.weightIh.offset, offBih: w.biasIh.offset }));
      } else {
        const x = up(l - 1);
        forward.push(this.matmul({
          M: N, N: GH, K: H, transB: true, A: x.buffer, offA: x.offset, lda: H,
          B: b.params, offB: w.weightIh.offset, ldb: H, C: b.gi, ldc: GH, bias: w.biasIh.offset,
        }));
      }
      for (let t = 0; t < T; t++) {
        forward.push(this.cellStep('cell_forward', cellForwardUniforms(cell, {
          B, H, offWhhT: l * GH * H, offBhh: w.biasHh.offset, offGi: t * B * GH,
          offHin: hBase(l) + t * BH, offHout: hBase(l) + (t + 1) * BH, offSaved: (l * N + t * B) * S * H,
          offCin: hBase(l) + t * BH, offCout: hBase(l) + (t + 1) * BH,
        }), [b.params, b.gi, b.hAll, b.cAll, b.saved], { buffer: b.whhT, offset: l * GH * H }));
      }
      if (dropout > 0) forward.push(this.dropout(b.hAll, b.xUp, { n: N * H, offSrc: hBase(l) + BH, offDst: l * N * H, maskBase: l * N * H }));
    }
    const top = up(L - 1);
    const dec = { w: this.layout.decoderWeight.offset, b: this.layout.decoderBias.offset };
    forward.push(this.matmul({
      M: N, N: V, K: H, transB: true,
      A: top.buffer, offA: top.offset, lda: H, B: b.params, offB: dec.w, ldb: H, C: b.logits, ldc: V, bias: dec.b,
    }));
    forward.push(this.softmaxXent([b.logits, b.targets, b.rowLoss], N, V, 1 / N));
    forward.push(this.simple('loss_sum', [b.rowLoss, b.lossOut], { u32: [N], f32: [1 / N] }, 1, 1));

    const bw = (build: () => Dispatch) => backward.push({ build });
    bw(this.matmul({
      M: V, N: H, K: N, transA: true,
      A: b.logits, lda: V, B: top.buffer, offB: top.offset, ldb: H, C: b.grads, offC: dec.w, ldc: H,
    }));
    bw(this.simple('column_sum', [b.logits, b.grads], { u32: [N, V, 0, dec.b] }, Math.ceil(V / 64), 1));
    bw(this.matmul({ M: N, N: H, K: V, A: b.logits, lda: V, B: b.params, offB: dec.w, ldb: H, C: dUp, ldc: H }));
    const emb = grid1D(GH * V, 64, ctx.limits.maxComputeWorkgroupsPerDimension);
    for (let l = L - 1; l >= 0; l--) {
      const w = this.layout.layers[l];
      if (dropout > 0) bw(this.dropout(b.dAboveRaw, b.dAbove, { n: N * H, offSrc: 0, offDst: 0, maskBase: l * N * H }));
      const cellBuffers = [b.params, b.dGh, b.dGi, b.dAbove, b.hAll, b.cAll, b.saved, b.dState];
      const step = (t: number) => ({
        B, H, offWhh: w.weightHh.offset, offDG: t * B * GH, offDAbove: t * BH, offSaved: (l * N + t * B) * S * H,
        offHin: hBase(l) + t * BH, offHout: hBase(l) + (t + 1) * BH, offCin: hBase(l) + t * BH, offCout: hBase(l) + (t + 1) * BH,
        offDState: l * 3 * BH,
      });
      for (let t = T - 1; t >= 0; t--) {
        bw(this.cellStep('cell_backward', cellBackwardUniforms(cell, { ...step(t), offDGhNext: t === T - 1 ? undefined : (t + 1) * B * GH }), cellBuffers, { buffer: b.params, offset: w.weightHh.offset }));
      }
      backward.push({ build: this.cellStep('cell_backward', cellBackwardUniforms(cell, { ...step(0), offDGhNext: 0, tail: true }), cellBuffers, { buffer: b.params, offset: w.weightHh.offset }), dh0Only: true });
      bw(this.matmul({
        M: GH, N: H, K: N, transA: true, A: b.dGh, lda: GH, B: b.hAll, offB: hBase(l), ldb: H, C: b.grads, offC: w.weightHh.offset, ldc: H,
      }));
      bw(this.simple('column_sum', [b.dGh, b.grads], { u32: [N, GH, 0, w.biasHh.offset] }, Math.ceil(GH / 64), 1));
      if (l === 0) {
        bw(this.simple('embedding_grad', [b.dGi, b.embStart, b.embPos, b.grads], { u32: [GH, V, w.weightIh.offset, emb.perRow] }, emb.x, emb.y));
      } else {
        const x = up(l - 1);
        bw(this.matmul({
          M: GH, N: H, K: N, transA: true, A: b.dGi, lda: GH, B: x.buffer, offB: x.offset, ldb: H, C: b.grads, offC: w.weightIh.offset, ldc: H,
        }));
      }
      bw(this.simple('column_sum', [b.dGi, b.grads], { u32: [N, GH, 0, w.biasIh.offset] }, Math.ceil(GH / 64), 1));
      if (l > 0) bw(this.matmul({ M: N, N: H, K: GH, A: b.dGi, lda: GH, B: b.params, offB: w.weightIh.offset, ldb: H, C: dUp, ldc: H }));
    }

    this.uniforms.finish(this.device, 'uniforms');
    this.forward = forward.map((f) => f());
    const built = backward.map((e) => ({ dispatch: e.build(), dh0Only: !!e.dh0Only }));
    this.backward = built.filter((e) => !e.dh0Only).map((e) => e.dispatch);
    this.backwardWithDh0 = built.map((e) => e.dispatch);

    this.optUniform = this.device.createBuffer({ label: 'optimizer uniforms', size: 64, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const opt = grid1D(P, 256, ctx.limits.maxComputeWorkgroupsPerDimension);
    const optPipeline = this.kernels.pipeline('optimizer', { OPTIMIZER: train.optimizer === 'adagrad' ? 0 : 1 });
    this.update = {
      pipeline: optPipeline,
      bindGroup: this.kernels.bindGroup(optPipeline, [b.params, b.grads, b.optM, b.optV, this.optUniform, b.whhT, b.whhAt], 'optimizer'),
      x: opt.x, y: opt.y,
    };
    this.optGrid = opt;
    this.perStep = { dispatches: this.forward.length + this.backward.length + 1, readbacks: 1, submits: 1 };
    if (this.perStep.dispatches !== dispatchesPerIteration(model, train)) {
      throw new Error(`internal: ${this.perStep.dispatches} dispatches built, the formula says ${dispatchesPerIteration(model, train)}`);
    }
  }

  private optGrid: { perRow: number };

  /** `hostSampler` samples past the GPU sampler's limits (the engine passes the CPU reference's). */
  static async create(ctx: GpuContext, model: ModelConfig, train: TrainConfig, seed: number, hostSampler?: HostSampler): Promise<GpuBackend> {
    ctx.device.pushErrorScope('validation');
    ctx.device.pushErrorScope('out-of-memory');
    const backend = new GpuBackend(ctx, model, train, seed, hostSampler);
    const oom = await ctx.device.popErrorScope();
    const invalid = await ctx.device.popErrorScope();
    if (oom || invalid) {
      backend.destroy();
      throw new Error(`could not set up the GPU model: ${(oom ?? invalid)!.message.split('\n')[0]}`);
    }
    return backend;
  }

  private createBuffer(name: string, bytes: number): GPUBuffer {
    const buffer = this.device.createBuffer({ label: name, size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: storageUsage() });
    this.buf[name] = buffer;
    return buffer;
  }

  /** Records a matmul's uniforms now and returns a thunk that builds its bind group once they are uploaded. */
  private matmul(s: MatmulArgs): () => Dispatch {
    const slot = this.uniforms.add(matmulUniforms(s).buffer as ArrayBuffer);
    return () => {
      const variant = matmulVariantFor(s);
      const tiling = { variant, wgX: MATMUL_WG, wgY: MATMUL_WG };
      const pipeline = this.kernels.pipeline('matmul', matmulConstants(tiling, !!s.transA, !!s.transB), MATMUL_VARIANTS[variant].entryPoint);
      const bindGroup = this.kernels.bindGroup(pipeline, [s.A, s.B, s.C, this.uniforms.binding(slot)], 'matmul');
      return { pipeline, bindGroup, ...matmulGrid(s.M, s.N, variant, MATMUL_WG, MATMUL_WG) };
    };
  }

  private simple(name: 'loss_sum' | 'column_sum' | 'embedding_grad', buffers: GPUBuffer[], u: { u32?: number[]; f32?: number[] }, x: number, y: number): () => Dispatch {
    const slot = this.uniforms.add(u);
    return () => {
      const pipeline = this.kernels.pipeline(name);
      return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, [...buffers, this.uniforms.binding(slot)], name), x, y };
    };
  }

  /** `whh`: where the step reads W_hh, in params (cell_backward) or transposed in whhT (cell_forward, bound after the uniforms). */
  private cellStep(name: 'cell_forward' | 'cell_backward', u: Uint32Array, buffers: GPUBuffer[], whh: { buffer: GPUBuffer; offset: number }): () => Dispatch {
    const slot = this.uniforms.add(u.buffer as ArrayBuffer);
    const { hiddenSize: H, cell } = this.shape;
    return () => {
      const pipeline = this.kernels.pipeline(name, cellConstants(cell, this.train.batchSize), cellEntryPoint(whh.buffer, H, whh.offset, cell));
      const x = cellGrid(name, cell, this.train.batchSize, H).x;
      const bindings = [...buffers, this.uniforms.binding(slot), ...(name === 'cell_forward' ? [whh.buffer] : [])];
      return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, bindings, name), x, y: 1 };
    };
  }

  private gather(a: { N: number; GH: number; V: number; offWih: number; offBih: number }): () => Dispatch {
    const g = grid1D(a.N * a.GH, 64, this.ctx.limits.maxComputeWorkgroupsPerDimension);
    const slot = this.uniforms.add(inputGatherUniforms(a, g.perRow).buffer as ArrayBuffer);
    return () => {
      const pipeline = this.kernels.pipeline('input_gather');
      return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, [this.buf.params, this.buf.inputs, this.buf.gi, this.uniforms.binding(slot)], 'input_gather'), x: g.x, y: g.y };
    };
  }

  private dropout(src: GPUBuffer, dst: GPUBuffer, a: { n: number; offSrc: number; offDst: number; maskBase: number }): () => Dispatch {
    const g = grid1D(a.n, 64, this.ctx.limits.maxComputeWorkgroupsPerDimension);
    const slot = this.uniforms.add(dropoutUniforms(a, g.perRow).buffer as ArrayBuffer);
    return () => {
      const pipeline = this.kernels.pipeline('dropout');
      return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, [src, dst, this.uniforms.binding(slot), this.maskUniform], 'dropout'), x: g.x, y: g.y };
    };
  }

  /** The next submit's dropout mask: the training mask of update number `optStep`, or keep-all for evaluation. */
  private writeMaskUniform(training: boolean): void {
    if (this.shape.dropout === 0) return;
    const p = training ? this.shape.dropout : 0;
    this.device.queue.writeBuffer(this.maskUniform, 0, dropoutMaskUniform(this.maskSeed, this.optStep, p));
  }

  private softmaxXent(buffers: GPUBuffer[], rows: number, cols: number, scale: number): () => Dispatch {
    const l = softmaxXentLaunch(rows, cols, scale, softmaxVariantFor(cols), this.ctx.limits.maxComputeWorkgroupsPerDimension);
    const slot = this.uniforms.add(l.uniforms);
    return () => {
      const pipeline = this.kernels.pipeline('softmax_xent', {}, l.entryPoint);
      return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, [...buffers, this.uniforms.binding(slot)], 'softmax_xent'), x: l.x, y: l.y };
    };
  }

  private assertUsable(): void {
    if (this.lostReason !== undefined) throw new DeviceLostError(`the GPU device was lost (${this.lostReason}); the last checkpoint is kept`);
    if (this.destroyed) throw new Error('GPU backend used after destroy()');
  }

  /** Uploads the chunk's tokens and, for dWxh, the positions of each token grouped by token. */
  private uploadTokens(c: TokenChunk): void {
    const V = this.model.vocabSize;
    const N = this.train.seqLength * this.train.batchSize;
    if (c.inputs.length !== N || c.targets.length !== N) throw new Error(`chunk has ${c.inputs.length} tokens, expected ${N}`);
    const start = new Uint32Array(V + 1);
    for (let p = 0; p < N; p++) {
      if (c.inputs[p] >= V || c.targets[p] >= V) throw new Error(`token id ${Math.max(c.inputs[p], c.targets[p])} outside the vocabulary of ${V}`);
      start[c.inputs[p] + 1]++;
    }
    for (let v = 0; v < V; v++) start[v + 1] += start[v];
    const fill = start.slice(0, V);
    const pos = new Uint32Array(N);
    for (let p = 0; p < N; p++) pos[fill[c.inputs[p]]++] = p;
    const q = this.device.queue;
    q.writeBuffer(this.buf.inputs, 0, c.inputs);
    q.writeBuffer(this.buf.targets, 0, c.targets);
    q.writeBuffer(this.buf.embStart, 0, start);
    q.writeBuffer(this.buf.embPos, 0, pos);
  }

  private writeOptimizerUniforms(): void {
    const adagrad = this.train.optimizer === 'adagrad';
    const { cell, hiddenSize: H, layers } = this.shape;
    this.device.queue.writeBuffer(this.optUniform, 0, optimizerUniforms({
      n: this.layout.length, kind: this.train.optimizer, lr: this.train.learningRate, clip: this.train.clip, step: this.optStep,
      eps: adagrad ? ADAGRAD_EPS : ADAM.eps, beta1: ADAM.beta1, beta2: ADAM.beta2, whh: { layers, rows: GATES[cell] * H, cols: H },
    }, this.optGrid.perRow));
  }

  /** The parameters, and the transposed W_hh copies cell_forward reads (the optimizer keeps them after). */
  private writeParams(params: Float32Array): void {
    const { cell, hiddenSize: H } = this.shape;
    const q = this.device.queue;
    q.writeBuffer(this.buf.params, 0, params);
    q.writeBuffer(this.buf.whhT, 0, transposedWhh(params, this.layout.layers.map((w) => w.weightHh.offset), GATES[cell] * H, H));
  }

  private encode(enc: GPUCommandEncoder, list: Dispatch[]): void {
    const pass = enc.beginComputePass();
    for (const d of list) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.x, d.y);
    }
    pass.end();
  }

  /**
   * Encodes one chunk: each layer's state in from `state` (h, and c for the LSTM, [L, B, H]) to the
   * first row of its slice of hAll / cAll, the dispatches, and the last row back out if `carry`.
   */
  private encodeChunk(state: { h: GPUBuffer; c: GPUBuffer }, list: Dispatch[], carry: boolean): GPUCommandEncoder {
    const { seqLength: T, batchSize: B } = this.train;
    const { layers: L } = this.shape;
    const bytesBH = B * this.shape.hiddenSize * 4;
    const pairs: [GPUBuffer, GPUBuffer][] = [[state.h, this.buf.hAll]];
    if (hasCellState(this.shape.cell)) pairs.push([state.c, this.buf.cAll]);
    const enc = this.device.createCommandEncoder();
    for (const [carried, all] of pairs) {
      for (let l = 0; l < L; l++) enc.copyBufferToBuffer(carried, l * bytesBH, all, l * (T + 1) * bytesBH, bytesBH);
    }
    this.encode(enc, list);
    if (carry) {
      for (const [carried, all] of pairs) {
        for (let l = 0; l < L; l++) enc.copyBufferToBuffer(all, (l * (T + 1) + T) * bytesBH, carried, l * bytesBH, bytesBH);
      }
    }
    return enc;
  }

  /** Takes the next staging buffer of the ring, waiting only if it still holds an unread loss. */
  private async nextStaging(): Promise<GPUBuffer> {
    const slot = this.ringNext;
    this.ringNext = (slot + 1) % LOSS_RING;
    const busy = this.pending[slot];
    if (busy) await busy.catch(() => undefined);
    return this.staging[slot];
  }

  private readLoss(staging: GPUBuffer, slot: number): Promise<number> {
    const p = staging.mapAsync(GPUMapMode.READ).then(() => {
      const v = new Float32Array(staging.getMappedRange())[0];
      staging.unmap();
      return v;
    }, (e: unknown) => {
      this.assertUsable();
      throw e;
    });
    this.pending[slot] = p;
    return p;
  }

  async trainStep(c: TokenChunk): Promise<{ loss: Promise<number> }> {
    this.assertUsable();
    const slot = this.ringNext;
    const staging = await this.nextStaging();
    this.uploadTokens(c);
    this.writeMaskUniform(true);
    this.optStep += 1;
    this.writeOptimizerUniforms();
    const enc = this.encodeChunk({ h: this.buf.hState, c: this.buf.cState }, [...this.forward, ...this.backward, this.update], true);
    enc.copyBufferToBuffer(this.buf.lossOut, 0, staging, 0, 4);
    this.device.queue.submit([enc.finish()]);
    return { loss: this.readLoss(staging, slot) };
  }

  async evaluate(chunks: Iterable<TokenChunk>): Promise<number> {
    this.assertUsable();
    const mk = (label: string, like: GPUBuffer) => this.device.createBuffer({ label, size: like.size, usage: storageUsage() });
    const state = { h: mk('eval hidden', this.buf.hState), c: mk('eval cells', this.buf.cState) };
    const losses: Promise<number>[] = [];
    try {
      for (const c of chunks) {
        const slot = this.ringNext;
        const staging = await this.nextStaging();
        this.uploadTokens(c);
        this.writeMaskUniform(false);
        const enc = this.encodeChunk(state, this.forward, true);
        enc.copyBufferToBuffer(this.buf.lossOut, 0, staging, 0, 4);
        this.device.queue.submit([enc.finish()]);
        losses.push(this.readLoss(staging, slot));
      }
      const all = await Promise.all(losses);
      return all.length ? all.reduce((a, b) => a + b, 0) / all.length : NaN;
    } finally {
      state.h.destroy();
      state.c.destroy();
    }
  }

  async gradients(c: TokenChunk): Promise<GradientResult> {
    this.assertUsable();
    this.uploadTokens(c);
    this.writeMaskUniform(true);
    const enc = this.encodeChunk({ h: this.buf.hState, c: this.buf.cState }, [...this.forward, ...this.backwardWithDh0], false);
    this.device.queue.submit([enc.finish()]);
    const { seqLength: T, batchSize: B } = this.train;
    const { layers: L, hiddenSize: H } = this.shape;
    const BH = B * H;
    const [loss, grads, hAll, dState, cAll] = await Promise.all([
      this.read(this.buf.lossOut, 0, 1), this.read(this.buf.grads), this.read(this.buf.hAll), this.read(this.buf.dState),
      hasCellState(this.shape.cell) ? this.read(this.buf.cAll) : undefined,
    ]);
    // Per layer: the last step's state, and dState's [direct | dc | dh0] blocks.
    const gatherLayers = (a: Float32Array, offset: (l: number) => number) => {
      const out = new Float32Array(L * BH);
      for (let l = 0; l < L; l++) out.set(a.subarray(offset(l), offset(l) + BH), l * BH);
      return out;
    };
    const last = (l: number) => (l * (T + 1) + T) * BH;
    const result: GradientResult = {
      loss: loss[0], grads, hLast: gatherLayers(hAll, last), dh0: gatherLayers(dState, (l) => (3 * l + 2) * BH),
    };
    if (cAll) {
      result.cLast = gatherLayers(cAll, last);
      result.dc0 = gatherLayers(dState, (l) => (3 * l + 1) * BH);
    }
    return result;
  }

  resetState(streams?: readonly number[]): void {
    const { layers: L, hiddenSize: H } = this.shape;
    const B = this.train.batchSize;
    // Queue writes run in order between submits, so this lands between the iterations around it.
    const buffers = hasCellState(this.shape.cell) ? [this.buf.hState, this.buf.cState] : [this.buf.hState];
    if (!streams) {
      const zeros = new Float32Array(L * B * H);
      for (const buf of buffers) this.device.queue.writeBuffer(buf, 0, zeros);
      return;
    }
    const zeros = new Float32Array(H);
    for (const buf of buffers) {
      for (let l = 0; l < L; l++) for (const b of streams) this.device.queue.writeBuffer(buf, (l * B + b) * H * 4, zeros);
    }
  }

  /** Copies `count` floats from `offset` (in floats) of a buffer back to the CPU. */
  async read(buffer: GPUBuffer, offset = 0, count?: number): Promise<Float32Array> {
    this.assertUsable();
    const n = count ?? buffer.size / 4 - offset;
    const staging = this.device.createBuffer({ size: Math.max(4, n * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, offset * 4, staging, 0, n * 4);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.assertUsable();
      throw e;
    }
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    return out;
  }

  async sample(o: SampleOptions): Promise<Uint32Array> {
    const { tokens } = await this.sampleWithProbs(o, false);
    return tokens;
  }

  /**
   * GPU sampling (shaders/sample.wgsl, every cell, up to SAMPLE_MAX_LAYERS layers); with
   * `recordProbs` also every step's distribution [seqLen * V] (parity tests). Past the kernel's
   * limits (H > 16 x 256 units, more layers, or a state larger than the adapter's workgroup
   * memory: layers x H floats, twice for the lstm) it samples from the current parameters with the
   * host sampler it was given (the engine's is the CPU reference): the same distributions up to
   * float rounding, just slower.
   */
  async sampleWithProbs(o: SampleOptions, recordProbs: boolean): Promise<{ tokens: Uint32Array; probs?: Float32Array }> {
    this.assertUsable();
    const { hiddenSize: H, vocabSize: V, layers: L, cell } = this.shape;
    if (o.prime.length < 1) throw new Error('sampling needs at least one priming token');
    const WG = 256;
    const maxState = Math.max(WG, Math.ceil((L * H) / WG) * WG);
    const maxCells = cell === 'lstm' ? maxState : 1;
    // h, c, and the reductions' partial sums and indices (2 x WG) plus a few scalars.
    const workgroupBytes = 4 * (maxState + maxCells + 2 * WG + 4);
    if (H > 16 * WG || L > SAMPLE_MAX_LAYERS || workgroupBytes > this.ctx.limits.maxComputeWorkgroupStorageSize) {
      if (recordProbs || !this.hostSampler) {
        throw new Error(`GPU sampling supports hidden sizes up to ${16 * WG} and ${SAMPLE_MAX_LAYERS} layers${recordProbs ? '' : ', and no host sampler was given'}`);
      }
      const [params, hidden, cellState] = await Promise.all([
        this.read(this.buf.params), this.read(this.buf.hState), hasCellState(cell) ? this.read(this.buf.cState) : undefined,
      ]);
      return { tokens: this.hostSampler(this.model, params, { ...o, start: streamState(this.model, this.train.batchSize, { hidden, cellState }) }) };
    }
    const seqLen = o.prime.length + o.length;
    const mk = (label: string, bytes: number) => this.device.createBuffer({ label, size: Math.max(16, bytes), usage: storageUsage() });
    const seq = mk('sample tokens', seqLen * 4);
    const state = mk('sample state', 2 * L * H * 4);
    const logits = mk('sample logits', V * 4);
    const probs = mk('sample probs', recordProbs ? seqLen * V * 4 : 16);
    const seqInit = new Uint32Array(seqLen);
    seqInit.set(o.prime);
    this.device.queue.writeBuffer(seq, 0, seqInit);
    const pipeline = this.kernels.pipeline('sample', {
      WG, MAX_STATE: maxState, MAX_CELLS: maxCells, RECORD_PROBS: recordProbs ? 1 : 0, CELL: CELL_CODE[cell],
    });
    // A few hundred steps per dispatch keeps each dispatch short (browsers reset long-running GPU work).
    const STEPS = 128;
    const arena = new UniformArena();
    const slots: number[] = [];
    for (let k = 0; k < seqLen - 1; k += STEPS) {
      const full = new ArrayBuffer(48 + 16 * SAMPLE_MAX_LAYERS);
      new Uint32Array(full, 0, 12).set([
        H, V, seqLen, o.prime.length, k, Math.min(seqLen - 1, k + STEPS), o.seed >>> 0, 0,
        this.layout.decoderWeight.offset, this.layout.decoderBias.offset, L, 0,
      ]);
      new Float32Array(full, 28, 1)[0] = o.temperature;
      this.layout.layers.forEach((w, l) => {
        new Uint32Array(full, 48 + 16 * l, 4).set([w.weightIh.offset, w.weightHh.offset, w.biasIh.offset, w.biasHh.offset]);
      });
      slots.push(arena.add(full));
    }
    arena.finish(this.device, 'sample uniforms');
    const enc = this.device.createCommandEncoder();
    // Start from stream 0's carried state: sample.wgsl reads h (then the LSTM's c) per layer from `state`.
    const BH = this.train.batchSize * H;
    for (let l = 0; l < L; l++) {
      enc.copyBufferToBuffer(this.buf.hState, l * BH * 4, state, l * H * 4, H * 4);
      if (hasCellState(cell)) enc.copyBufferToBuffer(this.buf.cState, l * BH * 4, state, (L + l) * H * 4, H * 4);
    }
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    for (const slot of slots) {
      pass.setBindGroup(0, this.kernels.bindGroup(pipeline, [this.buf.params, seq, state, logits, probs, arena.binding(slot)], 'sample'));
      pass.dispatchWorkgroups(1);
    }
    pass.end();
    this.device.queue.submit([enc.finish()]);
    try {
      const [out, p] = await Promise.all([this.read(seq), recordProbs ? this.read(probs, 0, seqLen * V) : undefined]);
      return { tokens: new Uint32Array(out.buffer, o.prime.length * 4, o.length).slice(), probs: p };
    } finally {
      for (const b of [seq, state, logits, probs, arena.buffer]) b.destroy();
    }
  }

  async exportState(): Promise<ModelState> {
    const lstm = hasCellState(this.shape.cell);
    const [params, optM, optV, hidden, cellState] = await Promise.all([
      this.read(this.buf.params), this.read(this.buf.optM), this.read(this.buf.optV), this.read(this.buf.hState),
      lstm ? this.read(this.buf.cState) : undefined,
    ]);
    return { params, optM, optV, optStep: this.optStep, hidden, ...(cellState ? { cellState } : {}) };
  }

  importState(s: ModelState): void {
    this.assertUsable();
    checkStateShape(this.model, this.train, this.layout.length, s);
    const q = this.device.queue;
    this.writeParams(s.params);
    q.writeBuffer(this.buf.optM, 0, s.optM);
    q.writeBuffer(this.buf.optV, 0, s.optV);
    q.writeBuffer(this.buf.hState, 0, s.hidden);
    if (s.cellState && hasCellState(this.shape.cell)) q.writeBuffer(this.buf.cState, 0, s.cellState);
    this.optStep = s.optStep;
  }


  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of Object.values(this.buf)) b.destroy();
    for (const b of this.staging) b.destroy();
    this.uniforms.buffer?.destroy();
    this.optUniform?.destroy();
    this.maskUniform?.destroy();
  }
}
