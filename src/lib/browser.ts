/**
 * The browser entry point (the package's `browser` and `default` export conditions): the same
 * API as the Node one (index.ts, which documents it), with the GPU from `navigator.gpu`.
 */
import { acquireGpu, wrapDevice } from '../gpu/device.ts';
import { BROWSER_GPU_HINT } from '../web/worker/browser-gpu.ts';
import { createModelOn, loadModelOn, type Platform } from './model.ts';
import type { CreateModelOptions, LoadModelOptions, RNNModel } from './types.ts';

export * from './types.ts';
export { createTokenizer } from './model.ts';

/** The default adapter first, then a compatibility-mode one (where only that exists, as on ANGLE over OpenGL ES). */
function navigatorGpu(): GPU {
  if (typeof navigator === 'undefined' || !navigator.gpu) throw new Error(`navigator.gpu is missing: ${BROWSER_GPU_HINT}`);
  return navigator.gpu;
}

const browser: Platform = {
  acquireGpu: () => acquireGpu(
    [{ label: 'WebGPU', gpu: navigatorGpu }, { label: 'WebGPU (compatibility)', gpu: navigatorGpu, options: { featureLevel: 'compatibility' } }],
    BROWSER_GPU_HINT,
  ),
  wrapDevice: async (device) => wrapDevice(device),
  releaseGpu: (ctx) => ctx.device.destroy(),
};

export function createModel(options: CreateModelOptions): Promise<RNNModel> {
  return createModelOn(browser, options);
}

export function loadModel(bytes: Uint8Array, options?: LoadModelOptions): Promise<RNNModel> {
  return loadModelOn(browser, bytes, options);
}
