/**
 * Text generation, each step spread over the device: shaders/sample.wgsl (one layer's cell for
 * every stream), sample_decode.wgsl (the logits) and sample_draw.wgsl (filters, softmax, the draw;
 * one workgroup per stream). Per token: one dispatch per layer, then the decoder and the draw; the
 * same dispatches serve every step (each stream's step counter lives in the token buffer).
 */
import cellSource from '../../../shaders/sample.wgsl?raw';
import decodeSource from '../../../shaders/sample_decode.wgsl?raw';
import drawSource from '../../../shaders/sample_draw.wgsl?raw';
import type { SamplingControls } from '../../model/backend.ts';
import type { FullModelConfig } from '../../model/config.ts';
import type { ParamLayout } from '../../model/layout.ts';
import { composeWgsl } from '../wgsl.ts';
import { GATES } from '../../model/cells.ts';
import { CELL_CODE } from './cell.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch } from './common.ts';

const CELL_UNIFORMS = new UniformLayout({
  H: 'u32', V: 'u32', streams: 'u32', layers: 'u32',
  layer: 'u32', seqLen: 'u32', blocks: 'u32', offWhhT: 'u32',
  offWih: 'u32', offWhh: 'u32', offBih: 'u32', offBhh: 'u32',
});

const DECODE_UNIFORMS = new UniformLayout({
  H: 'u32', V: 'u32', streams: 'u32', layers: 'u32',
  seqLen: 'u32', blocks: 'u32', offDecW: 'u32', offDecB: 'u32',
  offDecT: 'u32', ldDecT: 'u32', pad0: 'u32', pad1: 'u32',
});

const DRAW_UNIFORMS = new UniformLayout({
  V: 'u32', streams: 'u32', seqLen: 'u32', primeLen: 'u32',
  seed: 'u32', temperature: 'f32', topK: 'u32', topP: 'f32',
  penalty: 'f32', window: 'u32', H: 'u32', layers: 'u32',
  offDecW: 'u32', offDecB: 'u32', blocks: 'u32', offDecT: 'u32',
  ldDecT: 'u32', pad0: 'u32', pad1: 'u32', pad2: 'u32',
});

export const SAMPLE = defineKernel({
  name: 'sample',
  wgsl: composeWgsl(cellSource),
  cpuTwin: 'src/cpu/sample.ts: sampleTokens (gatePreactivations, cellPointwise per layer)',
  bindings: ['params', 'seq', 'hState', 'u', 'weightsT'],
  uniforms: { u: CELL_UNIFORMS },
  entryPoints: ['cell'],
});

export const SAMPLE_DECODE = defineKernel({
  name: 'sample_decode',
  wgsl: composeWgsl(decodeSource),
  cpuTwin: 'src/cpu/sample.ts: sampleTokens (its logits)',
  bindings: ['params', 'seq', 'hState', 'logits', 'u', 'weightsT'],
  uniforms: { u: DECODE_UNIFORMS },
  entryPoints: ['decode'],
});

export const SAMPLE_DRAW = defineKernel({
  name: 'sample_draw',
  wgsl: composeWgsl(drawSource),
  cpuTwin: 'src/cpu/sample.ts: sampleTokens (filteredWeights, penalizeRepeats, drawIndex)',
  bindings: ['params', 'seq', 'hState', 'logits', 'probs', 'u', 'weightsT'],
  uniforms: { u: DRAW_UNIFORMS },
  entryPoints: ['draw'],
});

/** Where the optimizer's transposed copies sit in their buffer: each layer's W_hh^T [H, G*H], and W_dec^T [H, ld]. */
export interface TransposedCopies<T> {
  buffer: T;
  whhT: readonly number[];
  decoder: { off: number; ld: number };
}

/** The draw's workgroup (one per stream). */
export const SAMPLE_WG = 64;
/** The cell's and the decoder's workgroups (32 measured no slower than 64 at one stream, H 512-1024, on lavapipe). */
const STEP_WG = 32;
/** Rows one invocation of the cell or the decoder computes per stream (lib/sample_step.wgsl's SLOTS). */
const SLOTS = 16;

