/**
 * GPU memory the model needs, computed before anything is allocated, and checked against the
 * device's limits so an impossible size fails with a sentence instead of a lost device.
 */
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import { bindingLimit, perLayerWords, planBuffers, splitPlan, splitWindows, WINDOWED_BUFFERS } from './buffers.ts';

export interface BufferPlan {
  name: string;
  bytes: number;
}

export class DeviceLimitError extends Error {}

/**
 * Every buffer GpuBackend allocates for training (src/gpu/buffers.ts: planBuffers), by what it
 * holds; with the device's limits, as the split plan has them where the parameters exceed one binding.
 */
export function trainingBuffers(model: ModelConfig, train: TrainConfig, limits?: GPUSupportedLimits): BufferPlan[] {
  return planBuffers(model, train, limits).map((b) => ({ name: b.holds, bytes: b.size }));
}

/** Whether the parameters are bound in windows on this device (the split plan, src/gpu/plan.ts). */
export function bindsInWindows(model: ModelConfig, train: TrainConfig, limits: GPUSupportedLimits): boolean {
  return splitPlan(model, train, limits) !== undefined;
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 10).toFixed(1)} KiB`;
}

/** Throws DeviceLimitError naming the first buffer that cannot exist on this device. */
export function checkFits(model: ModelConfig, train: TrainConfig, limits: GPUSupportedLimits): { totalBytes: number } {
  const plans = planBuffers(model, train, limits);
  const split = splitPlan(model, train, limits);
  const perLayer = perLayerWords(model, train);
  const sizes = `(hidden ${model.hiddenSize}, vocabulary ${model.vocabSize}, sequence ${train.seqLength}, batch ${train.batchSize}): lower one of them`;
  for (const p of plans) {
    // A storage buffer is bound whole, but in the split plan the parameters' (windows of tensors,
    // checked below) and the per-layer ones (a layer at most); the uniform arena a slot at a time.
    const windowed = split && WINDOWED_BUFFERS.includes(p.name);
    const maxBinding = p.usage === 'storage' && !windowed ? bindingLimit(limits) : limits.maxBufferSize;
    const layerWords = split ? perLayer[p.name] : undefined;
    if (p.size > limits.maxBufferSize || (layerWords === undefined && p.size > maxBinding)) {
      throw new DeviceLimitError(`the ${p.holds} buffer needs ${formatBytes(p.size)} but this adapter allows ${formatBytes(Math.min(maxBinding, limits.maxBufferSize))} per buffer ${sizes}`);
    }
    // A layer's window starts up to alignWords - 1 words before it (none when layers are aligned).
    const slack = layerWords === undefined || layerWords % split!.alignWords === 0 ? 0 : split!.alignWords - 1;
    if (layerWords !== undefined && p.size > maxBinding && layerWords + slack > split!.bindWords) {
      throw new DeviceLimitError(`one layer of the ${p.holds} buffer needs ${formatBytes(4 * layerWords)} but this adapter allows ${formatBytes(maxBinding)} per binding ${sizes}`);
    }
  }
  for (const w of split ? splitWindows(model, split) : []) {
    if (w.words > split!.bindWords) {
      throw new DeviceLimitError(`${w.holds} needs ${formatBytes(4 * w.words)} but this adapter allows ${formatBytes(4 * split!.bindWords)} per binding ${sizes}`);
    }
  }
  if (train.batchSize > limits.maxComputeWorkgroupsPerDimension) {
    throw new DeviceLimitError(`batch size ${train.batchSize} exceeds this adapter's ${limits.maxComputeWorkgroupsPerDimension} workgroups per dimension`);
  }
  return { totalBytes: plans.reduce((a, p) => a + p.size, 0) };
}
