/**
 * The GPU backend: the TypeScript host that owns the buffers, pipelines and command encoding.
 *
 * One training iteration is one command buffer and one queue.submit, with no readback inside it:
 *   forward   T x matmul(MODE_RNN_FWD)            h_t = tanh(Wxh[:,x_t] + Whh h_{t-1} + bh)
 *             matmul + softmax_xent + loss_sum    logits for all T*B positions at once, dlogits, loss
 *   backward  matmul x2 + column_sum              dWhy, dL/dh from the outputs, dby
 *             T x matmul(MODE_RNN_BWD)            dz_t = (dh_t + Whh^T dz_{t+1}) (1 - h_t^2)
 *             matmul + column_sum + embedding_grad dWhh, dbh, dWxh for all steps at once
 *   update    optimizer                           clip + Adagrad/Adam over the flat parameters
 * = 2T + 10 dispatches. The dispatch list is built once (shapes are fixed), so an iteration only
 * uploads its tokens and replays it. The loss travels back through a small ring of staging
 * buffers, so the CPU never waits for the GPU unless it runs a whole ring ahead.
 */
import type { Backend, GradientResult, ModelState, SampleOptions, TokenChunk } from '../engine/backend.ts';
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import { initParams } from '../model/init.ts';
import { paramLayout, type ParamLayout } from '../model/layout.ts';
import { ADAGRAD_EPS, ADAM } from '../cpu/optim.ts';
import { Kernels, MATMUL_BLOCK, MATMUL_MODE, MATMUL_VARIANTS, grid1D, matmulVariantFor, softmaxVariantFor, softmaxXentLaunch } from './kernels.ts';
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

interface MatmulSpec {
  M: number; N: number; K: number;
  transA?: boolean; transB?: boolean; mode?: number;
  A: GPUBuffer; offA?: number; lda: number;
  B: GPUBuffer; offB?: number; ldb: number;
  C: GPUBuffer; offC?: number; ldc: number;
  bias?: number;
  gather?: { offset: number; stride: number; tokens: GPUBuffer; tokenOffset: number };
  D?: { buffer: GPUBuffer; offset: number };
  E?: { buffer: GPUBuffer; offset: number };
}

export class GpuBackend implements Backend {
  readonly kind = 'gpu';
  readonly description: string;
  readonly perStep: { dispatches: number; readbacks: number; submits: number };
  /** Bytes of GPU memory the training buffers take (computed before allocating). */
  readonly memoryBytes: number;
  private readonly device: GPUDevice;
  private readonly kernels: Kernels;
  private readonly layout: ParamLayout;
  private readonly buf: Record<string, GPUBuffer> = {};
  private readonly uniforms = new UniformArena();
  private readonly optUniform: GPUBuffer;
  private readonly forward: Dispatch[];
  private readonly backward: Dispatch[];
  private readonly dh0Dispatch: Dispatch;
  private readonly update: Dispatch;
  private readonly staging: GPUBuffer[] = [];
  private readonly pending: (Promise<number> | undefined)[] = [];
  private ringNext = 0;
  private optStep = 0;
  private lostReason: string | undefined;
  private destroyed = false;