/**
 * Whether the draw computes the logits itself (one workgroup per stream, sample_draw.wgsl's
 * FUSED_DECODE), saving the decoder's dispatch: for products up to 2^17 multiply-adds (V=87 at
 * H=1024), which one workgroup does in less time than a dispatch costs.
 */
function fusedDecode(model: FullModelConfig): boolean {
  return model.vocabSize <= SLOTS * SAMPLE_WG && model.vocabSize * model.hiddenSize <= 1 << 17;
}

/** Dispatches per generated token: one per layer, the decoder's unless the draw computes the logits, the draw's. */
export function sampleDispatchesPerToken(model: FullModelConfig): number {
  return model.layers + (fusedDecode(model) ? 1 : 2);
}

/** Vocabularies up to this size filter by ranks (sample_draw.wgsl's DIRECT), larger ones by binary search. */
export const SAMPLE_DIRECT_MAX_V = 16 * SAMPLE_WG;

/** Whether the controls change anything: the filters, and the penalty. */
function controlsInUse(c: SamplingControls | undefined, V: number): { filter: boolean; penalty: boolean } {
  return {
    filter: ((c?.topK ?? 0) > 0 && c!.topK! < V) || (c?.topP ?? 1) < 1,
    penalty: (c?.repetitionPenalty ?? 1) !== 1,
  };
}

/** The draw's workgroup arrays: lib/reduce.wgsl's scratch with the argmax's indices, groupSum's partial sums and, with a penalty, a bitmap of the vocabulary; DIRECT's weights. */
function drawShape(model: FullModelConfig, controls?: SamplingControls): { seenWords: number; direct: boolean; weights: number; workgroupBytes: number } {
  const use = controlsInUse(controls, model.vocabSize);
  const seenWords = use.penalty ? Math.ceil(model.vocabSize / 32) : 1;
  const direct = use.filter && model.vocabSize <= SAMPLE_DIRECT_MAX_V;
  const weights = direct ? model.vocabSize : 1;
  return { seenWords, direct, weights, workgroupBytes: 4 * (SAMPLE_WG + 5 + 16 + seenWords + weights) };
}

/**
 * Streams per invocation of the cell and the decoder: 8 (each weight loaded serves 8), or fewer
 * streams rounded up to 1, 2 or 4, so that no invocation computes clamped copies of the last.
 */
function streamsPerInvocation(streams: number): number {
  return streams >= 5 ? 8 : streams >= 3 ? 4 : Math.max(1, streams);
}

/**
 * Hidden units per invocation of the cell, every gate of them (at most SLOTS accumulators per
 * stream): from the transposed W_hh, as many as SLOTS holds in vec4 runs (rnn 16, lstm and gru 4:
 * at one stream, H=512, 1.2x faster than 4 for the rnn); from W_hh itself, 4.
 */
function unitsPerInvocation(model: FullModelConfig, transposed: boolean): number {
  return transposed ? Math.max(4, Math.floor(SLOTS / GATES[model.cell] / 4) * 4) : 4;
}

/** The step dispatches' grid: x workgroups over the widest one's blocks of units or vocabulary rows, y blocks of streams. */
function stepGrid(model: FullModelConfig, streams: number): { x: number; y: number } {
  const blocks = Math.max(Math.ceil(model.hiddenSize / unitsPerInvocation(model, false)), Math.ceil(model.vocabSize / SLOTS));
  return { x: Math.ceil(blocks / STEP_WG), y: Math.ceil(streams / streamsPerInvocation(streams)) };
}

/**
 * Whether the kernels can sample `streams` streams of this model here: a penalty's bitmap in
 * workgroup memory, every dispatch within the adapter's workgroup count, the streams' state within
 * one binding.
 */
export function sampleFits(
  model: FullModelConfig, limits: { maxComputeWorkgroupStorageSize: number; maxComputeWorkgroupsPerDimension: number; maxStorageBufferBindingSize: number },
  controls: SamplingControls | undefined, streams: number,
): boolean {
  return drawShape(model, controls).workgroupBytes <= limits.maxComputeWorkgroupStorageSize &&
    streams <= limits.maxComputeWorkgroupsPerDimension && Math.max(stepGrid(model, streams).x, stepGrid(model, streams).y) <= limits.maxComputeWorkgroupsPerDimension &&
    4 * sampleStateLength(model, streams) <= limits.maxStorageBufferBindingSize;
}

