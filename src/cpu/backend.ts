/** The CPU reference as a Backend: plain TypeScript, float32 storage, one thread, every cell and depth. */
import {
  checkStateShape, streamState, type Backend, type GradientResult, type ModelState, type SampleOptions, type TokenChunk,
} from '../model/backend.ts';
import { hasCellState } from '../model/cells.ts';
import { fullModelConfig, type FullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { dropoutMask, dropoutSeed } from '../model/dropout.ts';
import { initParams } from '../model/init.ts';
import { learningRateAt } from '../model/optimizer.ts';
import type { Chunk } from './rnn.ts';
import { stackedForwardBackward, stackedLoss, zeroState, type StackedState } from './stacked.ts';
import { newOptimizerState, optimizerUpdate, type OptimizerState } from './optim.ts';
import { sampleTokens } from './sample.ts';

/** A float32 copy: bit for bit from a Float32Array, rounded to nearest from anything wider. */
const f32 = (a: ArrayLike<number>): Float32Array => (a instanceof Float32Array ? a.slice() : Float32Array.from(a));

export class CpuBackend implements Backend {
  readonly kind = 'cpu';
  readonly description = 'CPU reference (TypeScript, float32, one thread)';
  readonly perStep = { dispatches: 0, readbacks: 0, submits: 0 };
  private readonly shape: FullModelConfig;
  private readonly maskSeed: number;
  private params: Float32Array;
  private opt: OptimizerState;
  private state: StackedState;

  constructor(readonly model: ModelConfig, readonly train: TrainConfig, seed: number) {
    this.shape = fullModelConfig(model);
    this.maskSeed = dropoutSeed(seed);
    this.params = initParams(model, seed, Float32Array) as Float32Array;
    this.opt = newOptimizerState(this.params.length);
    this.state = zeroState(this.shape, train.batchSize, Float32Array);
  }

  private chunk(c: TokenChunk): Chunk {
    return { ...c, seqLength: this.train.seqLength, batchSize: this.train.batchSize };
  }

  /** The mask of the next update: iteration = updates done so far, so a resumed run draws the same masks. */
  private mask(): Float32Array | null {
    if (this.shape.dropout === 0) return null;
    return dropoutMask(this.shape, this.train.seqLength, this.train.batchSize, this.maskSeed, this.opt.step, Float32Array) as Float32Array;
  }

  private run(c: TokenChunk) {
    return stackedForwardBackward(this.shape, this.params, this.state, this.chunk(c), this.mask(), Float32Array);
  }

  async trainStep(c: TokenChunk): Promise<{ loss: Promise<number> }> {
    const r = this.run(c);
    const lr = learningRateAt(this.train.learningRate, this.train.lrSchedule, this.opt.step + 1);
    optimizerUpdate(this.train, this.params, r.grads, this.opt, lr, this.train.clip);
    this.state = { h: r.hLast, c: r.cLast };
    return { loss: Promise.resolve(r.loss) };
  }

  async evaluate(chunks: Iterable<TokenChunk>): Promise<number> {
    let state = zeroState(this.shape, this.train.batchSize, Float32Array);
    let sum = 0;
    let n = 0;
    for (const c of chunks) {
      const r = stackedLoss(this.shape, this.params, state, this.chunk(c), null, Float32Array);
      state = { h: r.hLast, c: r.cLast };
      sum += r.loss;
      n++;
    }
    return n ? sum / n : NaN;
  }

  async gradients(c: TokenChunk): Promise<GradientResult> {
    const r = this.run(c);
    const f = (a: unknown) => a as Float32Array;
    return {
      loss: r.loss, grads: f(r.grads), hLast: f(r.hLast), dh0: f(r.dh0),
      ...(r.cLast ? { cLast: f(r.cLast), dc0: f(r.dc0) } : {}),
    };
  }

  resetState(streams?: readonly number[]): void {
    if (!streams) {
      this.state = zeroState(this.shape, this.train.batchSize, Float32Array);
      return;
    }
    const { layers: L, hiddenSize: H } = this.shape;
    const B = this.train.batchSize;
    for (const a of [this.state.h, this.state.c]) {
      if (!a) continue;
      for (let l = 0; l < L; l++) for (const b of streams) a.fill(0, (l * B + b) * H, (l * B + b + 1) * H);
    }
  }

  async sample(o: SampleOptions): Promise<Uint32Array> {
    return (await this.sampleMany(o, 1))[0];
  }

  /** One stream after the other (the CPU has nothing to gain from interleaving them). */
  async sampleMany(o: SampleOptions, count: number): Promise<Uint32Array[]> {
    const start = streamState(this.model, this.train.batchSize, { hidden: this.state.h as Float32Array, cellState: (this.state.c ?? undefined) as Float32Array | undefined });
    return Array.from({ length: count }, (_, stream) => sampleTokens(this.model, this.params, { ...o, start, stream }));
  }

  async exportState(): Promise<ModelState> {
    return {
      params: f32(this.params), optM: f32(this.opt.m), optV: f32(this.opt.v),
      optStep: this.opt.step, hidden: f32(this.state.h),
      ...(this.state.c ? { cellState: f32(this.state.c) } : {}),
    };
  }

  /**
   * Copies every array as float32, whatever typed array it arrives in: the backend carries exactly
   * what it would export and a checkpoint would store (safetensors F32), as the GPU's buffers do,
   * so a resumed run continues from the same bits as the run that saved it.
   */
  importState(s: ModelState): void {
    checkStateShape(this.model, this.train, this.params.length, s);
    this.params = f32(s.params);
    this.opt = { m: f32(s.optM), v: f32(s.optV), step: s.optStep };
    this.state = { h: f32(s.hidden), c: hasCellState(this.shape.cell) ? f32(s.cellState!) : null };
  }

  destroy(): void {}
}