  constructor(private readonly ctx: GpuContext, readonly model: ModelConfig, readonly train: TrainConfig, seed: number) {
    this.memoryBytes = checkFits(model, train, ctx.limits).totalBytes;
    this.device = ctx.device;
    this.description = ctx.adapterName;
    this.kernels = new Kernels(this.device);
    this.layout = paramLayout(model);
    void this.device.lost.then((info) => {
      if (!this.destroyed) this.lostReason = info.message || String(info.reason);
    });

    const { hiddenSize: H, vocabSize: V } = model;
    const { seqLength: T, batchSize: B } = train;
    const N = T * B;
    const P = this.layout.length;
    const f32 = (name: string, n: number) => this.createBuffer(name, n * 4);
    f32('params', P); f32('grads', P); f32('optM', P); f32('optV', P);
    f32('hState', B * H); f32('hAll', (T + 1) * B * H); f32('dHout', N * H); f32('dZ', N * H); f32('dh0', B * H);
    f32('logits', N * V); f32('rowLoss', N); f32('lossOut', 4);
    f32('inputs', N); f32('targets', N); f32('embStart', V + 1); f32('embPos', N);
    for (let i = 0; i < LOSS_RING; i++) {
      this.staging.push(this.device.createBuffer({ label: `loss staging ${i}`, size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
    }
    this.device.queue.writeBuffer(this.buf.params, 0, initParams(model, seed, Float32Array) as Float32Array);

    // Build every dispatch of an iteration once; bind groups refer to uniform slots filled below.
    const pending: (() => Dispatch)[] = [];
    const forward: (() => Dispatch)[] = [];
    const backward: (() => Dispatch)[] = [];
    const L = this.layout.byName;
    const b = this.buf;
    for (let t = 0; t < T; t++) {
      forward.push(this.matmul({
        M: B, N: H, K: H, transB: true, mode: MATMUL_MODE.rnnForward,
        A: b.hAll, offA: t * B * H, lda: H, B: b.params, offB: L.Whh.offset, ldb: H, C: b.hAll, offC: (t + 1) * B * H, ldc: H,
        bias: L.bh.offset, gather: { offset: L.Wxh.offset, stride: V, tokens: b.inputs, tokenOffset: t * B },
      }));
    }
    forward.push(this.matmul({
      M: N, N: V, K: H, transB: true,
      A: b.hAll, offA: B * H, lda: H, B: b.params, offB: L.Why.offset, ldb: H, C: b.logits, ldc: V, bias: L.by.offset,
    }));
    forward.push(this.softmaxXent([b.logits, b.targets, b.rowLoss], N, V, 1 / N));
    forward.push(this.simple('loss_sum', [b.rowLoss, b.lossOut], { u32: [N], f32: [1 / N] }, 1, 1));

    backward.push(this.matmul({
      M: V, N: H, K: N, transA: true,
      A: b.logits, lda: V, B: b.hAll, offB: B * H, ldb: H, C: b.grads, offC: L.Why.offset, ldc: H,
    }));
    backward.push(this.simple('column_sum', [b.logits, b.grads], { u32: [N, V, 0, L.by.offset] }, Math.ceil(V / 64), 1));
    backward.push(this.matmul({
      M: N, N: H, K: V, A: b.logits, lda: V, B: b.params, offB: L.Why.offset, ldb: H, C: b.dHout, ldc: H,
    }));
    for (let t = T - 1; t >= 0; t--) {
      // The last step has no dz_{t+1}: K = 0 leaves only the output-layer term.
      backward.push(this.matmul({
        M: B, N: H, K: t === T - 1 ? 0 : H, mode: MATMUL_MODE.rnnBackward,
        A: b.dZ, offA: t === T - 1 ? 0 : (t + 1) * B * H, lda: H, B: b.params, offB: L.Whh.offset, ldb: H,
        C: b.dZ, offC: t * B * H, ldc: H, D: { buffer: b.dHout, offset: t * B * H }, E: { buffer: b.hAll, offset: (t + 1) * B * H },
      }));
    }
    backward.push(this.matmul({
      M: H, N: H, K: N, transA: true, A: b.dZ, lda: H, B: b.hAll, ldb: H, C: b.grads, offC: L.Whh.offset, ldc: H,
    }));
    backward.push(this.simple('column_sum', [b.dZ, b.grads], { u32: [N, H, 0, L.bh.offset] }, Math.ceil(H / 64), 1));
    const emb = grid1D(H * V, 64, ctx.limits.maxComputeWorkgroupsPerDimension);
    backward.push(this.simple('embedding_grad', [b.dZ, b.embStart, b.embPos, b.grads], { u32: [H, V, L.Wxh.offset, emb.perRow] }, emb.x, emb.y));
    const dh0 = this.matmul({ M: B, N: H, K: H, A: b.dZ, lda: H, B: b.params, offB: L.Whh.offset, ldb: H, C: b.dh0, ldc: H });
    pending.push(...forward, ...backward, dh0);

    this.uniforms.finish(this.device, 'uniforms');
    this.forward = forward.map((f) => f());
    this.backward = backward.map((f) => f());
    this.dh0Dispatch = dh0();

    this.optUniform = this.device.createBuffer({ label: 'optimizer uniforms', size: 48, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const opt = grid1D(P, 256, ctx.limits.maxComputeWorkgroupsPerDimension);
    const optPipeline = this.kernels.pipeline('optimizer', { OPTIMIZER: train.optimizer === 'adagrad' ? 0 : 1 });
    this.update = {
      pipeline: optPipeline,
      bindGroup: this.kernels.bindGroup(optPipeline, [b.params, b.grads, b.optM, b.optV, this.optUniform], 'optimizer'),
      x: opt.x, y: opt.y,
    };
    this.optGrid = opt;
    this.perStep = { dispatches: this.forward.length + this.backward.length + 1, readbacks: 1, submits: 1 };
  }

  private optGrid: { perRow: number };

  static async create(ctx: GpuContext, model: ModelConfig, train: TrainConfig, seed: number): Promise<GpuBackend> {
    ctx.device.pushErrorScope('validation');
    ctx.device.pushErrorScope('out-of-memory');
    const backend = new GpuBackend(ctx, model, train, seed);
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
  private matmul(s: MatmulSpec): () => Dispatch {
    const mode = s.mode ?? MATMUL_MODE.plain;
    const slot = this.uniforms.add({
      u32: [
        s.M, s.N, s.K, s.bias === undefined ? 0 : 1,
        s.lda, s.ldb, s.ldc, s.bias ?? 0,
        s.offA ?? 0, s.offB ?? 0, s.offC ?? 0, s.gather?.tokenOffset ?? 0,
        s.gather?.offset ?? 0, s.gather?.stride ?? 0, s.D?.offset ?? 0, s.E?.offset ?? 0,
      ],
    });
    return () => {
      const pipeline = this.kernels.pipeline('matmul', {
        WG_X: MATMUL_WG, WG_Y: MATMUL_WG, TRANS_A: s.transA ? 1 : 0, TRANS_B: s.transB ? 1 : 0, MODE: mode,
      }, MATMUL_VARIANTS[matmulVariantFor(s)].entryPoint);
      // Bindings a mode does not read still need a buffer; any read-only one that is not written here will do.
      const spare = this.buf.embPos;
      const bindGroup = this.kernels.bindGroup(pipeline, [
        mode === MATMUL_MODE.plain ? s.A : spare, s.B, s.C, s.D?.buffer ?? spare, s.E?.buffer ?? spare, s.gather?.tokens ?? this.buf.inputs, this.uniforms.binding(slot),
      ], 'matmul');
      const span = MATMUL_BLOCK * MATMUL_WG;
      return { pipeline, bindGroup, x: Math.ceil(s.N / span), y: Math.ceil(s.M / span) };
    };
  }

  private simple(name: 'loss_sum' | 'column_sum' | 'embedding_grad', buffers: GPUBuffer[], u: { u32?: number[]; f32?: number[] }, x: number, y: number): () => Dispatch {
    const slot = this.uniforms.add(u);
    return () => {
      const pipeline = this.kernels.pipeline(name);
      return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, [...buffers, this.uniforms.binding(slot)], name), x, y };
    };
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
    const step = this.optStep;
    const data = new ArrayBuffer(48);
    new Uint32Array(data, 0, 2).set([this.layout.length, this.optGrid.perRow]);
    const adagrad = this.train.optimizer === 'adagrad';
    new Float32Array(data, 8, 9).set([
      this.train.learningRate, this.train.clip,
      1 - Math.pow(ADAM.beta1, step), 1 - Math.pow(ADAM.beta2, step), ADAM.beta1, ADAM.beta2,
      adagrad ? ADAGRAD_EPS : ADAM.eps, 1 - ADAM.beta1, 1 - ADAM.beta2,
    ]);
    this.device.queue.writeBuffer(this.optUniform, 0, data);
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

  /** Encodes one chunk: hidden state in from `hidden`, dispatches, hidden state back out if `carry`. */
  private encodeChunk(hidden: GPUBuffer, list: Dispatch[], carry: boolean): GPUCommandEncoder {
    const { seqLength: T, batchSize: B } = this.train;
    const bytesBH = B * this.model.hiddenSize * 4;
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(hidden, 0, this.buf.hAll, 0, bytesBH);
    this.encode(enc, list);
    if (carry) enc.copyBufferToBuffer(this.buf.hAll, T * bytesBH, hidden, 0, bytesBH);
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
    this.optStep += 1;
    this.writeOptimizerUniforms();
    const enc = this.encodeChunk(this.buf.hState, [...this.forward, ...this.backward, this.update], true);
    enc.copyBufferToBuffer(this.buf.lossOut, 0, staging, 0, 4);
    this.device.queue.submit([enc.finish()]);
    return { loss: this.readLoss(staging, slot) };
  }

  async evaluate(chunks: Iterable<TokenChunk>): Promise<number> {
    this.assertUsable();
    const hidden = this.device.createBuffer({ label: 'eval hidden', size: this.buf.hState.size, usage: storageUsage() });
    const losses: Promise<number>[] = [];
    try {
      for (const c of chunks) {
        const slot = this.ringNext;
        const staging = await this.nextStaging();
        this.uploadTokens(c);
        const enc = this.encodeChunk(hidden, this.forward, true);
        enc.copyBufferToBuffer(this.buf.lossOut, 0, staging, 0, 4);
        this.device.queue.submit([enc.finish()]);
        losses.push(this.readLoss(staging, slot));
      }
      const all = await Promise.all(losses);
      return all.length ? all.reduce((a, b) => a + b, 0) / all.length : NaN;
    } finally {
      hidden.destroy();
    }
  }

  async gradients(c: TokenChunk): Promise<GradientResult> {
    this.assertUsable();
    this.uploadTokens(c);
    const enc = this.encodeChunk(this.buf.hState, [...this.forward, ...this.backward, this.dh0Dispatch], false);
    this.device.queue.submit([enc.finish()]);
    const { seqLength: T, batchSize: B } = this.train;
    const BH = B * this.model.hiddenSize;
    const [loss, grads, hLast, dh0] = await Promise.all([
      this.read(this.buf.lossOut, 0, 1), this.read(this.buf.grads), this.read(this.buf.hAll, T * BH, BH), this.read(this.buf.dh0),
    ]);
    return { loss: loss[0], grads, hLast, dh0 };
  }

  resetState(): void {
    this.device.queue.writeBuffer(this.buf.hState, 0, new Float32Array(this.train.batchSize * this.model.hiddenSize));
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

  /** GPU sampling; with `recordProbs` also every step's distribution [seqLen * V] (parity tests). */
  async sampleWithProbs(o: SampleOptions, recordProbs: boolean): Promise<{ tokens: Uint32Array; probs?: Float32Array }> {
    this.assertUsable();
    const { hiddenSize: H, vocabSize: V } = this.model;
    if (o.prime.length < 1) throw new Error('sampling needs at least one priming token');
    const WG = 256;
    if (H > 16 * WG) throw new Error(`GPU sampling supports hidden sizes up to ${16 * WG}`);
    const seqLen = o.prime.length + o.length;
    const L = this.layout.byName;
    const mk = (label: string, bytes: number) => this.device.createBuffer({ label, size: Math.max(16, bytes), usage: storageUsage() });
    const seq = mk('sample tokens', seqLen * 4);
    const hState = mk('sample hidden', H * 4);
    const logits = mk('sample logits', V * 4);
    const probs = mk('sample probs', recordProbs ? seqLen * V * 4 : 16);
    const seqInit = new Uint32Array(seqLen);
    seqInit.set(o.prime);
    this.device.queue.writeBuffer(seq, 0, seqInit);
    const pipeline = this.kernels.pipeline('sample', { WG, MAX_H: Math.max(WG, Math.ceil(H / WG) * WG), RECORD_PROBS: recordProbs ? 1 : 0 });
    // A few hundred steps per dispatch keeps each dispatch short (browsers reset long-running GPU work).
    const STEPS = 128;
    const arena = new UniformArena();
    const slots: number[] = [];
    for (let k = 0; k < seqLen - 1; k += STEPS) {
      const data = packFields([H, V, seqLen, o.prime.length, k, Math.min(seqLen - 1, k + STEPS), o.seed >>> 0], [o.temperature]);
      const full = new ArrayBuffer(64);
      new Uint8Array(full).set(new Uint8Array(data));
      new Uint32Array(full, 32, 5).set([L.Wxh.offset, L.Whh.offset, L.bh.offset, L.Why.offset, L.by.offset]);
      slots.push(arena.add(full));
    }
    arena.finish(this.device, 'sample uniforms');
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    for (const slot of slots) {
      pass.setBindGroup(0, this.kernels.bindGroup(pipeline, [this.buf.params, seq, hState, logits, probs, arena.binding(slot)], 'sample'));
      pass.dispatchWorkgroups(1);
    }
    pass.end();
    this.device.queue.submit([enc.finish()]);
    try {
      const [out, p] = await Promise.all([this.read(seq), recordProbs ? this.read(probs, 0, seqLen * V) : undefined]);
      return { tokens: new Uint32Array(out.buffer, o.prime.length * 4, o.length).slice(), probs: p };
    } finally {
      for (const b of [seq, hState, logits, probs, arena.buffer]) b.destroy();
    }
  }

  async exportState(): Promise<ModelState> {
    const [params, optM, optV, hidden] = await Promise.all([
      this.read(this.buf.params), this.read(this.buf.optM), this.read(this.buf.optV), this.read(this.buf.hState),
    ]);
    return { params, optM, optV, optStep: this.optStep, hidden };
  }

  importState(s: ModelState): void {
    this.assertUsable();
    const q = this.device.queue;
    const expect = this.layout.length;
    if (s.params.length !== expect || s.optM.length !== expect || s.optV.length !== expect) {
      throw new Error(`state has ${s.params.length} parameters, this model has ${expect}`);
    }
    q.writeBuffer(this.buf.params, 0, s.params);
    q.writeBuffer(this.buf.optM, 0, s.optM);
    q.writeBuffer(this.buf.optV, 0, s.optV);
    q.writeBuffer(this.buf.hState, 0, s.hidden);
    this.optStep = s.optStep;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of Object.values(this.buf)) b.destroy();
    for (const b of this.staging) b.destroy();
    this.uniforms.buffer?.destroy();
    this.optUniform?.destroy();
  }
}
