/**
 * The GPU backend: the TypeScript host that allocates the buffers, binds the pipelines and encodes
 * the work of an iteration, for every cell (rnn, lstm, gru) and depth, with dropout between layers.
 *
 * One training iteration is one command buffer and one queue.submit, with no readback inside it.
 * What it holds and runs is planned as plain data, without a device (src/gpu/plan.ts: the
 * buffers, the L(2T + 6) + 2dL + 6 dispatches, the state copies); this class allocates the plan's
 * buffers, writes its uniform arena once, binds every dispatch once (shapes are fixed), and then
 * an iteration only uploads its tokens and two small uniforms and replays them. The loss travels
 * back through a small ring of staging buffers, so the CPU never waits for the GPU unless it runs
 * a whole ring ahead.
 */
import {
  checkStateShape, samplingControlsError, streamState, type Backend, type GradientResult, type HostSampler, type ModelState, type SampleOptions, type TokenChunk,
} from '../model/backend.ts';
import { hasCellState } from '../model/cells.ts';
import { fullModelConfig, type FullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { dropoutSeed } from '../model/dropout.ts';
import { initParams } from '../model/init.ts';
import { paramLayout, type ParamLayout } from '../model/layout.ts';
import { dispatchesPerIteration, UNIFORM_ALIGN, type BufferUsage, type PlanBuffer } from './buffers.ts';
import type { GpuContext } from './device.ts';
import { kernelsFor, type Kernels, type Launch } from './kernels/common.ts';
import { dropoutMaskUniform } from './kernels/dropout.ts';
import { positionsByToken } from './kernels/embedding_grad.ts';
import { KERNELS } from './kernels/index.ts';
import { optimizerSettings, optimizerUniforms, transposedDecoder, transposedWhh } from './kernels/optimizer.ts';
import { sampleFits, sampleLaunches, sampleSeqLength, sampleStateLength, sampleStateOffsets, sampleStepLaunches, type TransposedCopies } from './kernels/sample.ts';
import { checkFits } from './memory.ts';
import { planIteration, type IterationPlan, type KernelChoice, type PlannedDispatch } from './plan.ts';

export { dispatchesPerIteration };

export class DeviceLostError extends Error {}

/** One dispatch of an iteration and how long it takes alone (GpuBackend.profileIteration). */
export interface DispatchTiming {
  label: string;
  kernel: string;
  entryPoint: string;
  ms: number;
  /** Floating-point operations, for the products. */
  flops?: number;
}

interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  x: number;
  y: number;
}

