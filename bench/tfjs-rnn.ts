/**
 * TensorFlow.js baseline of our model's training step (char-level vanilla RNN),
 * written the way a careful tfjs user would, so our own WebGPU engine can be
 * compared against it in one process, on the same Dawn GPUDevice.
 *
 * Model (same function as ours):
 *   h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)     x_t one-hot over V
 *   y_t = W_hy h_t + b_y
 *   loss = softmax cross-entropy, mean over all T*B positions
 *   Adam(lr 2e-3), every gradient clipped by value to [-5, 5], hidden state
 *   carried between iterations (stateful, truncated BPTT).
 *
 * Choices, and why:
 * - Only tfjs-core is imported (not the `@tensorflow/tfjs` union package), so
 *   chained tensor methods (t.reshape(), t.transpose()) are not registered:
 *   use the tf.* functions.
 * - tfjs optimizers have no clipvalue/clipnorm option (neither tf.train.adam nor
 *   model.compile in tfjs-layers). Clipping is done by hand: tf.variableGrads ->
 *   tf.clipByValue on each of the 5 gradients -> optimizer.applyGradients.
 *   That is 5 extra elementwise kernels per iteration: cheap.
 * - The hidden state is carried by hand: the last h is tf.keep()-ed and fed as
 *   the next initial state; the gradient does not flow into it.
 * - x_t one-hot times W_xh is a row gather of W_xh stored as [V,H]. The two
 *   tfjs spellings differ wildly by backend, so each gets its faster one:
 *   webgpu: tf.gather (gradient = UnsortedSegmentSum, one kernel);
 *   cpu: tf.matMul(oneHot(x), W_xh), because tfjs-backend-cpu's
 *   UnsortedSegmentSum runs whole-tensor ops per segment (1.07 s for 256 rows
 *   at V=87; 10.6 s/iter at H=256,T=64,B=32 with gather vs 2.6 s with matMul).
 *   On webgpu, the matMul form measured 780 ms vs 661 ms for gather (packed).
 * - tfjs runs with its default flags (out of the box). The matmul in every
 *   recurrent step is [B,H] x [H,H]; when the output has at most 8 tiles of
 *   32x32 (B<=32 and H<=256), tfjs-backend-webgpu picks its "small output size"
 *   matmul program, 2-6x slower on lavapipe than its packed (tiled) program
 *   ([32,256]x[256,256]: ~7 ms vs ~1.1 ms). tfjs' env flag
 *   WEBGPU_MATMUL_PROGRAM_TYPE=3 forces the packed one; that is tuning, so the
 *   benchmark does not set it. At H=512, B=32 tfjs picks the packed program by itself.
 * - The per-kernel breakdown (tf.profile) at H=256 with the packed program is
 *   ~1 ms per small kernel, ~10 kernels per time step (forward + backward),
 *   plus per-step [H,H] dW_hh accumulations that autodiff cannot batch.
 *
 * Formulations measured at H=256, T=64, B=32, V=87, webgpu = Dawn on Mesa
 * lavapipe, 2 CPU cores, median of 5 after 2 warmup, ms/iteration:
 *                                                    tfjs default   packed matmul
 *   hand-written loop (this file): tf.variableGrads     1508            667
 *             over tf.variables, cuDNN-style batching:
 *             one gather for all T input projections,
 *             one matMul for all T output projections;
 *             per step matMul + add + tanh
 *   same with tf.fused.matMul(h, W_hh, bias=x_t)        ~2070           1324
 *             per step (rejected: see the loop)
 *   tfjs-layers simpleRNN(returnSequences,              2361            959
 *             returnState) + timeDistributed(dense),
 *             same variableGrads + clip + Adam step
 *   (cpu at the same size: hand-written 2587, layers 3618.)
 * The hand-written loop is faster on both backends, so it is the baseline; the
 * tfjs-layers formulation was removed (nothing ran it).
 */
import * as tf from '@tensorflow/tfjs-core';
// Imported only for its side effect: tfjs-core alone registers no gradients, and tf.variableGrads
// needs them. tfjs-layers' Node bundle registers tfjs-core's gradient functions when loaded (the
// @tensorflow/tfjs union package does the same); core's own dist/register_all_gradients is an ES
// module that Node cannot load (it imports directories). Without this line: "Cannot compute
// gradient: gradient function not found for RealDiv".
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { create, globals } from 'webgpu';
import { PIPELINE_DEPTH, type Timing } from './timing.ts';

