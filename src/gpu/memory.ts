/**
 * GPU memory the model needs, computed before anything is allocated, and checked against the
 * device's limits so an impossible size fails with a sentence instead of a lost device.
 */
import { fullModelConfig, type ModelConfig, type TrainConfig } from '../model/config.ts';
import { paramLayout } from '../model/layout.ts';
import { GATES, hasCellState, SAVED } from '../model/cells.ts';

export interface BufferPlan {
  name: string;
  bytes: number;
}

export class DeviceLimitError extends Error {}

/** Every buffer GpuBackend allocates for training (src/gpu/backend.ts), by what it holds. */
export function trainingBuffers(model: ModelConfig, train: TrainConfig): BufferPlan[] {
  const { cell, hiddenSize: H, vocabSize: V, layers: L, dropout } = fullModelConfig(model);
  const { seqLength: T, batchSize: B } = train;
  const G = GATES[cell], S = SAVED[cell];
  const N = T * B;
  const P = paramLayout(model).length;
  const f = 4;
  const plans: BufferPlan[] = [
    { name: 'parameters', bytes: P * f },
    { name: 'gradients', bytes: P * f },
    { name: 'optimizer moment 1', bytes: P * f },
    { name: 'optimizer moment 2', bytes: P * f },
    { name: 'carried hidden state LxBxH', bytes: L * B * H * f },
    { name: 'hidden states Lx(T+1)xBxH', bytes: L * (T + 1) * B * H * f },
    { name: 'input projections TxBx(G*H)', bytes: N * G * H * f },
    { name: 'input-projection gradient TxBx(G*H)', bytes: N * G * H * f },
    { name: 'recurrent-projection gradient TxBx(G*H)', bytes: N * G * H * f },
    { name: 'gradient from above TxBxH', bytes: N * H * f },
    { name: 'backward state Lx3xBxH', bytes: L * 3 * B * H * f },
    { name: 'W_hh transposed, Lx H x(G*H)', bytes: (L * G * H * H + 16) * f + L * 4 },
    { name: 'logits TxBxV', bytes: N * V * f },
    { name: 'tokens', bytes: (4 * N + V + 1) * 4 },
  ];
  if (hasCellState(cell)) {
    plans.push({ name: 'carried memory cells LxBxH', bytes: L * B * H * f });
    plans.push({ name: 'memory cells Lx(T+1)xBxH', bytes: L * (T + 1) * B * H * f });
  }
  if (S > 0) plans.push({ name: `saved gates LxTxBx${S}H`, bytes: L * N * S * H * f });
  if (dropout > 0) {
    plans.push({ name: 'dropped layer outputs LxTxBxH', bytes: L * N * H * f });
    plans.push({ name: 'gradient before dropout TxBxH', bytes: N * H * f });
  }
  return plans;
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