/** Floats of the state buffer for `streams` streams: h twice, then the lstm's c (lib/sample_step.wgsl). */
export function sampleStateLength(model: FullModelConfig, streams: number): number {
  return (model.cell === 'lstm' ? 3 : 2) * model.layers * streams * model.hiddenSize;
}

/** Where the state buffer keeps stream n's first h (the one step 0 reads) and c of layer l, in floats. */
export function sampleStateOffsets(model: FullModelConfig, streams: number, l: number, n: number): { h: number; c: number } {
  const at = (l * streams + n) * model.hiddenSize;
  return { h: at, c: 2 * model.layers * streams * model.hiddenSize + at };
}

/** Words of the token buffer: [streams * seqLen] tokens, then each stream's step counter (start them at 0). */
export function sampleSeqLength(seqLen: number, streams: number): number {
  return streams * (seqLen + 1);
}

/**
 * The dispatches of one step for `streams` samples side by side: `launches[0 .. layers - 1]` the
 * cells, then the decoder (unless the draw computes the logits itself) and the draw. Step k of
 * 0 .. seqLen - 2 runs the cells, then, once the priming text is consumed (k + 1 >= primeLength),
 * the decoder, then always the draw (which moves every stream's step counter on):
 * sampleStepLaunches says which. `seq`
 * [sampleSeqLength] holds each one's priming tokens and receives the rest, `hState`
 * [sampleStateLength] their start states; with `recordProbs` every step's distribution goes to
 * `probs` [streams * seqLen * V]. With `b.transposed` (the W_hh^T and decoder copies the optimizer
 * keeps: every plan but the split one) the products read those, adjacent invocations adjacent words.
 */
