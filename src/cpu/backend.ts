/** The CPU reference as a Backend: plain TypeScript, float32 storage, one thread. */
import type { Backend, GradientResult, ModelState, SampleOptions, TokenChunk } from '../engine/backend.ts';
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import { initParams } from '../model/init.ts';
import { chunkLoss, forwardBackward, type Chunk } from './rnn.ts';
import { newOptimizerState, optimizerUpdate, type OptimizerState } from './optim.ts';
import { sampleTokens } from './sample.ts';

export class CpuBackend implements Backend {
  readonly kind = 'cpu';
  readonly description = 'CPU reference (TypeScript, float32, one thread)';
  readonly perStep = { dispatches: 0, readbacks: 0, submits: 0 };
  private params: Float32Array;
  private opt: OptimizerState;
  private hidden: Float32Array;

  constructor(readonly model: ModelConfig, readonly train: TrainConfig, seed: number) {
    this.params = initParams(model, seed, Float32Array) as Float32Array;
    this.opt = newOptimizerState(this.params.length);
    this.hidden = new Float32Array(train.batchSize * model.hiddenSize);
  }

  private chunk(c: TokenChunk): Chunk {
    return { ...c, seqLength: this.train.seqLength, batchSize: this.train.batchSize };
  }

  async trainStep(c: TokenChunk): Promise<{ loss: Promise<number> }> {
    const r = forwardBackward(this.model, this.params, this.hidden, this.chunk(c), Float32Array);
    optimizerUpdate(this.train.optimizer, this.params, r.grads, this.opt, this.train.learningRate, this.train.clip);
    this.hidden = r.hLast as Float32Array;
    return { loss: Promise.resolve(r.loss) };
  }

  async evaluate(chunks: Iterable<TokenChunk>): Promise<number> {
    let h: Float32Array = new Float32Array(this.hidden.length);
    let sum = 0;
    let n = 0;
    for (const c of chunks) {
      const r = chunkLoss(this.model, this.params, h, this.chunk(c), Float32Array);
      h = r.hLast as Float32Array;
      sum += r.loss;
      n++;
    }
    return n ? sum / n : NaN;
  }

  async gradients(c: TokenChunk): Promise<GradientResult> {
    const r = forwardBackward(this.model, this.params, this.hidden, this.chunk(c), Float32Array);
    return { loss: r.loss, grads: r.grads as Float32Array, hLast: r.hLast as Float32Array, dh0: r.dh0 as Float32Array };
  }

  resetState(): void {
    this.hidden.fill(0);
  }

  async sample(o: SampleOptions): Promise<Uint32Array> {
    return sampleTokens(this.model, this.params, o);
  }

  async exportState(): Promise<ModelState> {
    return {
      params: this.params.slice(), optM: (this.opt.m as Float32Array).slice(), optV: (this.opt.v as Float32Array).slice(),
      optStep: this.opt.step, hidden: this.hidden.slice(),
    };
  }

  importState(s: ModelState): void {
    this.params = s.params.slice();
    this.opt = { m: s.optM.slice(), v: s.optV.slice(), step: s.optStep };
    this.hidden = s.hidden.slice();
  }

  destroy(): void {}
}
