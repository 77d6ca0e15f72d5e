/**
 * The web page (src/web): `npm run dev` serves it, `npm run build` writes static files to dist/web/
 * (the package's own build, src/lib/build/, writes dist/lib/).
 * The page runs the same engine and WGSL as the CLI (imported from src/ and shaders/ with ?raw);
 * the corpora are prepared here at build time from the npm packages (src/web/build/corpora-plugin.ts).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { corporaPlugin } from './src/web/build/corpora-plugin.ts';

const repoRoot = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL('./src/web', import.meta.url)),
  // Relative asset paths: dist/ works from any folder of any static host.
  base: './',
  publicDir: false,
  plugins: [corporaPlugin()],
  worker: { format: 'es' },
  server: {
    host: '127.0.0.1',
    // The engine (src/) and the kernels (shaders/) sit outside the page's root.
    fs: { allow: [repoRoot] },
  },
  preview: { host: '127.0.0.1' },
  build: {
    outDir: fileURLToPath(new URL('./dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // uPlot and the engine together stay far below this; the corpora are separate assets.
    chunkSizeWarningLimit: 400,
    // Preparing the corpora takes a few seconds by design; no need to be told each build.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
});