export function sampleLaunches<T>(
  model: FullModelConfig, layout: ParamLayout,
  o: { primeLength: number; seqLen: number; seed: number; temperature: number; recordProbs: boolean; streams: number; controls?: SamplingControls },
  b: { params: T; seq: T; hState: T; logits: T; probs: T; transposed?: TransposedCopies<T> },
): Launch<T>[] {
  const { hiddenSize: H, vocabSize: V, layers: L } = model;
  const { seenWords, direct, weights } = drawShape(model, o.controls);
  const fused = fusedDecode(model);
  const use = controlsInUse(o.controls, V);
  const N = o.streams;
  const rows = streamsPerInvocation(N);
  const rowBlocks = Math.ceil(N / rows);
  const seqWords = sampleSeqLength(o.seqLen, N);
  const stateLen = sampleStateLength(model, N);
  const params = { buffer: b.params, touches: [reads(0, layout.length)] };
  // columnsTimes reads vec4s: every gate's rows must start at a multiple of 4.
  const t = H % 4 === 0 ? b.transposed : undefined;
  const units = unitsPerInvocation(model, !!t);
  const GH = GATES[model.cell] * H;
  // Unused where t is absent: bound to params, touching nothing.
  const weightsT = (offset: number, count: number) => (t ? { buffer: t.buffer, touches: [reads(offset, count)] } : { buffer: b.params, touches: [] });
  const decT = t ? { weightsT: weightsT(t.decoder.off, H * t.decoder.ld), offDecT: t.decoder.off, ldDecT: t.decoder.ld } : { weightsT: weightsT(0, 0), offDecT: 0, ldDecT: 0 };
  const seq = { buffer: b.seq, touches: [reads(0, seqWords)] };
  const cells = layout.layers.map((w, l): Launch<T> => {
    const blocks = Math.ceil(H / units);
    return {
      kernel: SAMPLE,
      entryPoint: 'cell',
      constants: { WG: STEP_WG, ROWS: rows, UNITS: units, CELL: CELL_CODE[model.cell], TRANSPOSED: t ? 1 : 0 },
      bindings: bindAll(SAMPLE, {
        params, seq, weightsT: weightsT(t?.whhT[l] ?? 0, H * GH),
        hState: { buffer: b.hState, touches: [reads(0, stateLen), writes(0, stateLen)] },
        u: {
          uniforms: CELL_UNIFORMS.pack({
            H, V, streams: N, layers: L, layer: l, seqLen: o.seqLen, blocks, offWhhT: t?.whhT[l] ?? 0,
            offWih: w.weightIh.offset, offWhh: w.weightHh.offset, offBih: w.biasIh.offset, offBhh: w.biasHh.offset,
          }),
        },
      }),
      x: Math.ceil(blocks / STEP_WG),
      y: rowBlocks,
    };
  });
  const vBlocks = Math.ceil(V / SLOTS);
  const decode: Launch<T> = {
    kernel: SAMPLE_DECODE,
    entryPoint: 'decode',
    constants: { WG: STEP_WG, ROWS: rows, TRANSPOSED: t ? 1 : 0 },
    bindings: bindAll(SAMPLE_DECODE, {
      params, seq, weightsT: decT.weightsT,
      hState: { buffer: b.hState, touches: [reads(0, stateLen)] },
      logits: { buffer: b.logits, touches: [writes(0, N * V)] },
      u: {
        uniforms: DECODE_UNIFORMS.pack({
          H, V, streams: N, layers: L, seqLen: o.seqLen, blocks: vBlocks,
          offDecW: layout.decoderWeight.offset, offDecB: layout.decoderBias.offset, offDecT: decT.offDecT, ldDecT: decT.ldDecT,
        }),
      },
    }),
    x: Math.ceil(vBlocks / STEP_WG),
    y: rowBlocks,
  };
  const draw: Launch<T> = {
    kernel: SAMPLE_DRAW,
    entryPoint: 'draw',
    constants: {
      WG: SAMPLE_WG, FUSED_DECODE: fused ? 1 : 0, TRANSPOSED: fused && t ? 1 : 0, DECODE_ROWS: !fused ? 1 : t ? Math.ceil(V / SAMPLE_WG / 4) * 4 : Math.ceil(V / SAMPLE_WG), RECORD_PROBS: o.recordProbs ? 1 : 0,
      FILTER: use.filter ? 1 : 0, PENALTY: use.penalty ? 1 : 0, SEEN_WORDS: seenWords, DIRECT: direct ? 1 : 0, WEIGHTS: weights,
    },
    bindings: bindAll(SAMPLE_DRAW, {
      params: { buffer: b.params, touches: fused ? params.touches : [] },
      weightsT: fused ? decT.weightsT : weightsT(0, 0),
      seq: { buffer: b.seq, touches: [reads(0, seqWords), writes(0, seqWords)] },
      hState: { buffer: b.hState, touches: fused ? [reads(0, stateLen)] : [] },
      logits: { buffer: b.logits, touches: [reads(0, N * V), writes(0, N * V)] },
      probs: { buffer: b.probs, touches: o.recordProbs ? [writes(0, N * o.seqLen * V)] : [] },
      u: {
        uniforms: DRAW_UNIFORMS.pack({
          V, streams: N, seqLen: o.seqLen, primeLen: o.primeLength, seed: o.seed >>> 0, temperature: o.temperature,
          topK: o.controls?.topK ?? 0, topP: o.controls?.topP ?? 1, penalty: o.controls?.repetitionPenalty ?? 1,
          window: o.controls?.repetitionWindow ?? 0, H, layers: L, offDecW: layout.decoderWeight.offset, offDecB: layout.decoderBias.offset, blocks: 1,
          offDecT: decT.offDecT, ldDecT: decT.ldDecT,
        }),
      },
    }),
    x: N,
    y: 1,
  };
  return fused ? [...cells, draw] : [...cells, decode, draw];
}

/**
 * Which of sampleLaunches' `count` dispatches step k runs, in order: every layer's cell, the
 * decoder (where it has its own dispatch) once the prime is consumed, the draw.
 */
export function sampleStepLaunches(count: number, layers: number, primeLength: number, k: number): number[] {
  const cells = Array.from({ length: layers }, (_, l) => l);
  return count > layers + 1 && k + 1 >= primeLength ? [...cells, layers, layers + 1] : [...cells, count - 1];
}
