/**
 * Packs the real-GPU bench into one folder that runs on an x86-64 Linux machine with no Node or
 * npm (README, "On a real GPU"):
 *   npx tsx bench/real-gpu/pack.ts [--out bench/real-gpu/packed]
 * The folder (ignored by git) holds this Node binary, stripped and `xz -9`ed; the bench bundled
 * into one module (src/ and bench/ with the WGSL sources inlined); dawn.node from the `webgpu`
 * package; the Vulkan loader and libGLdispatch as fallbacks for a machine without them; and run.sh.
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type Plugin } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values: args } = parseArgs({ options: { out: { type: 'string', default: join(here, 'packed') } } });
const out = args.out!;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`pack on x86-64 Linux (the GPU machine's platform), not ${process.platform}-${process.arch}`);
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'app', 'node_modules', 'webgpu', 'dist', 'linux-x64'), { recursive: true });
mkdirSync(join(out, 'lib'), { recursive: true });

// `import source from '...wgsl?raw'` (Vite's spelling, src/node/raw-hooks.mjs in Node): the file's text.
const raw: Plugin = {
  name: 'raw',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (a) => ({ path: join(a.resolveDir, a.path.replace(/\?raw$/, '')), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (a) => ({ contents: readFileSync(a.path, 'utf8'), loader: 'text' }));
  },
};
// Splitting keeps the peers (TensorFlow.js, brain.js: imported on demand by bench/training.ts) in
// chunks of their own that this bench never loads; their packages stay out of the folder.
await build({
  entryPoints: [join(here, 'main.ts')], bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20',
  outdir: join(out, 'app'), plugins: [raw], external: ['webgpu', 'koffi', '@tensorflow/*', 'brain.js'], logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
writeFileSync(join(out, 'app', 'package.json'), '{ "type": "module" }\n');

const webgpu = join(root, 'node_modules', 'webgpu');
for (const f of ['package.json', 'index.js', 'LICENSE.md', 'dist/linux-x64/dawn.node']) copyFileSync(join(webgpu, f), join(out, 'app', 'node_modules', 'webgpu', f));

// Libraries a bare machine may lack, each used only where the machine has none (run.sh asks
// ldconfig): the Vulkan loader, and glvnd's libGLdispatch, which NVIDIA's Vulkan driver
// (libGLX_nvidia.so.0) links against.
for (const name of ['libvulkan.so.1', 'libGLdispatch.so.0']) {
  const found = [`/usr/lib/x86_64-linux-gnu/${name}`, `/usr/lib64/${name}`].find((p) => { try { return statSync(p).isFile(); } catch { return false; } });
  if (found) copyFileSync(realpathSync(found), join(out, 'lib', name));
  else console.log(`note: no ${name} here to pack; the GPU machine must have its own`);
}

// Node: stripped of its debug info, then xz -9 (run.sh unpacks it with xz, or Python's lzma).
const node = join(out, 'node');
copyFileSync(process.execPath, node);
chmodSync(node, 0o755);
try {
  execFileSync('strip', ['--strip-all', node]);
} catch {
  console.log('note: strip failed; the node binary is packed as it is');
}
execFileSync('xz', ['-9', '-T0', node]);

copyFileSync(join(here, 'run.sh'), join(out, 'run.sh'));
chmodSync(join(out, 'run.sh'), 0o755);
writeFileSync(join(out, 'VERSION'), `node ${process.version} (linux-x64), webgpu ${JSON.parse(readFileSync(join(webgpu, 'package.json'), 'utf8')).version}, packed ${new Date().toISOString()} from ${execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).toString().trim()}\n`);

const files = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)]));
const sizes = files(out).map((f) => ({ f: relative(out, f), n: statSync(f).size }));
const total = sizes.reduce((a, b) => a + b.n, 0);
for (const s of sizes.filter((x) => x.n > 2 ** 20)) console.log(`  ${s.f.padEnd(44)} ${mib(s.n)}`);
console.log(`packed ${relative(process.cwd(), out) || out}: ${sizes.length} files, ${mib(total)}; run it there with ${relative(process.cwd(), join(out, 'run.sh'))} [--quick]`);
