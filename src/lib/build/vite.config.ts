/**
 * The package's JavaScript (`npm run build:lib`, run by `npm pack` through `prepack`): Vite's
 * library mode bundles the three entry points of src/lib into dist/lib, with the WGSL kernels
 * (imported with `?raw`) inlined as strings, so nothing reads shaders/ or needs tsx at run time.
 * The dependencies and Node's built-in modules stay imports. The page's build is ../../../vite.config.ts.
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const repo = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const pkg = JSON.parse(readFileSync(repo('package.json'), 'utf8')) as { dependencies: Record<string, string> };
const deps = Object.keys(pkg.dependencies);
const builtins = new Set(builtinModules);
const external = (id: string) =>
  id.startsWith('node:') || builtins.has(id) || deps.some((d) => id === d || id.startsWith(`${d}/`));

/**
 * The package's `sideEffects` names only dist/lib/cli.js, and Vite applies it to our own sources
 * too: the CLI's main module, which runs the command when imported, is the one source file whose
 * import is its effect.
 */
const cliMainRuns: Plugin = {
  name: 'webgpu-rnn:cli-main-runs',
  transform(code, id) {
    return id.endsWith('/src/cli/main.ts') ? { code, moduleSideEffects: true } : null;
  },
};

export default defineConfig({
  root: repo('.'),
  publicDir: false,
  plugins: [cliMainRuns],
  // The CLI's help and hints name the command the package installs (src/cli/command.ts).
  define: { __WEBGPU_RNN_COMMAND__: JSON.stringify('npx webgpu-rnn') },
  logLevel: 'warn',
  build: {
    outDir: repo('dist/lib'),
    emptyOutDir: true,
    target: 'es2022',
    // Readable output: a user stepping into the library in a debugger sees the engine's code.
    minify: false,
    lib: {
      entry: { index: repo('src/lib/index.ts'), browser: repo('src/lib/browser.ts'), cli: repo('src/lib/cli.ts') },
      formats: ['es'],
    },
    rolldownOptions: {
      external,
      output: { entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
      checks: { bundlerTimings: false },
    },
  },
});
