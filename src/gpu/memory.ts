/**
 * GPU memory the model needs, computed before anything is allocated, and checked against the
 * device's limits so an impossible size fails with a sentence instead of a lost device.
 */
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import { planBuffers } from './buffers.ts';

export interface BufferPlan {
  name: string;
  bytes: number;
}

export class DeviceLimitError extends Error {}

/** Every buffer GpuBackend allocates for training (src/gpu/buffers.ts: planBuffers), by what it holds. */
export function trainingBuffers(model: ModelConfig, train: TrainConfig): BufferPlan[] {
  return planBuffers(model, train).map((b) => ({ name: b.holds, bytes: b.size }));
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 10).toFixed(1)} KiB`;
}

/** Throws DeviceLimitError naming the first buffer that cannot exist on this device. */
export function checkFits(model: ModelConfig, train: TrainConfig, limits: GPUSupportedLimits): { totalBytes: number } {
  const plans = planBuffers(model, train);
  for (const p of plans) {
    // A storage buffer is bound whole; the uniform arena only a slot at a time.
    const maxBinding = p.usage === 'storage' ? Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) : limits.maxBufferSize;
    if (p.size > maxBinding) {
      throw new DeviceLimitError(
        `the ${p.holds} buffer needs ${formatBytes(p.size)} but this adapter allows ${formatBytes(maxBinding)} per buffer ` +
        `(hidden ${model.hiddenSize}, vocabulary ${model.vocabSize}, sequence ${train.seqLength}, batch ${train.batchSize}): lower one of them`,
      );
    }
  }
  if (train.batchSize > limits.maxComputeWorkgroupsPerDimension) {
    throw new DeviceLimitError(`batch size ${train.batchSize} exceeds this adapter's ${limits.maxComputeWorkgroupsPerDimension} workgroups per dimension`);
  }
  return { totalBytes: plans.reduce((a, p) => a + p.size, 0) };
}
