/** shaders/sample.wgsl: text generation, one workgroup per stream running many steps per dispatch. */
import source from '../../../shaders/sample.wgsl?raw';
import type { SamplingControls } from '../../model/backend.ts';
import type { FullModelConfig } from '../../model/config.ts';
import type { ParamLayout } from '../../model/layout.ts';
import { composeWgsl } from '../wgsl.ts';
import { CELL_CODE } from './cell.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch } from './common.ts';

const UNIFORMS = new UniformLayout({
  H: 'u32', V: 'u32', seqLen: 'u32', primeLen: 'u32',
  stepBegin: 'u32', stepEnd: 'u32', seed: 'u32', temperature: 'f32',
  offDecW: 'u32', offDecB: 'u32', layers: 'u32', topK: 'u32',
  topP: 'f32', penalty: 'f32', window: 'u32', pad: 'u32',
  layer: { vec4u32: 8 },
});

export const SAMPLE = defineKernel({
  name: 'sample',
  wgsl: composeWgsl(source),
  cpuTwin: 'src/cpu/sample.ts: sampleTokens (filteredWeights, penalizeRepeats)',
  bindings: ['params', 'seq', 'hState', 'logits', 'probs', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main'],
});

export const SAMPLE_WG = 256;
/** Layers the uniforms have room for (sample.wgsl's MAX_LAYERS). */
export const SAMPLE_MAX_LAYERS = UNIFORMS.fields.layer.vec4u32;
/** Hidden units one invocation computes (sample.wgsl's MAX_UNITS). */
export const SAMPLE_MAX_H = 16 * SAMPLE_WG;
/** Steps per dispatch: a few hundred keeps each dispatch short (browsers reset long-running GPU work). */
const STEPS = 128;

/** Vocabularies up to this size filter by ranks (sample.wgsl's DIRECT), larger ones by binary search. */
export const SAMPLE_DIRECT_MAX_V = 4 * SAMPLE_WG;

/** Whether the controls change anything: the filters, and the penalty. */
function controlsInUse(c: SamplingControls | undefined, V: number): { filter: boolean; penalty: boolean } {
  return {
    filter: ((c?.topK ?? 0) > 0 && c!.topK! < V) || (c?.topP ?? 1) < 1,
    penalty: (c?.repetitionPenalty ?? 1) !== 1,
  };
}

/**
 * The workgroup arrays: h, c (the lstm's), lib/reduce.wgsl's scratch with the argmax's indices,
 * groupSum's partial sums and, with a penalty, a bitmap of the vocabulary.
 */
function shape(model: FullModelConfig, controls?: SamplingControls): { maxState: number; maxCells: number; seenWords: number; direct: boolean; weights: number; workgroupBytes: number } {
  const maxState = Math.max(SAMPLE_WG, Math.ceil((model.layers * model.hiddenSize) / SAMPLE_WG) * SAMPLE_WG);
  const maxCells = model.cell === 'lstm' ? maxState : 1;
  const use = controlsInUse(controls, model.vocabSize);
  const seenWords = use.penalty ? Math.ceil(model.vocabSize / 32) : 1;
  const direct = use.filter && model.vocabSize <= SAMPLE_DIRECT_MAX_V;
  const weights = direct ? model.vocabSize : 1;
  return { maxState, maxCells, seenWords, direct, weights, workgroupBytes: 4 * (maxState + maxCells + 2 * SAMPLE_WG + 4 + 16 + seenWords + weights) };
}

/** Whether the kernel can sample this model here: H up to SAMPLE_MAX_H, SAMPLE_MAX_LAYERS layers, the state (and a penalty's bitmap) in workgroup memory. */
export function sampleFits(model: FullModelConfig, limits: { maxComputeWorkgroupStorageSize: number }, controls?: SamplingControls): boolean {
  return model.hiddenSize <= SAMPLE_MAX_H && model.layers <= SAMPLE_MAX_LAYERS &&
    shape(model, controls).workgroupBytes <= limits.maxComputeWorkgroupStorageSize;
}

/** Where the kernel's state buffer keeps layer l's h and c (in floats): [h of every layer | c of every layer]. */
export function sampleStateOffsets(model: FullModelConfig, l: number): { h: number; c: number } {
  return { h: l * model.hiddenSize, c: (model.layers + l) * model.hiddenSize };
}

/** Floats of the state buffer. */
export function sampleStateLength(model: FullModelConfig): number {
  return 2 * model.layers * model.hiddenSize;
}

/**
 * The dispatches generating `streams` samples side by side, one workgroup each: `seq`
 * [streams * seqLen] holds each one's priming tokens and receives the rest, `hState`
 * [streams * sampleStateLength] their start states; with `recordProbs` every step's distribution
 * goes to `probs` [streams * seqLen * V].
 */
export function sampleLaunches<T>(
  model: FullModelConfig, layout: ParamLayout,
  o: { primeLength: number; seqLen: number; seed: number; temperature: number; recordProbs: boolean; streams: number; controls?: SamplingControls },
  b: { params: T; seq: T; hState: T; logits: T; probs: T },
): Launch<T>[] {
  const { hiddenSize: H, vocabSize: V, layers: L } = model;
  const { maxState, maxCells, seenWords, direct, weights } = shape(model, o.controls);
  const use = controlsInUse(o.controls, V);
  const N = o.streams;
  const layer = layout.layers.flatMap((w) => [w.weightIh.offset, w.weightHh.offset, w.biasIh.offset, w.biasHh.offset]);
  const launches: Launch<T>[] = [];
  for (let k = 0; k < o.seqLen - 1; k += STEPS) {
    launches.push({
      kernel: SAMPLE,
      entryPoint: 'main',
      constants: {
        WG: SAMPLE_WG, MAX_STATE: maxState, MAX_CELLS: maxCells, RECORD_PROBS: o.recordProbs ? 1 : 0, CELL: CELL_CODE[model.cell],
        FILTER: use.filter ? 1 : 0, PENALTY: use.penalty ? 1 : 0, SEEN_WORDS: seenWords, DIRECT: direct ? 1 : 0, WEIGHTS: weights,
      },
      bindings: bindAll(SAMPLE, {
        params: { buffer: b.params, touches: [reads(0, layout.length)] },
        seq: { buffer: b.seq, touches: [reads(0, N * o.seqLen), writes(0, N * o.seqLen)] },
        hState: { buffer: b.hState, touches: [reads(0, N * sampleStateLength(model)), writes(0, N * sampleStateLength(model))] },
        logits: { buffer: b.logits, touches: [writes(0, N * V), reads(0, N * V)] },
        probs: { buffer: b.probs, touches: o.recordProbs ? [writes(0, N * o.seqLen * V)] : [] },
        u: {
          uniforms: UNIFORMS.pack({
            H, V, seqLen: o.seqLen, primeLen: o.primeLength, stepBegin: k, stepEnd: Math.min(o.seqLen - 1, k + STEPS),
            seed: o.seed >>> 0, temperature: o.temperature,
            offDecW: layout.decoderWeight.offset, offDecB: layout.decoderBias.offset, layers: L, layer,
            topK: o.controls?.topK ?? 0, topP: o.controls?.topP ?? 1, penalty: o.controls?.repetitionPenalty ?? 1,
            window: o.controls?.repetitionWindow ?? 0,
          }),
        },
      }),
      x: N,
      y: 1,
    });
  }
  return launches;
}
