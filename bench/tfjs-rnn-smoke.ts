/**
 * Smoke run of the TensorFlow.js baseline (bench/tfjs-rnn.ts):
 *   npx tsx bench/tfjs-rnn-smoke.ts        (env XDG_RUNTIME_DIR=/tmp silences Mesa)
 * 1. H=128, T=25, B=8, V=87 on webgpu and cpu, 2 warmup + 3 iterations, one line each.
 * 2. H=512, T=64, B=32, V=87 on webgpu and cpu, 1 warmup + 3 iterations:
 *    median ms/iter and chars/s (= T*B per second).
 * Exits non-zero if a run's tensor count grows across iterations or its loss
 * is not finite.
 */
import { create, globals } from 'webgpu';
import { runTfjsTraining, median, type TfjsRunOptions, type TfjsRunResult } from './tfjs-rnn.ts';

Object.assign(globalThis, globals);
// Keep the GPU object alive as long as its device: dawn.node segfaults on the
// next device call once the object returned by create() is garbage-collected.
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('no WebGPU adapter (Mesa lavapipe Vulkan driver missing?)');
// The device our own engine would use; tfjs runs on this very device.
const device = await adapter.requestDevice({
  requiredLimits: {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
  },
});

let failed = false;
function check(label: string, r: TfjsRunResult): void {
  const counts = r.numTensors ?? [];
  if (counts.some((n) => n !== counts[0])) {
    console.error(`${label}: tensor count not flat: ${counts.join(',')}`);
    failed = true;
  }
  if (!Number.isFinite(r.finalLoss)) {
    console.error(`${label}: loss ${r.finalLoss}`);
    failed = true;
  }
}

async function run(label: string, o: TfjsRunOptions): Promise<TfjsRunResult> {
  const r = await runTfjsTraining(o);
  check(label, r);
  return r;
}

const small = { vocabSize: 87, hiddenSize: 128, seqLength: 25, batchSize: 8, warmup: 2, iterations: 3 };
for (const backend of ['webgpu', 'cpu'] as const) {
  const r = await run(backend, { ...small, backend, device });
  console.log(
    `tfjs ${r.backend.padEnd(6)} H=128 T=25 B=8: ms/iter ${r.msPerIteration.map((m) => m.toFixed(1)).join(' ')}` +
      ` | median ${median(r.msPerIteration).toFixed(1)} | loss ${r.finalLoss.toFixed(4)}` +
      ` | tensors ${r.numTensors?.join(',')}${r.adapter ? ` | ${r.adapter}` : ''}`,
  );
}

const big = { vocabSize: 87, hiddenSize: 512, seqLength: 64, batchSize: 32, warmup: 1, iterations: 3 };
const configs: [string, TfjsRunOptions][] = [
  // At H=512, B=32 tfjs already picks its packed matmul for the recurrence, so
  // tfjsFlags: { WEBGPU_MATMUL_PROGRAM_TYPE: 3 } changes nothing here (it does at H<=256).
  ['webgpu', { ...big, backend: 'webgpu', device }],
  ['cpu', { ...big, backend: 'cpu' }],
];
for (const [label, o] of configs) {
  const r = await run(label, o);
  const ms = median(r.msPerIteration);
  console.log(
    `tfjs ${label.padEnd(6)} H=512 T=64 B=32: median ${ms.toFixed(1)} ms/iter,` +
      ` ${((big.seqLength * big.batchSize) / (ms / 1000)).toFixed(0)} chars/s` +
      ` (${r.msPerIteration.map((m) => m.toFixed(0)).join(' ')}) loss ${r.finalLoss.toFixed(4)}`,
  );
}

device.destroy();
if (failed) process.exitCode = 1;
