/**
 * A real browser for the page's end-to-end tests: builds the page with Vite into a temporary
 * folder, serves it with `vite preview` on 127.0.0.1 and a free port, and drives Debian's
 * chromium through playwright-core (never a downloaded browser).
 *
 * WebGPU without a GPU: chromium's own SwiftShader answers the
 * default request once --enable-unsafe-webgpu is given; ANGLE on Mesa's llvmpipe (OpenGL ES,
 * about four times faster) answers the compatibility request when EGL runs surfaceless.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
export const gpuRequired = process.env.REQUIRE_GPU === '1';
export const RESULTS = join(REPO, 'test-results', 'web');

export const CHROMIUM_FLAGS = [
  '--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
];
/** Without it chromium blocklists CPU adapters: navigator.gpu exists but offers none. */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu'];
/** ANGLE on OpenGL ES for WebGPU's compatibility adapter (needs EGL_PLATFORM=surfaceless). */
export const ANGLE_FLAGS = ['--use-gl=angle', '--use-angle=gl-egl', '--use-webgpu-adapter=opengles', '--ignore-gpu-blocklist'];

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
}

export interface Site {
  url: string;
  close(): Promise<void>;
}

/** `vite build` of the page into a temporary folder, served by `vite preview`. */
export async function buildAndServe(): Promise<Site> {
  const outDir = mkdtempSync(join(tmpdir(), 'rnn-web-dist-'));
  await build({ configFile: join(REPO, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const server: PreviewServer = await preview({
    configFile: join(REPO, 'vite.config.ts'), logLevel: 'warn',
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false },
  });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a URL');
  return {
    url,
    close: async () => {
      await server.close();
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Messages the page printed, for failure reports. */
  console: string[];
  close(): Promise<void>;
}

/**
 * Chromium with a fresh profile; `angle` (default) adds the ANGLE/llvmpipe adapter to
 * SwiftShader's; `webgpu: false` leaves the CPU adapters blocklisted, as on a machine without a GPU.
 */
export async function launch(opts: { angle?: boolean; webgpu?: boolean; downloads?: string } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'rnn-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: ['--headless'],
    args: [...CHROMIUM_FLAGS, ...(opts.webgpu === false ? [] : [...WEBGPU_FLAGS, ...(opts.angle === false ? [] : ANGLE_FLAGS)])],
    env: { ...process.env, EGL_PLATFORM: 'surfaceless', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() },
    viewport: { width: 1440, height: 1000 },
    acceptDownloads: true,
    downloadsPath: opts.downloads,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const lines: string[] = [];
  const record = (p: Page) => {
    p.on('console', (m) => lines.push(`[${m.type()}] ${m.text()}`));
    p.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
  };
  record(page);
  context.on('page', record);
  return {
    context, page, console: lines,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export function resultsDir(): string {
  mkdirSync(RESULTS, { recursive: true });
  return RESULTS;
}

/** Polls `fn` (run in the page with `arg`) until it returns a truthy value. */
export async function waitFor<A, T>(page: Page, fn: (arg: A) => T, arg: A, what: string, timeout = 30_000): Promise<T> {
  const handle = await page.waitForFunction(fn as (a: unknown) => T, arg as unknown, { timeout, polling: 100 }).catch((e: Error) => {
    throw new Error(`timed out waiting for ${what}: ${e.message.split('\n')[0]}`);
  });
  return (await handle.jsonValue()) as T;
}
