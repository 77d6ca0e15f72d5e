/** shaders/embedding_grad.wgsl: layer 0's dW_ih for one-hot inputs, a sum per (unit, token) over the token's positions. */
import source from '../../../shaders/embedding_grad.wgsl?raw';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, grid1D, reads, UniformLayout, writes, type Launch, type Sized } from './common.ts';

const UNIFORMS = new UniformLayout({ H: 'u32', V: 'u32', offOut: 'u32', perRow: 'u32', rowStart: 'u32', rows: 'u32', pad0: 'u32', pad1: 'u32' });

export const EMBEDDING_GRAD = defineKernel({
  name: 'embedding_grad',
  wgsl: composeWgsl(source),
  cpuTwin: "src/cpu/cells.ts: gatePreactivationsBackward (dW_ih's `tokens` branch)",
  bindings: ['dZ', 'start', 'positions', 'out', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main', 'main_r4', 'main_4x4', 'main_rows'],
});

const WG = 64;

/**
 * The positions 0..n-1 grouped by their token (a counting sort), as embedding_grad.wgsl reads
 * them: the positions holding token v are positions[start[v] .. start[v + 1]); and as
 * input_gather.wgsl reads them, the y-th distinct token's at positions[runs[y] .. runs[y + 1]).
 */
export function positionsByToken(tokens: ArrayLike<number>, V: number): { start: Uint32Array; positions: Uint32Array; runs: Uint32Array } {
  const N = tokens.length;
  const start = new Uint32Array(V + 1);
  for (let p = 0; p < N; p++) start[tokens[p] + 1]++;
  for (let v = 0; v < V; v++) start[v + 1] += start[v];
  const fill = start.slice(0, V);
  const positions = new Uint32Array(N);
  for (let p = 0; p < N; p++) positions[fill[tokens[p]]++] = p;
  // Where each distinct token's positions start, in token order, then N (input_gather.wgsl's runs).
  const runs = new Uint32Array(Math.min(N, V) + 1).fill(N);
  let y = 0;
  for (let v = 0; v < V; v++) if (start[v + 1] > start[v]) runs[y++] = start[v];
  return { start, positions, runs };
}

/** Entry points (shaders/embedding_grad.wgsl) by the entries of out each invocation writes. */
export const EMBEDDING_GRAD_VARIANTS = { main: 1, main_r4: 4, main_4x4: 16 } as const;
export type EmbeddingGradVariant = keyof typeof EMBEDDING_GRAD_VARIANTS;

/** A buffer holding whole vec4s up to word `end` (a vec4 view's length rounds the size down). */
const holdsVec4s = (b: Sized, end: number) => b.size >= 16 * Math.ceil(end / 4);

/**
 * The variant with the most entries per invocation the shape allows: main_4x4 where H, V and
 * offOut are multiples of 4 (and the buffers hold whole vec4s), main_r4 where H is, main otherwise.
 * Side by side on lavapipe, 2048 positions (fastest of 5 rounds, a loaded machine): H=256 V=10,000
 * main 117 ms, main_r4 36, main_4x4 27 (the CPU twin 24); H=512 V=10,000: 288, 82, 46 (CPU 64);
 * H=256 V=87: 20, 1.2. (Eight rows of four tokens per invocation measured no faster than 4x4.)
 */
export function embeddingGradVariantFor(a: { dZ: Sized; out: Sized; H: number; V: number; N: number; offOut?: number }): EmbeddingGradVariant {
  const offOut = a.offOut ?? 0;
  if (a.H % 4 !== 0 || !holdsVec4s(a.dZ, a.N * a.H)) return 'main';
  if (a.V % 4 === 0 && offOut % 4 === 0 && holdsVec4s(a.out, offOut + a.H * a.V)) return 'main_4x4';
  return 'main_r4';
}

/**
 * out[offOut + i * V + v] = sum of dZ[p * H + i] over the N positions p of token v; with `rows`
 * (the split plan's main_rows, one entry per invocation), only rows i of that range, the first at offOut.
 */
export function embeddingGradLaunch<T extends Sized>(
  a: {
    dZ: T; start: T; positions: T; out: T; H: number; V: number; N: number; offOut?: number; variant?: EmbeddingGradVariant;
    rows?: { start: number; count: number };
  }, maxPerDim: number,
): Launch<T> {
  if (a.rows && a.variant) throw new Error(`internal: embedding_grad over a range of rows runs main_rows, not ${a.variant}`);
  const variant = a.variant ?? embeddingGradVariantFor(a);
  const rank = { main: 0, main_r4: 1, main_4x4: 2 } as const;
  const best = embeddingGradVariantFor(a);
  if (rank[variant] > rank[best]) throw new Error(`embedding_grad ${variant} cannot run H=${a.H} V=${a.V} offOut=${a.offOut ?? 0} (the best that can is ${best})`);
  const count = a.rows?.count ?? a.H;
  const g = grid1D(a.rows ? count * a.V : a.H * a.V / EMBEDDING_GRAD_VARIANTS[variant], WG, maxPerDim);
  const offOut = a.offOut ?? 0;
  return {
    kernel: EMBEDDING_GRAD,
    entryPoint: a.rows ? 'main_rows' : variant,
    constants: { WG },
    bindings: bindAll(EMBEDDING_GRAD, {
      dZ: { buffer: a.dZ, touches: [reads(0, a.N * a.H)] },
      start: { buffer: a.start, touches: [reads(0, a.V + 1)] },
      positions: { buffer: a.positions, touches: [reads(0, a.N)] },
      out: { buffer: a.out, touches: [writes(offOut, count * a.V)] },
      u: { uniforms: UNIFORMS.pack({ H: a.H, V: a.V, offOut, perRow: g.perRow, rowStart: a.rows?.start ?? 0, rows: count }) },
    }),
    x: g.x,
    y: g.y,
  };
}
