/**
 * Tensors in the flat parameter array start on 64-element (256-byte) boundaries: WebGPU's minimum
 * storage-buffer offset alignment, so a kernel may also bind one tensor on its own. Padding stays
 * zero forever (its gradient is zero, so neither optimizer moves it).
 */
export const ALIGN = 64;

export function alignUp(n: number, a = ALIGN): number {
  return Math.ceil(n / a) * a;
}
