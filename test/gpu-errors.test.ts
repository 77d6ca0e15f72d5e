/** What the GPU backend does with sizes it cannot hold and with a lost device. */
import { describe, expect, it } from 'vitest';
import { gpu, noGpu } from './gpu.ts';
import { GpuBackend, DeviceLostError } from '../src/gpu/backend.ts';
import { DeviceLimitError, checkFits } from '../src/gpu/memory.ts';
import { acquireNodeGpu, releaseNodeGpu } from '../src/node/webgpu.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';

const train: TrainConfig = { seqLength: 4, batchSize: 2, optimizer: 'adam', learningRate: 0.01, clip: 5 };

describe.skipIf(noGpu)('GPU backend limits and failures', () => {
  it('refuses a model larger than the adapter allows, before allocating, in one sentence', async () => {
    // 1.6 G parameters, 6.4 GB each of parameters, gradients and moments: past any maxBufferSize
    // (what fits one buffer but not one binding trains: the split plan, test/plan.test.ts).
    const huge: ModelConfig = { cell: 'rnn', vocabSize: 100, hiddenSize: 40_000 };
    const device = gpu!.device;
    const createBuffer = device.createBuffer;
    let buffers = 0;
    device.createBuffer = (d: GPUBufferDescriptor) => (buffers++, createBuffer.call(device, d));
    let err: Error | undefined;
    try {
      err = await GpuBackend.create(gpu!, huge, train, 1).then(() => undefined, (e: Error) => e);
      expect(buffers).toBe(0);
      // The count sees GpuBackend's buffers: a model that fits allocates some.
      (await GpuBackend.create(gpu!, { ...huge, hiddenSize: 8 }, train, 1)).destroy();
      expect(buffers).toBeGreaterThan(0);
    } finally {
      device.createBuffer = createBuffer;
    }
    expect(err).toBeInstanceOf(DeviceLimitError);
    expect(err!.message).toMatch(/parameters buffer needs .* but this adapter allows .* per buffer/);
    expect(err!.message).not.toContain('\n');
  });

  it('estimates the memory of an H=512, T=64, B=32 model: at least its big buffers, under 28 MiB', () => {
    const model: ModelConfig = { cell: 'rnn', vocabSize: 87, hiddenSize: 512 };
    const { totalBytes } = checkFits(model, { ...train, seqLength: 64, batchSize: 32 }, gpu!.limits);
    // 4 copies of ~310k parameters; hidden states, input projections and their gradient, the
    // recurrent-projection gradient and the gradient from above: 5 buffers of ~64*32*512 floats;
    // logits 64*32*87.
    expect(totalBytes).toBeGreaterThan(4 * 4 * 310_000 + 5 * 4 * 64 * 32 * 512);
    expect(totalBytes).toBeLessThan(28 * 2 ** 20);
  });

  it('a lost device stops training with a DeviceLostError', async () => {
    const ctx = await acquireNodeGpu(); // its own device, so losing it harms no other test
    const model: ModelConfig = { cell: 'rnn', vocabSize: 5, hiddenSize: 8 };
    const g = await GpuBackend.create(ctx, model, train, 1);
    const chunk = { inputs: new Uint32Array(8), targets: new Uint32Array(8).fill(1) };
    expect(Number.isFinite(await (await g.trainStep(chunk)).loss)).toBe(true);
    ctx.device.destroy();
    await ctx.device.lost;
    const err = await g.trainStep(chunk).then((s) => s.loss).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(DeviceLostError);
    expect(err!.message).toMatch(/GPU device was lost/);
    g.destroy();
    releaseNodeGpu(ctx);
  });
});