// A function, not a constant: in Node the GPUBufferUsage global exists only once dawn.node is loaded.
const usageFlags = (u: BufferUsage): number => ({
  storage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  uniform: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  readback: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
})[u];

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
  private readonly plan: IterationPlan;
  private readonly buf: Record<string, GPUBuffer> = {};
  private readonly forward: Dispatch[];
  private readonly backward: Dispatch[];
  /** backward with, after each layer's last step, the dispatch that forms that layer's dh0 (gradients() only). */
  private readonly backwardWithDh0: Dispatch[];
  private readonly update: Dispatch[];
  private readonly staging: GPUBuffer[];
  private readonly pending: (Promise<number> | undefined)[] = [];
  private ringNext = 0;
  private optStep = 0;
  private lostReason: string | undefined;
  private destroyed = false;

  constructor(
    private readonly ctx: GpuContext, readonly model: ModelConfig, readonly train: TrainConfig, seed: number,
    private readonly hostSampler?: HostSampler, choice: KernelChoice = {},
  ) {
    this.memoryBytes = checkFits(model, train, ctx.limits).totalBytes;
    this.device = ctx.device;
    this.description = ctx.adapterName;
    this.kernels = kernelsFor(this.device);
    this.shape = fullModelConfig(model);
    this.layout = paramLayout(model);
    this.maskSeed = dropoutSeed(seed);
    void this.device.lost.then((info) => {
      if (!this.destroyed) this.lostReason = info.message || String(info.reason);
    });

    this.plan = planIteration(model, train, ctx.limits, choice);
    for (const p of this.plan.buffers) this.buf[p.name] = this.createBuffer(p);
    this.staging = this.plan.lossRing.map((name) => this.buf[name]);
    this.writeParams(initParams(model, seed, Float32Array) as Float32Array);

    const bound = new Map<PlannedDispatch, Dispatch>();
    const bind = (d: PlannedDispatch): Dispatch => {
      let out = bound.get(d);
      if (!out) {
        const pipeline = this.kernels.pipeline(KERNELS[d.kernel], d.constants, d.entryPoint);
        const resources = d.bindings.map((x) => ({ buffer: this.buf[x.buffer], offset: x.offset, size: x.size }));
        out = { pipeline, bindGroup: this.kernels.bindGroup(pipeline, resources, d.label), x: d.x, y: d.y };
        bound.set(d, out);
      }
      return out;
    };
    this.forward = this.plan.forward.map(bind);
    this.backward = this.plan.backward.map(bind);
    this.backwardWithDh0 = this.plan.backwardWithDh0.map(bind);
    this.update = this.plan.update.map(bind);
    this.perStep = { dispatches: this.forward.length + this.backward.length + this.update.length, readbacks: 1, submits: 1 };
    const formula = dispatchesPerIteration(model, train, ctx.limits);
    if (this.perStep.dispatches !== formula) {
      throw new Error(`internal: ${this.perStep.dispatches} dispatches planned, the formula says ${formula}`);
    }
  }

  /**
   * `hostSampler` samples past the GPU sampler's limits (the engine passes the CPU reference's);
   * `choice` is the tuner's kernel choice (src/gpu/tuner.ts), {} for the default kernels.
   */
  static async create(
    ctx: GpuContext, model: ModelConfig, train: TrainConfig, seed: number, hostSampler?: HostSampler, choice: KernelChoice = {},
  ): Promise<GpuBackend> {
    ctx.device.pushErrorScope('validation');
    ctx.device.pushErrorScope('out-of-memory');
    const backend = new GpuBackend(ctx, model, train, seed, hostSampler, choice);
    const oom = await ctx.device.popErrorScope();
    const invalid = await ctx.device.popErrorScope();
    if (oom || invalid) {
      backend.destroy();
      throw new Error(`could not set up the GPU model: ${(oom ?? invalid)!.message.split('\n')[0]}`);
    }
    return backend;
  }

  private createBuffer(p: PlanBuffer): GPUBuffer {
    const buffer = this.device.createBuffer({ label: p.name, size: p.size, usage: usageFlags(p.usage) });
    if (p.init) this.device.queue.writeBuffer(buffer, 0, p.init);
    return buffer;
  }

  /** The next submit's dropout mask: the training mask of update number `optStep`, or keep-all for evaluation. */
  private writeMaskUniform(training: boolean): void {
    const mask = this.buf.dropoutMask;
    if (!mask) return;
    this.device.queue.writeBuffer(mask, 0, dropoutMaskUniform(this.maskSeed, this.optStep, training ? this.shape.dropout : 0));
  }

  private assertUsable(): void {
    if (this.lostReason !== undefined) throw new DeviceLostError(`the GPU device was lost (${this.lostReason}); the last checkpoint is kept`);
    if (this.destroyed) throw new Error('GPU backend used after destroy()');
  }

  /** Uploads the chunk's tokens and, for dW_ih, the positions of each token grouped by token. */
  private uploadTokens(c: TokenChunk): void {
    const V = this.model.vocabSize;
    const N = this.train.seqLength * this.train.batchSize;
    if (c.inputs.length !== N || c.targets.length !== N) throw new Error(`chunk has ${c.inputs.length} tokens, expected ${N}`);
    for (let p = 0; p < N; p++) {
      if (c.inputs[p] >= V || c.targets[p] >= V) throw new Error(`token id ${Math.max(c.inputs[p], c.targets[p])} outside the vocabulary of ${V}`);
    }
    const { start, positions, runs } = positionsByToken(c.inputs, V);
    const q = this.device.queue;
    q.writeBuffer(this.buf.inputs, 0, c.inputs);
    q.writeBuffer(this.buf.targets, 0, c.targets);
    q.writeBuffer(this.buf.embStart, 0, start);
    q.writeBuffer(this.buf.embPos, 0, positions);
    q.writeBuffer(this.buf.embRuns, 0, runs);
  }

  /** One struct per update dispatch (several in the split plan, each over its chunk of the parameters). */
  private writeOptimizerUniforms(): void {
    const { whh, chunks } = this.plan.optimizer;
    chunks.forEach((n, i) => {
      const settings = optimizerSettings(this.train, n, whh, this.optStep);
      this.device.queue.writeBuffer(this.buf.optimizerUniforms, i * UNIFORM_ALIGN, optimizerUniforms(settings, this.ctx.limits.maxComputeWorkgroupsPerDimension));
    });
  }

  /**
   * The parameters, and the transposed copies cell_forward (W_hh) and the logits product (the
   * decoder) read; the optimizer keeps them after.
   */
  private writeParams(params: Float32Array): void {
    const { rows, cols, layers, decoder } = this.plan.optimizer.whh;
    const q = this.device.queue;
    q.writeBuffer(this.buf.params, 0, params);
    // The split plan keeps none (layers 0, no decoder).
    if (layers > 0) q.writeBuffer(this.buf.whhT, 0, transposedWhh(params, this.layout.layers.map((w) => w.weightHh.offset), rows, cols));
    if (decoder) q.writeBuffer(this.buf.whhT, 4 * decoder.off, transposedDecoder(params, decoder));
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
   * Encodes one chunk: the plan's state copies into step 0 of hAll / cAll from `state` (standing
   * in for hState and cState), the dispatches, and the last step back out if `carry`.
   */
  private encodeChunk(state: { h: GPUBuffer; c?: GPUBuffer }, list: Dispatch[], carry: boolean): GPUCommandEncoder {
    const buffer = (name: string) => (name === 'hState' ? state.h : name === 'cState' ? state.c! : this.buf[name]);
    const enc = this.device.createCommandEncoder();
    const copy = (c: IterationPlan['stateIn'][number]) => enc.copyBufferToBuffer(buffer(c.from), c.fromOffset, buffer(c.to), c.toOffset, c.size);
    this.plan.stateIn.forEach(copy);
    this.encode(enc, list);
    if (carry) this.plan.stateOut.forEach(copy);
    return enc;
  }

  /** After the forward pass: the mean loss into a staging buffer of the ring. */
  private copyLoss(enc: GPUCommandEncoder, staging: GPUBuffer): void {
    const { buffer, offset, size } = this.plan.loss;
    enc.copyBufferToBuffer(this.buf[buffer], offset, staging, 0, size);
  }

  /** Takes the next staging buffer of the ring, waiting only if it still holds an unread loss. */
  private async nextStaging(): Promise<GPUBuffer> {
    const slot = this.ringNext;
    this.ringNext = (slot + 1) % this.staging.length;
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
    const enc = this.encodeChunk({ h: this.buf.hState, c: this.buf.cState }, [...this.forward, ...this.backward, ...this.update], true);
    this.copyLoss(enc, staging);
    this.device.queue.submit([enc.finish()]);
    return { loss: this.readLoss(staging, slot) };
  }

  async evaluate(chunks: Iterable<TokenChunk>): Promise<number> {
    this.assertUsable();
    const mk = (label: string, like: GPUBuffer) => this.device.createBuffer({ label, size: like.size, usage: usageFlags('storage') });
    const state = { h: mk('eval hidden', this.buf.hState), c: this.buf.cState && mk('eval cells', this.buf.cState) };
    const losses: Promise<number>[] = [];
    try {
      for (const c of chunks) {
        const slot = this.ringNext;
        const staging = await this.nextStaging();
        this.uploadTokens(c);
        this.writeMaskUniform(false);
        const enc = this.encodeChunk(state, this.forward, true);
        this.copyLoss(enc, staging);
        this.device.queue.submit([enc.finish()]);
        losses.push(this.readLoss(staging, slot));
      }
      const all = await Promise.all(losses);
      return all.length ? all.reduce((a, b) => a + b, 0) / all.length : NaN;
    } finally {
      state.h.destroy();
      state.c?.destroy();
    }
  }

  async gradients(c: TokenChunk): Promise<GradientResult> {
    this.assertUsable();
    this.uploadTokens(c);
    this.writeMaskUniform(true);
    const enc = this.encodeChunk({ h: this.buf.hState, c: this.buf.cState }, [...this.forward, ...this.backwardWithDh0], false);
    this.device.queue.submit([enc.finish()]);
    const BH = this.train.batchSize * this.shape.hiddenSize;
    const [loss, grads, hAll, dState, cAll] = await Promise.all([
      this.read(this.buf.lossOut, 0, 1), this.read(this.buf.grads), this.read(this.buf.hAll), this.read(this.buf.dState),
      hasCellState(this.shape.cell) ? this.read(this.buf.cAll) : undefined,
    ]);
    // Per layer [B, H] blocks, at the plan's word offsets, into [L, B, H].
    const gather = (a: Float32Array, offsets: number[]) => {
      const out = new Float32Array(offsets.length * BH);
      offsets.forEach((off, l) => out.set(a.subarray(off, off + BH), l * BH));
      return out;
    };
    const { last, dh0, dc0 } = this.plan.readout;
    const result: GradientResult = { loss: loss[0], grads, hLast: gather(hAll, last), dh0: gather(dState, dh0) };
    if (cAll) {
      result.cLast = gather(cAll, last);
      result.dc0 = gather(dState, dc0);
    }
    return result;
  }

  /**
   * Where an iteration's time goes: every dispatch of one training iteration timed alone, `repeats`
   * copies of it in one submit, fastest of `rounds`, less an empty submit's cost. On the weights
   * and chunk the last trainStep left (call one first). Costs ~0.1 ms of submit overhead per
   * dispatch that the pipelined iteration does not pay, so the parts can add up to more than it.
   */
  async profileIteration(repeats = 4, rounds = 3): Promise<DispatchTiming[]> {
    this.assertUsable();
    const planned = [...this.plan.forward, ...this.plan.backward, ...this.plan.update];
    const bound = [...this.forward, ...this.backward, ...this.update];
    const time = async (list: Dispatch[]) => {
      let best = Infinity;
      for (let r = 0; r < rounds; r++) {
        const enc = this.device.createCommandEncoder();
        if (list.length) this.encode(enc, list);
        const t0 = performance.now();
        this.device.queue.submit([enc.finish()]);
        await this.device.queue.onSubmittedWorkDone();
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    const empty = await time([]);
    const out: DispatchTiming[] = [];
    for (let i = 0; i < planned.length; i++) {
      const { label, kernel, entryPoint, uniforms } = planned[i];
      const ms = Math.max(0, (await time(new Array<Dispatch>(repeats).fill(bound[i])) - empty) / repeats);
      // A product's uniforms start with M, N, K (src/gpu/kernels/matmul.ts).
      const mnk = kernel === 'matmul' && uniforms ? new Uint32Array(uniforms, 0, 3) : undefined;
      out.push({ label, kernel, entryPoint, ms, ...(mnk && { flops: 2 * mnk[0] * mnk[1] * mnk[2] }) });
    }
    return out;
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
      return new Float32Array(staging.getMappedRange().slice(0));
    } catch (e) {
      this.assertUsable();
      throw e;
    } finally {
      // Also when mapping fails (a lost device): the staging buffer must not outlive the read.
      staging.destroy();
    }
  }

  async sample(o: SampleOptions): Promise<Uint32Array> {
    return (await this.sampleStreams(o, 1, false)).tokens[0];
  }

  async sampleMany(o: SampleOptions, count: number): Promise<Uint32Array[]> {
    return (await this.sampleStreams(o, count, false)).tokens;
  }

  /** Stream 0 with every step's distribution (parity tests): sampleStreams for one stream. */
  async sampleWithProbs(o: SampleOptions, recordProbs: boolean): Promise<{ tokens: Uint32Array; probs?: Float32Array }> {
    const r = await this.sampleStreams(o, 1, recordProbs);
    return { tokens: r.tokens[0], probs: r.probs };
  }

  /**
   * GPU sampling (shaders/sample.wgsl, sample_decode.wgsl, sample_draw.wgsl; every cell and depth):
   * `count` streams side by side in the same dispatches, all from stream 0 of the carried state;
   * with `recordProbs` also every step's distribution [count * seqLen * V] (parity tests). Per
   * token, one dispatch per layer, the decoder's and the draw's, STEPS_PER_SUBMIT tokens to a
   * submit, one readback at the end. Past the kernels' limits (a penalty's bitmap larger than the
   * adapter's workgroup memory, more streams than a dispatch holds) it samples from the current
   * parameters with the host sampler it was given (the engine's is the CPU reference): the same
   * distributions up to float rounding, just slower.
   */
  async sampleStreams(o: SampleOptions, count: number, recordProbs: boolean): Promise<{ tokens: Uint32Array[]; probs?: Float32Array }> {
    this.assertUsable();
    const shape = this.shape;
    const { hiddenSize: H, vocabSize: V, layers: L, cell } = shape;
    if (o.prime.length < 1) throw new Error('sampling needs at least one priming token');
    if (!Number.isSafeInteger(count) || count < 1) throw new Error(`the number of samples must be a positive integer, not ${count}`);
    const bad = samplingControlsError(o.controls);
    if (bad) throw new Error(bad);
    if (!sampleFits(shape, this.ctx.limits, o.controls, count)) {
      if (recordProbs || !this.hostSampler) {
        throw new Error(`GPU sampling of ${count} streams does not fit this adapter's limits${recordProbs ? '' : ', and no host sampler was given'}`);
      }
      const [params, hidden, cellState] = await Promise.all([
        this.read(this.buf.params), this.read(this.buf.hState), hasCellState(cell) ? this.read(this.buf.cState) : undefined,
      ]);
      const start = streamState(this.model, this.train.batchSize, { hidden, cellState });
      return { tokens: Array.from({ length: count }, (_, stream) => this.hostSampler!(this.model, params, { ...o, start, stream })) };
    }
    const seqLen = o.prime.length + o.length;
    const mk = (label: string, bytes: number) => this.device.createBuffer({ label, size: Math.max(16, bytes), usage: usageFlags('storage') });
    const seq = mk('sample tokens', sampleSeqLength(seqLen, count) * 4);
    const state = mk('sample state', sampleStateLength(shape, count) * 4);
    const logits = mk('sample logits', count * V * 4);
    const probs = mk('sample probs', recordProbs ? count * seqLen * V * 4 : 16);
    // The prime, then zeros: the generated tokens and every stream's step counter.
    const seqInit = new Uint32Array(sampleSeqLength(seqLen, count));
    for (let n = 0; n < count; n++) seqInit.set(o.prime, n * seqLen);
    this.device.queue.writeBuffer(seq, 0, seqInit);
    const launches = sampleLaunches(shape, this.layout, {
      primeLength: o.prime.length, seqLen, seed: o.seed, temperature: o.temperature, recordProbs, streams: count, controls: o.controls,
    }, { params: this.buf.params, seq, hState: state, logits, probs, transposed: this.transposedCopies() });
    const { dispatches, arena } = this.bindOnce(launches, 'sample');
    let enc = this.device.createCommandEncoder();
    // Every stream starts from stream 0's carried state.
    const BH = this.train.batchSize * H;
    for (let n = 0; n < count; n++) {
      for (let l = 0; l < L; l++) {
        const at = sampleStateOffsets(shape, count, l, n);
        enc.copyBufferToBuffer(this.buf.hState, l * BH * 4, state, at.h * 4, H * 4);
        if (hasCellState(cell)) enc.copyBufferToBuffer(this.buf.cState, l * BH * 4, state, at.c * 4, H * 4);
      }
    }
    // Many tokens to a submit: the GPU runs one batch while the next is encoded.
    const STEPS_PER_SUBMIT = 64;
    for (let k0 = 0; k0 < seqLen - 1; k0 += STEPS_PER_SUBMIT) {
      const list: Dispatch[] = [];
      for (let k = k0; k < Math.min(seqLen - 1, k0 + STEPS_PER_SUBMIT); k++) {
        for (const i of sampleStepLaunches(dispatches.length, L, o.prime.length, k)) list.push(dispatches[i]);
      }
      this.encode(enc, list);
      this.device.queue.submit([enc.finish()]);
      enc = this.device.createCommandEncoder();
    }
    try {
      const [out, p] = await Promise.all([this.read(seq), recordProbs ? this.read(probs, 0, count * seqLen * V) : undefined]);
      const tokens = new Uint32Array(out.buffer);
      return {
        tokens: Array.from({ length: count }, (_, n) => tokens.slice(n * seqLen + o.prime.length, (n + 1) * seqLen)),
        probs: p,
      };
    } finally {
      for (const b of [seq, state, logits, probs, arena]) b.destroy();
    }
  }

  /** The optimizer's W_hh^T and decoder copies, which the sampler reads; none in the split plan. */
  private transposedCopies(): TransposedCopies<GPUBuffer> | undefined {
    const { rows, cols, layers, decoder } = this.plan.optimizer.whh;
    if (layers === 0 || !decoder) return undefined;
    return { buffer: this.buf.whhT, whhT: Array.from({ length: layers }, (_, l) => l * rows * cols), decoder };
  }

  /** Binds launches made for one submit, their uniform structs in one arena buffer (the caller destroys it). */
  private bindOnce(launches: Launch<GPUBuffer>[], label: string): { dispatches: Dispatch[]; arena: GPUBuffer } {
    const structs = launches.flatMap((l) => l.bindings.flatMap((b) => ('uniforms' in b ? [b.uniforms] : [])));
    const arena = this.device.createBuffer({ label: `${label} uniforms`, size: Math.max(1, structs.length) * UNIFORM_ALIGN, usage: usageFlags('uniform') });
    let slot = 0;
    const dispatches = launches.map((l) => {
      const pipeline = this.kernels.pipeline(l.kernel, l.constants, l.entryPoint);
      const resources = l.bindings.map((b): GPUBufferBinding => {
        if (!('uniforms' in b)) return { buffer: b.buffer };
        this.device.queue.writeBuffer(arena, slot * UNIFORM_ALIGN, b.uniforms);
        return { buffer: arena, offset: UNIFORM_ALIGN * slot++, size: b.uniforms.byteLength };
      });
      return { pipeline, bindGroup: this.kernels.bindGroup(pipeline, resources, label), x: l.x, y: l.y };
    });
    return { dispatches, arena };
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
  }
}
