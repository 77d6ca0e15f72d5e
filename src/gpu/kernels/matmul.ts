/**
 * shaders/matmul.wgsl: C = op(A) op(B) (+ bias), register-blocked, with vec4 variants chosen per
 * layout, and a workgroup-memory tiled variant; the named candidates the per-adapter tuner
 * (src/gpu/tuner.ts) times, and the key it files a product's choice under.
 */
import source from '../../../shaders/matmul.wgsl?raw';
import { composeWgsl } from '../wgsl.ts';
import { bindAll, defineKernel, reads, UniformLayout, writes, type Launch, type Region, type Sized } from './common.ts';

const UNIFORMS = new UniformLayout({
  M: 'u32', N: 'u32', K: 'u32', hasBias: 'u32',
  lda: 'u32', ldb: 'u32', ldc: 'u32', offBias: 'u32',
  offA: 'u32', offB: 'u32', offC: 'u32', pad: 'u32',
});

export const MATMUL = defineKernel({
  name: 'matmul',
  wgsl: composeWgsl(source),
  cpuTwin: "test/kernels.test.ts: checkMatmul's float64 triple loop (in training: the output layer and weight-gradient products of src/cpu/stacked.ts)",
  bindings: ['A', 'B', 'C', 'u'],
  uniforms: { u: UNIFORMS },
  entryPoints: ['main', 'main_vb', 'main_vab', 'main_tiled'],
});

/**
 * The entry points and the block of C each invocation computes, so a dispatch covers N with
 * ceil(N / (cols * wgX)) workgroups and M with ceil(M / (rows * wgY)).
 */
export const MATMUL_VARIANTS = {
  /** Register-blocked 8x8, scalar loads: any layout. */
  main: { rows: 8, cols: 8 },
  /** 8x16 with op(B) read and accumulated as vec4s: row-major B, offB and ldb multiples of 4. */
  main_vb: { rows: 8, cols: 16 },
  /** main_vb with op(A) read as vec4s too: transposed A, offA and lda multiples of 4. */
  main_vab: { rows: 8, cols: 16 },
  /** One element per invocation from square tiles in workgroup memory (wgX = wgY): any layout. */
  main_tiled: { rows: 1, cols: 1 },
} as const;
export type MatmulVariant = keyof typeof MATMUL_VARIANTS;

/** Launch parameters of one product: the entry point ('auto': matmulVariantFor) and the workgroup shape. */
export interface MatmulTiling {
  variant: MatmulVariant | 'auto';
  wgX: number;
  wgY: number;
}

/** What training uses: the best vec4 variant the layout allows, 8x8 invocations per workgroup. */
export const DEFAULT_MATMUL_TILING: MatmulTiling = { variant: 'auto', wgX: 8, wgY: 8 };

/** One product's shape and layout; offsets and leading dimensions in floats. */
export interface MatmulShape {
  M: number; N: number; K: number;
  transA?: boolean; transB?: boolean;
  offA?: number; lda: number;
  offB?: number; ldb: number;
  offC?: number; ldc: number;
  /** Offset of the bias in B's buffer, added to every row of C. */
  bias?: number;
}

/** What the variant choice reads: the operands' layouts and their buffers' sizes. */
export type MatmulLayout = Omit<MatmulShape, 'offC' | 'ldc'> & { A: Sized; B: Sized };

/** A product's shape with its operands' buffers. */
export interface MatmulArgs<T extends Sized> extends MatmulShape {
  A: T; B: T; C: T;
}

/**
 * Whether a vec4 view can read an operand: offset and leading dimension multiples of 4, and the
 * buffer holding whole vec4s up to the operand's end (a vec4 array's length rounds the buffer
 * size down, so a tail of 1-3 floats is out of its reach).
 */
function vec4Readable(buffer: Sized, off: number, ld: number, rows: number): boolean {
  return off % 4 === 0 && ld % 4 === 0 && buffer.size >= 4 * (off + rows * ld);
}

/**
 * The fastest entry point whose vec4 loads this product's layout allows: main_vab for transposed A
 * and row-major B (the weight gradients), main_vb for row-major B, main otherwise.
 */
export function matmulVariantFor(s: MatmulLayout): MatmulVariant {
  if (s.transB) return 'main';
  if (!vec4Readable(s.B, s.offB ?? 0, s.ldb, s.K)) return 'main';
  // main_vb reads the bias through the vec4 view too.
  if (s.bias !== undefined && s.B.size < 4 * (Math.ceil((s.bias + s.N) / 4) * 4)) return 'main';
  if (s.transA && vec4Readable(s.A, s.offA ?? 0, s.lda, s.K)) return 'main_vab';
  return 'main_vb';
}