export interface TfjsRunOptions {
  backend: 'webgpu' | 'cpu';
  device?: GPUDevice;
  vocabSize: number;
  hiddenSize: number;
  seqLength: number;
  batchSize: number;
  seed?: number;
}

export interface TfjsSession {
  /** Milliseconds per iteration, one round (PIPELINE_DEPTH iterations when pipelined). */
  round(timing: Timing): Promise<number>;
  dispose(): Promise<void>;
  adapter?: string;
}

const LEARNING_RATE = 2e-3;
const CLIP = 5;

// ---------------------------------------------------------------- WebGPU setup

/**
 * tfjs-backend-webgpu needs `navigator.gpu` (WebGPUBackend's constructor throws
 * "WebGPU is not supported on this device" without it) and the WebGPU enums
 * GPUBufferUsage / GPUMapMode / GPUShaderStage as globals. Node 20 has no
 * `navigator` at all; Node 21+ has one without `gpu`.
 */
function installWebGPUGlobals(gpu?: GPU): void {
  const g = globalThis as Record<string, unknown>;
  if (typeof g.GPUBufferUsage === 'undefined') Object.assign(globalThis, globals);
  const nav = g.navigator as { gpu?: GPU } | undefined;
  if (nav == null) {
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu: gpu ?? create([]) },
      configurable: true,
      writable: true,
    });
  } else if (nav.gpu == null) {
    Object.defineProperty(nav, 'gpu', { value: gpu ?? create([]), configurable: true });
  }
}

async function createDevice(): Promise<GPUDevice> {
  const gpu = create([]);
  installWebGPUGlobals(gpu);
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('webgpu: no adapter (is the Mesa lavapipe Vulkan driver installed?)');
  // Same request as tfjs-backend-webgpu's own factory: the adapter's limits.
  const l = adapter.limits;
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  return adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
  });
}

function describeAdapter(info: GPUAdapterInfo | undefined): string | undefined {
  if (!info) return undefined;
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s);
  return parts.length ? parts.join(' / ') : undefined;
}

let webgpuDevice: GPUDevice | undefined; // the device the registered 'webgpu' backend runs on
let ownDevice: GPUDevice | undefined; // created here when the caller passed none

/**
 * Make tfjs' 'webgpu' backend run on `device`. tfjs' kernels are registered
 * under the backend *name* 'webgpu', so the backend must carry that name: any
 * 'webgpu' backend registered before (tfjs' own, which would request a second
 * device, or ours on another device) is removed first. WebGPUBackend.dispose()
 * frees its buffer pool but never destroys the device, so the caller's device
 * survives removeBackend.
 */
async function useWebGPU(device: GPUDevice): Promise<string | undefined> {
  installWebGPUGlobals();
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  if (webgpuDevice !== device || tf.findBackendFactory('webgpu') == null) {
    if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
    // WebGPUBackend(device, adapterInfo): adapterInfo only serves Intel tuning.
    tf.registerBackend('webgpu', () => new WebGPUBackend(device, info as never), 3);
    webgpuDevice = device;
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: could not initialise the webgpu backend');
  return describeAdapter(info);
}

// ---------------------------------------------------------------- data

/** xorshift32: deterministic token stream, independent of tfjs' own RNG. */
function makeTokenSource(seed: number, vocab: number) {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return (n: number): Int32Array => {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      out[i] = s % vocab;
    }
    return out;
  };
}

// ---------------------------------------------------------------- models

interface Trainer {
  /** One training step on time-major tokens [T*B] (position t*B+b); returns the loss (kept). */
  step(inputs: Int32Array, targets: Int32Array): tf.Scalar;
  dispose(): void;
}

function clipAndApply(optimizer: tf.Optimizer, grads: tf.NamedTensorMap): void {
  tf.tidy(() => {
    const clipped: tf.NamedTensorMap = {};
    for (const name of Object.keys(grads)) clipped[name] = tf.clipByValue(grads[name], -CLIP, CLIP);
    optimizer.applyGradients(clipped);
  });
  tf.dispose(grads);
}

