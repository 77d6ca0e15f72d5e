/**
 * The web page end to end, in Debian's chromium (headless, WebGPU on ANGLE/llvmpipe or
 * SwiftShader): build with Vite, serve with `vite preview`, train on the embedded Reuters text,
 * sample, download and reload a checkpoint, survive a lost device, and render hostile text
 * inertly. Screenshots go to test-results/web/.
 *
 * Without chromium the suite skips with a loud warning, unless REQUIRE_GPU=1 (CI), where a
 * missing browser or a missing WebGPU adapter fails it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { createServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../../src/checkpoint/model-checkpoint.ts';
import type { AdapterOption, Status } from '../../src/web/protocol.ts';
import { browserMissing, buildAndServe, gpuRequired, launch, REPO, resultsDir, waitFor, type Browser, type Site } from './browser.ts';

const missing = browserMissing();
if (missing && !gpuRequired) console.warn(`\n!!! SKIPPING THE WEB PAGE TESTS: ${missing}\n`);

interface Debug {
  history(): { iterations: number[]; train: (number | null)[]; val: (number | null)[] };
  status(): Status | undefined;
  adapters(): AdapterOption[];
  loseDevice(): void;
}
declare global {
  interface Window {
    rnnDebug: Debug;
    pwned?: number;
  }
}

/** The command-line tool (`npm run rnn -- ...`), its standard output. */
function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(join(REPO, 'node_modules/.bin/tsx'), ['--import', './src/node/register-raw.mjs', 'src/cli/main.ts', ...args],
      { cwd: REPO, timeout: 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`rnn ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
  });
}

const text = async (page: Page, sel: string) => (await page.locator(sel).textContent()) ?? '';
const phase = (page: Page) => page.evaluate(() => window.rnnDebug.status()?.phase ?? 'none');

async function setValue(page: Page, sel: string, value: string): Promise<void> {
  await page.locator(sel).evaluate((el, v) => {
    const input = el as HTMLInputElement | HTMLSelectElement;
    input.value = v;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

async function waitPhase(page: Page, want: string[], timeout = 60_000): Promise<void> {
  await waitFor(page, (w) => w.includes(window.rnnDebug.status()?.phase ?? ''), want, `phase ${want.join('|')}`, timeout)
    .catch(async (e: Error) => {
      throw new Error(`${e.message}; phase ${await phase(page)}; errors: ${await page.locator('.error').allTextContents()}`);
    });
}

async function waitIteration(page: Page, atLeast: number, timeout = 60_000): Promise<void> {
  await waitFor(page, (n) => (window.rnnDebug.history().iterations.at(-1) ?? 0) >= n, atLeast, `iteration ${atLeast}`, timeout)
    .catch(async (e: Error) => {
      throw new Error(`${e.message}; errors: ${await page.locator('.error').allTextContents()}`);
    });
}

async function sampleNow(page: Page): Promise<string> {
  const before = await text(page, '#sample-meta');
  await page.locator('#sample-out').evaluate((el) => el.replaceChildren());
  await page.click('#sample');
  await waitFor(page, () => document.querySelector('#sample-out')!.textContent!.length > 0, null, 'a sample', 60_000);
  expect(await text(page, '#sample-error')).toBe('');
  void before;
  return text(page, '#sample-out');
}

describe.skipIf(Boolean(missing) && !gpuRequired)('web page in Chromium', () => {
  let site: Site;
  let browser: Browser;
  let page: Page;
  let hasGpu = false;
  const downloads = mkdtempSync(join(tmpdir(), 'rnn-downloads-'));

  beforeAll(async () => {
    if (missing) throw new Error(`REQUIRE_GPU=1 but ${missing}`);
    site = await buildAndServe();
    browser = await launch({ downloads });
    page = browser.page;
  }, 120_000);

  afterAll(async () => {
    if (browser && process.env.DEBUG_WEB) console.log(browser.console.join('\n'));
    await browser?.close();
    await site?.close();
    rmSync(downloads, { recursive: true, force: true });
  });

  it('loads, finds an adapter, trains on Reuters with the loss falling, and samples', async () => {
    await page.goto(`${site.url}?fast`);
    await waitFor(page, () => document.querySelector('#data-info')!.textContent!.includes('vocabulary'), null, 'the Reuters text');
    await waitFor(page, () => !document.querySelector('#adapter-badge-text')!.textContent!.startsWith('Looking'), null, 'the adapter probe');
    const adapters = await page.evaluate(() => window.rnnDebug.adapters());
    hasGpu = adapters.length > 0;
    if (!hasGpu) {
      const why = await text(page, '#banner-text');
      if (gpuRequired) throw new Error(`REQUIRE_GPU=1 but the page found no WebGPU adapter: ${why}`);
      console.warn(`\n!!! NO WEBGPU ADAPTER IN CHROMIUM; the page tests run on the CPU backend: ${why}\n`);
      expect(why).toContain('WebGPU is not available');
    } else {
      expect(await page.isChecked('input[name="backend"][value="gpu"]')).toBe(true);
      // The badge names the adapter and says whether it is software.
      expect(await text(page, '#adapter-badge-text')).toMatch(/^GPU · /);
      expect(await text(page, '#adapter-info')).toMatch(/fallback|software|hardware/i);
    }
    expect(await text(page, '#data-info')).toMatch(/^1,\d{3},\d{3} characters/);
    await page.screenshot({ path: join(resultsDir(), 'loaded.png'), fullPage: true });

    await setValue(page, '#hidden', '128');
    await setValue(page, '#seq', '32');
    await setValue(page, '#batch', '16');
    await setValue(page, '#lr', '0.01');
    await page.click('#start');
    await waitPhase(page, ['training']);
    await waitIteration(page, 50, 90_000);
    await waitFor(page, () => window.rnnDebug.history().val.some((v) => v !== null), null, 'a validation loss');
    await waitFor(page, () => document.querySelector('#sample-meta')!.textContent!.includes('iteration'), null, 'an automatic sample', 60_000);
    await page.click('#pause');
    await waitPhase(page, ['paused']);

    const h = await page.evaluate(() => window.rnnDebug.history());
    const losses = h.train.filter((v): v is number => v !== null);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const V = Number((await text(page, '#data-info')).match(/vocabulary (\d+)/)![1]);
    expect(losses[0]).toBeGreaterThan(Math.log(V) - 0.5);
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 10)) - 0.4);
    expect(Number(await text(page, '#stat-tps').then((t) => t.replace(/,/g, '')))).toBeGreaterThan(0);
    expect((await text(page, '#sample-out')).length).toBeGreaterThan(50);
    expect(await text(page, '#stat-backend')).toBe(hasGpu ? 'on the GPU' : 'on the CPU');
    await page.screenshot({ path: join(resultsDir(), 'trained.png'), fullPage: true });
  });

  it('reads the text by charset: letters (27 characters, always lowercase), raw (as it comes), clean', async () => {
    await page.goto(`${site.url}?fast`);
    await waitFor(page, () => document.querySelector('#data-info')!.textContent!.includes('vocabulary'), null, 'the Reuters text');
    const vocabOnPage = () => Number(/vocabulary (\d+)/.exec(document.querySelector('#data-info')!.textContent!)?.[1] ?? NaN);
    const clean = await page.evaluate(vocabOnPage);
    const vocabIs = (op: 'is' | 'above', n: number, what: string) => waitFor(page, ([o, want]) => {
      const v = Number(/vocabulary (\d+)/.exec(document.querySelector('#data-info')!.textContent!)?.[1] ?? NaN);
      return o === 'is' ? v === want : v > want;
    }, [op, n] as const, what);
    await setValue(page, '#charset', 'letters');
    await vocabIs('is', 27, 'the letters text');
    expect(await page.isChecked('#lowercase')).toBe(true);
    expect(await page.isDisabled('#lowercase')).toBe(true);
    expect(await text(page, '#preview')).toMatch(/^[a-z ]+$/);
    await page.locator('#data-card').screenshot({ path: join(resultsDir(), 'charset-letters.png') });
    await setValue(page, '#charset', 'raw');
    // The sign-offs and control bytes the cleaning removes are back.
    await vocabIs('above', clean, 'the raw text');
    expect(await page.isDisabled('#lowercase')).toBe(false);
    await setValue(page, '#charset', 'clean');
    await vocabIs('is', clean, 'the clean text again');
  });

  it('downloads a checkpoint and loads it back (same argmax sample), and keeps it across a reload', async () => {
    await page.uncheck('#auto-sample');
    await setValue(page, '#temperature', '0');
    await setValue(page, '#prime', 'the company said ');
    const before = await sampleNow(page);
    expect(before.startsWith('the company said ')).toBe(true);
    // The sampling controls: top-k 1 at temperature 0.8 is the argmax too; three samples side by
    // side each under a header; a top-p out of range is refused in the sample area.
    await setValue(page, '#temperature', '0.8');
    await setValue(page, '#top-k', '1');
    expect(await sampleNow(page)).toBe(before);
    await setValue(page, '#top-k', '0');
    await setValue(page, '#top-p', '0.9');
    await setValue(page, '#num-samples', '3');
    const three = await sampleNow(page);
    expect(three.match(/^sample \d of 3$/gm)).toEqual(['sample 1 of 3', 'sample 2 of 3', 'sample 3 of 3']);
    expect(three.split(/\n?\n?sample \d of 3\n/).filter(Boolean).every((t) => t.startsWith('the company said '))).toBe(true);
    expect(await text(page, '#sample-meta')).toContain('top-p 0.9');
    await setValue(page, '#top-p', '0');
    expect(await text(page, '#sample-error')).toMatch(/top-p must be in \(0, 1\]/);
    await setValue(page, '#top-p', '1');
    await setValue(page, '#num-samples', '1');
    await setValue(page, '#temperature', '0');
    expect(await sampleNow(page)).toBe(before);
    const iteration = (await page.evaluate(() => window.rnnDebug.status()?.iteration))!;

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^reuters-extract-rnn128-char-i${iteration}-val\\d+\\.\\d{3}\\.safetensors$`));
    const file = join(downloads, download.suggestedFilename());
    await download.saveAs(file);
    // The CLI's reader takes it: same format, same names.
    const ck = decodeCheckpoint(new Uint8Array(readFileSync(file)), file);
    expect(ck.model).toEqual({ cell: 'rnn', vocabSize: ck.tokenizer.vocab.length, hiddenSize: 128, layers: 1, dropout: 0 });
    expect(ck.progress.iteration).toBe(iteration);
    expect(ck.progress.corpus).toBe('reuters-extract');
    expect(ck.progress.lowercase).toBe(true);

    // A fresh model samples differently; loading the file brings the trained one back.
    await page.click('#reset');
    await waitPhase(page, ['ready']);
    expect(await page.evaluate(() => window.rnnDebug.status()?.iteration)).toBe(0);
    await page.setInputFiles('#load-input', file);
    await waitFor(page, (it) => window.rnnDebug.status()?.iteration === it && window.rnnDebug.status()?.phase === 'paused', iteration, 'the loaded model');
    expect(await text(page, '#notice-text')).toContain(`Loaded ${download.suggestedFilename()}`);
    expect(await sampleNow(page)).toBe(before);
    expect(await page.evaluate(() => window.rnnDebug.status()?.canTrain)).toBe(true);

    // The last model stays in IndexedDB: a reload restores it.
    await page.reload();
    await waitFor(page, (it) => window.rnnDebug.status()?.iteration === it && window.rnnDebug.status()?.phase === 'paused', iteration, 'the restored model', 60_000);
    expect(await text(page, '#saved')).toContain(`iteration ${iteration}`);
    await page.uncheck('#auto-sample');
    await setValue(page, '#temperature', '0');
    await setValue(page, '#prime', 'the company said ');
    expect(await sampleNow(page)).toBe(before);
  });

  it('moves a model between the GPU and the CPU backends: the same weights, and it samples and trains on each', async (ctx) => {
    if (!hasGpu) ctx.skip();
    let n = 0;
    const download = async () => {
      const [d] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const file = join(downloads, `move-${n++}-${d.suggestedFilename()}`);
      await d.saveAs(file);
      return decodeCheckpoint(new Uint8Array(readFileSync(file)), file);
    };
    const moveTo = async (kind: 'gpu' | 'cpu', iteration: number) => {
      await page.check(`input[name="backend"][value="${kind}"]`);
      await waitFor(page, ([k, it]) => window.rnnDebug.status()?.backend?.kind === k && window.rnnDebug.status()?.phase === 'paused' &&
        window.rnnDebug.status()?.iteration === it, [kind, iteration] as const, `the model on the ${kind}`);
      expect(await text(page, '#stat-backend')).toBe(`on the ${kind === 'gpu' ? 'GPU' : 'CPU'}`);
    };
    const train = async (iterations: number) => {
      const from = (await page.evaluate(() => window.rnnDebug.status()?.iteration))!;
      await page.click('#start');
      await waitIteration(page, from + iterations);
      await page.click('#pause');
      await waitPhase(page, ['paused']);
    };
    const losses = () => page.evaluate(() => window.rnnDebug.history().train.filter((v): v is number => v !== null));
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

    // The model trained on the GPU above, restored on it after the reload: a few more iterations put its losses on the chart.
    await waitPhase(page, ['paused']);
    expect((await page.evaluate(() => window.rnnDebug.status()))?.backend?.kind).toBe('gpu');
    await page.uncheck('#auto-sample');
    await train(5);
    const gpuLosses = await losses();
    const fromGpu = await download();

    await moveTo('cpu', fromGpu.progress.iteration);
    const onCpu = await download();
    expect(onCpu.state.params).toEqual(fromGpu.state.params);
    expect(onCpu.state.optM).toEqual(fromGpu.state.optM);
    expect(onCpu.state.hidden).toEqual(fromGpu.state.hidden);
    expect((await sampleNow(page)).length).toBeGreaterThan(10);
    // Training goes on from the GPU's model, not from scratch: its losses start where the GPU's ended.
    await train(5);
    const onCpuLosses = (await losses()).slice(gpuLosses.length);
    expect(gpuLosses.length).toBeGreaterThanOrEqual(5);
    expect(onCpuLosses.length).toBeGreaterThanOrEqual(5);
    expect(mean(onCpuLosses.slice(0, 5))).toBeLessThan(mean(gpuLosses.slice(-5)) + 0.3);

    const trainedOnCpu = await download();
    expect(trainedOnCpu.progress.iteration).toBeGreaterThanOrEqual(fromGpu.progress.iteration + 5);
    await moveTo('gpu', trainedOnCpu.progress.iteration);
    expect((await download()).state.params).toEqual(trainedOnCpu.state.params);
    expect((await sampleNow(page)).length).toBeGreaterThan(10);
    await train(5);
    expect(await text(page, '#stat-backend')).toBe('on the GPU');
  });

  it('stops with the model kept when the GPU device is lost, and carries on on the CPU', async (ctx) => {
    if (!hasGpu) ctx.skip();
    await page.check('#auto-sample');
    const kept = (await page.evaluate(() => window.rnnDebug.status()?.iteration))!;
    await page.click('#start');
    await waitIteration(page, kept + 5);
    await page.evaluate(() => window.rnnDebug.loseDevice());
    await waitPhase(page, ['lost']);
    expect(await page.isVisible('#banner')).toBe(true);
    expect(await text(page, '#banner-text')).toMatch(/^The GPU device was lost \(.+\)\. Training stopped; the model is kept as of iteration \d+/);
    await page.screenshot({ path: join(resultsDir(), 'device-lost.png'), fullPage: true });
    await page.click('#banner-cpu');
    await waitPhase(page, ['paused']);
    const s = (await page.evaluate(() => window.rnnDebug.status()))!;
    expect(s.backend?.kind).toBe('cpu');
    expect(s.iteration).toBeGreaterThanOrEqual(kept);
    expect(await page.isVisible('#banner')).toBe(false);
    expect((await sampleNow(page)).length).toBeGreaterThan(10);
    await page.click('#start');
    await waitIteration(page, s.iteration + 2);
    await page.click('#pause');
    await waitPhase(page, ['paused']);
  });

  it('says what does not fit on the adapter before allocating anything', async (ctx) => {
    if (!hasGpu) ctx.skip();
    await page.check('input[name="backend"][value="gpu"]');
    await waitPhase(page, ['paused', 'ready']);
    await setValue(page, '#hidden', '4096');
    await setValue(page, '#batch', '2048');
    expect(await text(page, '#model-error')).toMatch(/^Does not fit: .+ needs .+ but this adapter allows .+ per (buffer|binding)/);
    expect(await page.isDisabled('#reset')).toBe(true);
    await setValue(page, '#batch', '16');
    await setValue(page, '#hidden', '128');
    expect(await text(page, '#model-error')).toBe('');
  });

  it('trains a 2-layer LSTM with dropout chosen in the model form, and samples from it', async () => {
    if (hasGpu) await page.check('input[name="backend"][value="gpu"]');
    await waitPhase(page, ['paused', 'ready']);
    try {
      await setValue(page, '#cell', 'lstm');
      await setValue(page, '#layers', '2');
      await setValue(page, '#dropout', '0.1');
      await setValue(page, '#hidden', '64');
      await setValue(page, '#seq', '16');
      await setValue(page, '#batch', '16');
      await setValue(page, '#lr', '0.03');
      await page.click('#reset');
      await waitPhase(page, ['ready']);
      expect(await text(page, '#engine-info')).toMatch(/^LSTM · 2 layers × hidden 64 · dropout 0\.1 · /);
      // On the GPU the kernel tuner's choice (auto: timed on first use, then from IndexedDB) is shown.
      if (hasGpu) expect(await text(page, '#engine-info')).toMatch(/ · kernels: matmul [\w-]+ for \d+ shapes?/);
      await page.click('#start');
      await waitIteration(page, 150, 120_000);
      await page.click('#pause');
      await waitPhase(page, ['paused']);
      // From the uniform guess, log V, to clearly below the unigram loss (~2.9 nats on this text):
      // the stacked LSTM has learned from context, not only letter frequencies.
      const losses = (await page.evaluate(() => window.rnnDebug.history().train)).filter((v): v is number => v !== null);
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      const V = Number((await text(page, '#data-info')).match(/vocabulary (\d+)/)![1]);
      expect(losses[0]).toBeGreaterThan(Math.log(V) - 0.5);
      expect(mean(losses.slice(-10)), `losses ${losses.map((l) => l.toFixed(2)).join(' ')}`).toBeLessThan(2.7);
      expect(await text(page, '#stat-backend')).toBe(hasGpu ? 'on the GPU' : 'on the CPU');
      expect((await sampleNow(page)).length).toBeGreaterThan(10);
    } finally {
      // Back to a one-layer rnn for the tests below.
      await setValue(page, '#cell', 'rnn');
      await setValue(page, '#layers', '1');
      await setValue(page, '#dropout', '0');
      await setValue(page, '#batch', '16');
      await page.click('#reset');
      await waitPhase(page, ['ready']);
    }
  });

  it('renders a hostile corpus and file name as inert text', async () => {
    const name = '<img src=x onerror="window.pwned=1">.txt';
    const payload = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1"><b>bold</b> &amp; "quotes"\n';
    await page.setInputFiles('#file-input', { name, mimeType: 'text/plain', buffer: Buffer.from(payload.repeat(300)) });
    await waitFor(page, () => document.querySelector('#data-info')!.textContent!.includes('vocabulary') && document.querySelector('#file-name')!.textContent!.startsWith('<img'), null, 'the hostile text');
    expect(await text(page, '#file-name')).toBe(name);
    expect(await text(page, '#preview')).toContain('<script>window.pwned=1</script><img src=x onerror=');
    await page.check('input[name="backend"][value="cpu"]');
    await setValue(page, '#hidden', '64');
    await setValue(page, '#seq', '16');
    await setValue(page, '#batch', '4');
    await setValue(page, '#lr', '0.02');
    await setValue(page, '#temperature', '0.5');
    await setValue(page, '#prime', '<img src=x onerror="window.pwned=1">');
    await page.click('#reset');
    await waitPhase(page, ['ready']);
    await page.click('#start');
    await waitIteration(page, 60);
    await page.click('#pause');
    await waitPhase(page, ['paused']);
    const sample = await sampleNow(page);
    expect(sample.startsWith('<img src=x onerror="window.pwned=1">')).toBe(true);
    // The checkpoint's file name is made safe too.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toMatch(/^img-src-x-onerror-window\.pwned-1-rnn64-char-i\d+/);
    await download.cancel().catch(() => undefined);

    const dom = await page.evaluate(() => ({
      pwned: window.pwned,
      images: document.querySelectorAll('img').length,
      scripts: [...document.querySelectorAll('script')].map((s) => s.getAttribute('src')),
      sampleChildren: [...document.querySelector('#sample-out')!.children].map((c) => `${c.tagName}.${c.className}`),
      bold: document.querySelectorAll('b').length,
    }));
    expect(dom.pwned).toBeUndefined();
    expect(dom.images).toBe(0);
    expect(dom.bold).toBe(0);
    expect(dom.scripts).toHaveLength(1);
    expect(dom.scripts[0]).toMatch(/^\.\/assets\/index-.*\.js$/);
    expect(dom.sampleChildren).toEqual(['SPAN.prime']);
    await page.screenshot({ path: join(resultsDir(), 'hostile.png'), fullPage: true });

    // A file that is not UTF-8 gets the CLI's one-line message.
    await page.setInputFiles('#file-input', { name: 'latin1.txt', mimeType: 'text/plain', buffer: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]) });
    await waitFor(page, () => document.querySelector('#data-error')!.textContent !== '', null, 'the UTF-8 error');
    expect(await text(page, '#data-error')).toBe('latin1.txt: not valid UTF-8 at byte 3 (try converting it with iconv -f latin1 -t utf-8)');
    expect(browser.console.filter((l) => l.startsWith('[pageerror]'))).toEqual([]);
  });

  it('moves checkpoints between the page and the command line, both ways', async (ctx) => {
    if (!existsSync(join(REPO, 'src/cli/main.ts'))) {
      console.warn('\n!!! SKIPPING the CLI round trip: src/cli/main.ts is not here\n');
      ctx.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'rnn-cli-'));
    try {
      const cliFile = join(dir, 'cli.safetensors');
      await cli(['train', '--corpus', 'shakespeare', '--hidden', '32', '--seq-length', '16', '--batch-size', '8', '--lr', '0.01',
        '--iterations', '150', '--backend', 'cpu', '--checkpoint', cliFile, '--eval-every', '0', '--sample-every', '0']);
      const cliSample = (file: string) => cli(['sample', '--checkpoint', file, '--argmax', '--prime', 'the ', '--length', '80', '--backend', 'cpu']);

      // CLI -> page: the page finds the Shakespeare text the CLI trained on and can keep training.
      await page.check('input[name="backend"][value="cpu"]');
      await page.setInputFiles('#load-input', cliFile);
      await waitFor(page, () => window.rnnDebug.status()?.model?.corpus === 'shakespeare' && window.rnnDebug.status()?.phase === 'paused', null, 'the CLI model');
      expect(await page.evaluate(() => window.rnnDebug.status()?.canTrain)).toBe(true);
      expect(await page.isChecked('input[name="corpus"][value="shakespeare"]')).toBe(true);
      await page.uncheck('#auto-sample');
      await setValue(page, '#temperature', '0');
      await setValue(page, '#prime', 'the ');
      await setValue(page, '#sample-length', '80');
      const fromCli = await cliSample(cliFile);
      expect(fromCli.trim().length).toBeGreaterThan(20);
      expect(await sampleNow(page)).toBe(fromCli.replace(/\n$/, ''));

      // Page -> CLI: train on, download, and the CLI samples the same text.
      await page.click('#start');
      await waitIteration(page, 170);
      await page.click('#pause');
      await waitPhase(page, ['paused']);
      const onPage = await sampleNow(page);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const pageFile = join(dir, download.suggestedFilename());
      await download.saveAs(pageFile);
      expect(download.suggestedFilename()).toMatch(/^shakespeare-rnn32-char-i\d{3,}-val\d+\.\d{3}\.safetensors$/);
      expect((await cliSample(pageFile)).replace(/\n$/, '')).toBe(onPage);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says so when there is no WebGPU, and trains on the CPU', async () => {
    const plain = await launch({ webgpu: false });
    try {
      const p = plain.page;
      await p.goto(`${site.url}?fast`);
      await waitFor(p, () => document.querySelector('#data-info')!.textContent!.includes('vocabulary'), null, 'the text');
      await waitFor(p, () => !document.querySelector('#adapter-badge-text')!.textContent!.startsWith('Looking'), null, 'the adapter probe');
      expect(await p.isVisible('#banner')).toBe(true);
      expect(await text(p, '#banner-text')).toMatch(/^WebGPU is not available: .*The CPU backend works everywhere, only slower\.$/);
      expect(await text(p, '#adapter-badge-text')).toBe('No WebGPU · CPU backend');
      expect(await p.isDisabled('input[name="backend"][value="gpu"]')).toBe(true);
      expect(await p.isChecked('input[name="backend"][value="cpu"]')).toBe(true);
      await setValue(p, '#hidden', '64');
      await setValue(p, '#seq', '16');
      await setValue(p, '#batch', '8');
      await p.click('#start');
      await waitIteration(p, 10);
      await p.click('#pause');
      await waitPhase(p, ['paused']);
      expect(await text(p, '#stat-backend')).toBe('on the CPU');
      await p.screenshot({ path: join(resultsDir(), 'no-webgpu.png'), fullPage: true });
    } finally {
      await plain.close();
    }
  });

  it('runs under the Vite dev server too (npm run dev)', async () => {
    const server = await createServer({ configFile: join(REPO, 'vite.config.ts'), logLevel: 'warn', server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false } });
    await server.listen();
    try {
      const url = server.resolvedUrls?.local[0];
      const devPage = await browser.context.newPage();
      await devPage.goto(url!);
      await waitFor(devPage, () => document.querySelector('#data-info')!.textContent!.includes('vocabulary'), null, 'the text via the dev server', 60_000);
      await waitFor(devPage, () => !document.querySelector('#adapter-badge-text')!.textContent!.startsWith('Looking'), null, 'the adapter probe via the dev server');
      await devPage.close();
    } finally {
      await server.close();
    }
  });
});