/** The entry point a tiling selects for this product; throws if a forced vec4 variant does not fit its layout. */
export function resolveMatmulVariant(s: MatmulLayout, t: MatmulTiling): MatmulVariant {
  const best = matmulVariantFor(s);
  if (t.variant === 'auto') return best;
  if (t.variant === 'main_tiled') {
    if (t.wgX !== t.wgY) throw new Error(`main_tiled needs a square workgroup, not ${t.wgX}x${t.wgY}`);
    return t.variant;
  }
  const rank = { main: 0, main_tiled: 0, main_vb: 1, main_vab: 2 } as const;
  if (rank[t.variant] > rank[best]) throw new Error(`matmul variant ${t.variant} cannot read this layout (the best that can is ${best})`);
  return t.variant;
}

/**
 * The tilings the tuner chooses among, by the name it prints and caches. The first is what
 * training uses untuned (DEFAULT_MATMUL_TILING); 'registers' entries are the register-blocked
 * entry point the layout allows (main, main_vb or main_vab) under a workgroup shape, 'shared' ones
 * main_tiled with that tile.
 */
export const MATMUL_CANDIDATES: Readonly<Record<string, MatmulTiling>> = {
  'registers-8x8': DEFAULT_MATMUL_TILING,
  'registers-16x4': { variant: 'auto', wgX: 16, wgY: 4 },
  'shared-8x8': { variant: 'main_tiled', wgX: 8, wgY: 8 },
  'shared-16x16': { variant: 'main_tiled', wgX: 16, wgY: 16 },
};
export const DEFAULT_MATMUL_CANDIDATE = 'registers-8x8';

/** The candidates a device can run: workgroup invocations and workgroup memory within its limits. */
export function matmulCandidatesFor(limits: { maxComputeInvocationsPerWorkgroup: number; maxComputeWorkgroupStorageSize: number }): string[] {
  return Object.entries(MATMUL_CANDIDATES).filter(([, t]) => t.wgX * t.wgY <= limits.maxComputeInvocationsPerWorkgroup &&
    (t.variant !== 'main_tiled' || 2 * 4 * t.wgX * t.wgY <= limits.maxComputeWorkgroupStorageSize)).map(([name]) => name);
}

/**
 * What a tuned choice is filed under: the product's shape, its operands' orientation, and the
 * register-blocked entry point its layout allows (which decides what 'registers' candidates run).
 */
export function matmulShapeKey(s: MatmulLayout): string {
  return `${s.M}x${s.N}x${s.K} ${s.transA ? 'At' : 'A'}${s.transB ? 'Bt' : 'B'} ${matmulVariantFor(s)}`;
}

/** The words of a row-major [rows, cols] operand with leading dimension ld at off. */
function matrix(off: number, rows: number, cols: number, ld: number): { offset: number; count: number } {
  return { offset: off, count: rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols };
}

export function matmulLaunch<T extends Sized>(s: MatmulArgs<T>, tiling: MatmulTiling = DEFAULT_MATMUL_TILING): Launch<T> {
  const variant = resolveMatmulVariant(s, tiling);
  const block = MATMUL_VARIANTS[variant];
  const a = s.transA ? matrix(s.offA ?? 0, s.K, s.M, s.lda) : matrix(s.offA ?? 0, s.M, s.K, s.lda);
  const b = s.transB ? matrix(s.offB ?? 0, s.N, s.K, s.ldb) : matrix(s.offB ?? 0, s.K, s.N, s.ldb);
  const c = matrix(s.offC ?? 0, s.M, s.N, s.ldc);
  const bTouches: Region[] = [reads(b.offset, b.count)];
  if (s.bias !== undefined) bTouches.push(reads(s.bias, s.N));
  return {
    kernel: MATMUL,
    entryPoint: variant,
    constants: { WG_X: tiling.wgX, WG_Y: tiling.wgY, TRANS_A: s.transA ? 1 : 0, TRANS_B: s.transB ? 1 : 0 },
    bindings: bindAll(MATMUL, {
      A: { buffer: s.A, touches: [reads(a.offset, a.count)] },
      B: { buffer: s.B, touches: bTouches },
      C: { buffer: s.C, touches: [writes(c.offset, c.count)] },
      u: {
        uniforms: UNIFORMS.pack({
          M: s.M, N: s.N, K: s.K, hasBias: s.bias === undefined ? 0 : 1,
          lda: s.lda, ldb: s.ldb, ldc: s.ldc, offBias: s.bias ?? 0,
          offA: s.offA ?? 0, offB: s.offB ?? 0, offC: s.offC ?? 0,
        }),
      },
    }),
    x: Math.max(1, Math.ceil(s.N / (block.cols * tiling.wgX))),
    y: Math.max(1, Math.ceil(s.M / (block.rows * tiling.wgY))),
  };
}
