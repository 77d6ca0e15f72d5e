/**
 * Train recurrent language models (RNN, LSTM, GRU) on text with WebGPU compute shaders, or on the
 * CPU, in Node and in the browser.
 *
 * @example
 * ```ts
 * import { createModel, createTokenizer } from 'webgpu-rnn';
 * const tokenizer = createTokenizer(text);
 * const model = await createModel({ tokenizer, cell: 'lstm', hiddenSize: 128 });
 * await model.fit(text, { iterations: 200, onProgress: (p) => console.log(p.iteration, p.loss) });
 * console.log(await model.sample({ prime: 'The ', length: 100 }));
 * model.dispose();
 * ```
 *
 * This is the Node entry point (the package's `node` export condition): the GPU is Dawn's, from
 * the `webgpu` package. The browser entry point has the same API on `navigator.gpu`.
 *
 * @packageDocumentation
 */
export * from './types.ts';
export { createTokenizer } from './model.ts';

import { acquireNodeGpu, releaseNodeGpu, nodeGpuGlobals } from '../node/webgpu.ts';
import { wrapDevice } from '../gpu/device.ts';
import { createModelOn, loadModelOn, type Platform } from './model.ts';
import type { CreateModelOptions, LoadModelOptions, RNNModel } from './types.ts';

const node: Platform = {
  acquireGpu: acquireNodeGpu,
  // A caller's device came from `webgpu` too; its GPUBufferUsage and friends must be globals for the engine.
  wrapDevice: async (device) => {
    await nodeGpuGlobals();
    return wrapDevice(device);
  },
  releaseGpu: releaseNodeGpu,
};

/**
 * A new model with freshly initialised weights, on the backend the options choose (read it back
 * from {@link RNNModel.device}). Release it with {@link RNNModel.dispose}: in Node, Dawn's device
 * keeps the process alive until then.
 */
export function createModel(options: CreateModelOptions): Promise<RNNModel> {
  return createModelOn(node, options);
}

/** A model from the bytes of a safetensors checkpoint ({@link RNNModel.save}, or a file the CLI wrote). */
export function loadModel(bytes: Uint8Array, options?: LoadModelOptions): Promise<RNNModel> {
  return loadModelOn(node, bytes, options);
}
