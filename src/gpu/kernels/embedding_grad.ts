/** shaders/embedding_grad.wgsl: layer 0's dW_ih for one-hot inputs, a sum per (unit, token) over the token's positions. */
import source from '../../../shaders/embedding_grad.wgsl?raw';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, grid1D, reads, UniformLayout, writes, type Launch } from './common.ts';

const UNIFORMS = new UniformLayout({ H: 'u32', V: 'u32', offOut: 'u32', perRow: 'u32', rowStart: 'u32', rows: 'u32', pad0: 'u32', pad1: 'u32' });

export const EMBEDDING_GRAD = defineKernel({
  name: 'embedding_grad',
  wgsl: composeWgsl(source),
  cpuTwin: "src/cpu/cells.ts: gatePreactivationsBackward (dW_ih's `tokens` branch)",
  bindings: ['dZ', 'start', 'positions', 'out', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main', 'main_rows'],
});

const WG = 64;

/**
 * The positions 0..n-1 grouped by their token (a counting sort), as embedding_grad.wgsl reads
 * them: the positions holding token v are positions[start[v] .. start[v + 1]).
 */
export function positionsByToken(tokens: ArrayLike<number>, V: number): { start: Uint32Array; positions: Uint32Array } {
  const start = new Uint32Array(V + 1);
  for (let p = 0; p < tokens.length; p++) start[tokens[p] + 1]++;
  for (let v = 0; v < V; v++) start[v + 1] += start[v];
  const fill = start.slice(0, V);
  const positions = new Uint32Array(tokens.length);
  for (let p = 0; p < tokens.length; p++) positions[fill[tokens[p]]++] = p;
  return { start, positions };
}

/**
 * out[offOut + i * V + v] = sum of dZ[p * H + i] over the N positions p of token v; with `rows`
 * (the split plan's main_rows), only rows i of that range, the first at offOut.
 */
export function embeddingGradLaunch<T>(
  a: { dZ: T; start: T; positions: T; out: T; H: number; V: number; N: number; offOut?: number; rows?: { start: number; count: number } },
  maxPerDim: number,
): Launch<T> {
  const count = a.rows?.count ?? a.H;
  const g = grid1D(count * a.V, WG, maxPerDim);
  const offOut = a.offOut ?? 0;
  return {
    kernel: EMBEDDING_GRAD,
    entryPoint: a.rows ? 'main_rows' : 'main',
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
