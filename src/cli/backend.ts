/** Building a backend for a command, and giving the GPU back however the command ends. */
import { totalmem } from 'node:os';
import type { Backend } from '../model/backend.ts';
import { createBackend, type BackendChoice } from '../engine/create-backend.ts';
import type { KernelTuning } from '../engine/tuning.ts';
import type { TuneMode } from '../gpu/tuner.ts';
import type { KernelChoice } from '../gpu/plan.ts';
import type { ModelConfig, TrainConfig } from '../model/config.ts';
import type { GpuContext } from '../gpu/device.ts';
import { DeviceLimitError, formatBytes, trainingBuffers } from '../gpu/memory.ts';
import type { CliIO } from './io.ts';

export interface OpenBackend {
  backend: Backend;
  gpu?: GpuContext;
  /** Bytes the model's buffers take (GPU memory on the GPU, an estimate of RAM on the CPU). */
  memoryBytes: number;
  /** On the GPU: the kernels the tuner chose, and its one-line summary. */
  kernels?: KernelTuning;
  /** Set once the device reports itself lost while we still use it. */
  lost(): string | undefined;
  close(): void;
}

/**
 * The CPU reference has no limits to check against, and an absurd size would die in a typed-array
 * allocation with a message nobody can act on, so the same sizes are checked against RAM first.
 */
function checkCpuFits(model: ModelConfig, train: TrainConfig): number {
  const plans = trainingBuffers(model, train);
  const total = plans.reduce((a, p) => a + p.bytes, 0);
  const biggest = plans.reduce((a, p) => (p.bytes > a.bytes ? p : a));
  const ram = totalmem();
  // V8 caps one typed array well below 2^33 bytes; the CPU backend also needs working copies.
  if (biggest.bytes > 2 ** 32 || total * 2 > ram) {
    throw new DeviceLimitError(
      `the model needs about ${formatBytes(total * 2)} of memory on the CPU (the ${biggest.name} alone ${formatBytes(biggest.bytes)}) ` +
      `but this machine has ${formatBytes(ram)} (hidden ${model.hiddenSize}, vocabulary ${model.vocabSize}, ` +
      `sequence ${train.seqLength}, batch ${train.batchSize}): lower one of them`,
    );
  }
  return total;
}

export async function openBackend(
  io: CliIO, choice: BackendChoice, model: ModelConfig, train: TrainConfig, seed: number, warn: (line: string) => void,
  tune: TuneMode = 'auto',
  /** A resumed run's kernel choice (see TuneOptions.fixed). */
  fixedKernels?: KernelChoice,
): Promise<OpenBackend> {
  // createBackend does not hand back a device it acquired when GpuBackend.create then throws
  // (DeviceLimitError, say), and an unreleased dawn.node device keeps Node from exiting.
  let acquired: GpuContext | undefined;
  let lostReason: string | undefined;
  let closing = false;
  const acquireGpu = async () => {
    acquired = await io.acquireGpu();
    const ctx = acquired;
    for (const line of ctx.notes) warn(line);
    void ctx.device.lost.then((info) => {
      if (!closing) lostReason = info.message || String(info.reason);
    });
    return ctx;
  };
  const release = () => {
    closing = true;
    if (acquired) io.releaseGpu(acquired);
    acquired = undefined;
  };
  let memoryBytes = 0;
  if (choice === 'cpu') memoryBytes = checkCpuFits(model, train);
  let made: Awaited<ReturnType<typeof createBackend>>;
  try {
    made = await createBackend({
      choice, model, train, seed, acquireGpu,
      tune: { mode: tune, store: io.tuningStore?.(), note: warn, fixed: fixedKernels },
      // Called just before 'auto' builds the CPU backend, which allocates at once: check first.
      warn: (line) => {
        memoryBytes = checkCpuFits(model, train);
        warn(line);
      },
    });
  } catch (e) {
    release();
    throw e;
  }
  const { backend } = made;
  if (backend.kind === 'gpu') memoryBytes = (backend as unknown as { memoryBytes: number }).memoryBytes;
  return {
    backend,
    gpu: made.gpu,
    kernels: made.kernels,
    memoryBytes,
    lost: () => lostReason,
    close() {
      try {
        backend.destroy();
      } finally {
        release();
      }
    },
  };
}
