// Node module hooks so that `import src from './x.wgsl?raw'` works outside Vite too
// (CLI and benchmarks under tsx), exactly as Vite and vitest resolve it.
export async function load(url, context, nextLoad) {
  if (url.endsWith('?raw')) {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL(url.slice(0, -4)), 'utf8');
    return { format: 'module', shortCircuit: true, source: `export default ${JSON.stringify(text)};` };
  }
  return nextLoad(url, context);
}