/** Hand-written loop over tf.variables, differentiated with tf.variableGrads. */
function manualTrainer(V: number, H: number, T: number, B: number, seed: number, useGather: boolean): Trainer {
  // tf.variable() shares the initial value's data but that tensor stays counted:
  // build under tidy so only the variables survive.
  const init = (shape: number[], s: number) =>
    tf.tidy(() => tf.variable(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', s), 0.01)));
  const Wxh = init([V, H], seed + 1); // row v = W_xh · onehot(v)
  const Whh = init([H, H], seed + 2);
  const bh = tf.tidy(() => tf.variable(tf.zeros([H])));
  const Why = init([H, V], seed + 3);
  const by = tf.tidy(() => tf.variable(tf.zeros([V])));
  const vars = [Wxh, Whh, bh, Why, by];
  const optimizer = tf.train.adam(LEARNING_RATE);
  let hPrev: tf.Tensor2D = tf.keep(tf.zeros([B, H]));

  return {
    step(inputs, targets) {
      let hLast: tf.Tensor2D | undefined;
      const { value, grads } = tf.tidy(() => {
        const x = tf.tensor1d(inputs, 'int32');
        const labels = tf.oneHot(tf.tensor1d(targets, 'int32'), V, 1, 0, 'float32');
        return tf.variableGrads(() => {
          // All T input projections at once: [T*B, H], then per-step slices.
          const rows = useGather ? tf.gather(Wxh, x) : tf.matMul(tf.oneHot(x, V, 1, 0, 'float32'), Wxh);
          const xProj = tf.reshape(tf.add(rows, bh), [T, B, H]);
          const xs = tf.unstack(xProj) as tf.Tensor2D[];
          let h: tf.Tensor2D = hPrev;
          const hs: tf.Tensor2D[] = [];
          for (let t = 0; t < T; t++) {
            // Not tf.fused.matMul({a: h, b: Whh, bias: xs[t]}): its output is
            // batched [1,B,H], so the bias gradient becomes a Sum over a size-1
            // axis, ~8 ms per step on lavapipe (fused was 1.4x slower overall).
            h = tf.tanh(tf.add(tf.matMul(h, Whh), xs[t]));
            hs.push(h);
          }
          hLast = tf.keep(h);
          // All T output projections as one matmul: [T*B, V].
          const logits = tf.fused.matMul({ a: tf.concat(hs, 0), b: Why, bias: by });
          return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar; // mean over T*B
        }, vars);
      });
      clipAndApply(optimizer, grads);
      hPrev.dispose();
      hPrev = hLast!;
      return value;
    },
    dispose() {
      tf.dispose([...vars, hPrev]);
      optimizer.dispose();
    },
  };
}

// ---------------------------------------------------------------- runner

/**
 * A warmed-up tfjs trainer on one job. tfjs has one active backend at a time: each round selects
 * this session's, so sessions on 'webgpu' and 'cpu' can be timed in alternation (each one's
 * tensors live on its own backend and are only used while it is active).
 */
export async function startTfjs(opts: TfjsRunOptions): Promise<TfjsSession> {
  const { vocabSize: V, hiddenSize: H, seqLength: T, batchSize: B } = opts;
  const seed = opts.seed ?? 1;
  let device: GPUDevice | undefined;
  let adapter: string | undefined;
  const activate = async () => {
    if (opts.backend === 'webgpu') {
      device = opts.device ?? (ownDevice ??= await createDevice());
      adapter = await useWebGPU(device);
    } else if (!(await tf.setBackend('cpu'))) throw new Error('tfjs: could not initialise the cpu backend');
  };
  await activate();
  const nextTokens = makeTokenSource(seed, V);
  const trainer = manualTrainer(V, H, T, B, seed, opts.backend === 'webgpu');
  /** n iterations enqueued back to back, then the last loss read: ms per iteration. */
  const run = async (n: number) => {
    // tfjs-backend-webgpu does not check for WebGPU errors: an invalid pipeline only prints a Dawn
    // message and the step "succeeds" with zeros. Each round is checked.
    device?.pushErrorScope('validation');
    const t0 = performance.now();
    const losses: tf.Scalar[] = [];
    for (let i = 0; i < n; i++) {
      // Realistic data: a fresh batch each step, uploaded inside the timed region.
      const tokens = nextTokens(T * B + B); // time-major stream, targets = next position
      losses.push(trainer.step(tokens.subarray(0, T * B), tokens.subarray(B)));
    }
    const loss = (await losses[n - 1].data())[0];
    const ms = (performance.now() - t0) / n;
    tf.dispose(losses);
    const error = device ? await device.popErrorScope() : null;
    if (error) throw new Error(`tfjs webgpu: validation error during training: ${error.message}`);
    if (!Number.isFinite(loss)) throw new Error(`tfjs ${opts.backend}: loss ${loss}`);
    return ms;
  };
  await run(1);
  return {
    adapter,
    async round(timing) {
      await activate();
      return run(timing === 'pipelined' ? PIPELINE_DEPTH : 1);
    },
    async dispose() {
      await activate();
      trainer.dispose();
    },
  };
}
