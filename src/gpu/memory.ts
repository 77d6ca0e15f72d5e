/**
 * GPU memory the model needs, computed before anything is allocated, and checked against the
 * device's limits so an impossible size fails with a sentence instead of a lost device.
 */
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';

export interface BufferPlan {
  name: string;
  bytes: number;
}

export class DeviceLimitError extends Error {}

export function trainingBuffers(model: ModelConfig, train: TrainConfig): BufferPlan[] {
  const { hiddenSize: H, vocabSize: V } = model;
  const { seqLength: T, batchSize: B } = train;
  const P = paramLayout(model).length;
  const f = 4;
  return [
    { name: 'parameters', bytes: P * f },
    { name: 'gradients', bytes: P * f },
    { name: 'optimizer moment 1', bytes: P * f },
    { name: 'optimizer moment 2', bytes: P * f },
    { name: 'hidden states (T+1)xBxH', bytes: (T + 1) * B * H * f },
    { name: 'output-layer gradient TxBxH', bytes: T * B * H * f },
    { name: 'recurrent gradient TxBxH', bytes: T * B * H * f },
    { name: 'logits TxBxV', bytes: T * B * V * f },
    { name: 'tokens', bytes: (4 * T * B + V + 1) * 4 },
  ];
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 10).toFixed(1)} KiB`;
}

/** Throws DeviceLimitError naming the first buffer that cannot exist on this device. */
export function checkFits(model: ModelConfig, train: TrainConfig, limits: GPUSupportedLimits): { totalBytes: number } {
  const plans = trainingBuffers(model, train);
  const maxBinding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  for (const p of plans) {
    if (p.bytes > maxBinding) {
      throw new DeviceLimitError(
        `the ${p.name} buffer needs ${formatBytes(p.bytes)} but this adapter allows ${formatBytes(maxBinding)} per buffer ` +
        `(hidden ${model.hiddenSize}, vocabulary ${model.vocabSize}, sequence ${train.seqLength}, batch ${train.batchSize}): lower one of them`,
      );
    }
  }
  if (train.batchSize > limits.maxComputeWorkgroupsPerDimension) {
    throw new DeviceLimitError(`batch size ${train.batchSize} exceeds this adapter's ${limits.maxComputeWorkgroupsPerDimension} workgroups per dimension`);
  }
  return { totalBytes: plans.reduce((a, p) => a + p.bytes, 0) };
}
