/**
 * Tokens per second of the page's engine in headless chromium, per adapter and hidden size, with
 * the page's own benchmark panel (GPU against CPU), then a live training run.
 *   npx tsx test/web/measure.ts [hidden sizes, default 256,1024] [seconds of live training, default 60]
 * Screenshots and a JSON summary go to test-results/web/.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { AdapterOption, Status } from '../../src/web/protocol.ts';
import { buildAndServe, launch, resultsDir, waitFor } from './browser.ts';

const sizes = (process.argv[2] ?? '256,1024').split(',').map(Number);
const liveSeconds = Number(process.argv[3] ?? 60);

interface Debug {
  adapters(): AdapterOption[];
  status(): Status | undefined;
  history(): { iterations: number[]; train: (number | null)[]; val: (number | null)[] };
}
const dbg = (page: Page) => page.evaluate(() => (window as unknown as { rnnDebug: Debug }).rnnDebug.adapters());

async function set(page: Page, sel: string, value: string) {
  await page.locator(sel).evaluate((el, v) => {
    (el as HTMLInputElement).value = v;
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

const site = await buildAndServe();
const browser = await launch();
const page = browser.page;
const summary: Record<string, unknown>[] = [];
try {
  await page.goto(site.url);
  await waitFor(page, () => document.querySelector('#data-info')!.textContent!.includes('vocabulary'), null, 'the text', 60_000);
  await waitFor(page, () => !document.querySelector('#adapter-badge-text')!.textContent!.startsWith('Looking'), null, 'adapters');
  const adapters = await dbg(page);
  console.log('adapters:', adapters.map((a) => `${a.id}: ${a.name || a.glRenderer} via ${a.label}${a.reportedFallback ? ' (isFallbackAdapter)' : ''}`).join(' | '));
  for (const a of adapters) {
    await set(page, '#adapter', String(a.id));
    for (const h of sizes) {
      await set(page, '#hidden', String(h));
      await page.locator('#bench-body').evaluate((el) => el.replaceChildren());
      const t0 = Date.now();
      await page.click('#bench');
      await waitFor(page, () => document.querySelectorAll('#bench-body tr').length > 0 || document.querySelector('#bench-error')!.textContent !== '', null, 'the benchmark', 600_000);
      const rows = await page.locator('#bench-body tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
      const note = await page.locator('#bench-note').textContent();
      const err = await page.locator('#bench-error').textContent();
      console.log(`hidden ${h}, ${a.label}: ${JSON.stringify(rows)} ${note} ${err} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      summary.push({ adapter: a, hidden: h, rows, note, err });
    }
  }
  await page.screenshot({ path: join(resultsDir(), 'benchmark.png'), fullPage: true });

  // Live training at the largest size on the best adapter.
  await set(page, '#adapter', String(adapters[0]?.id ?? 0));
  await set(page, '#hidden', String(sizes.at(-1)));
  await page.click('#start');
  const t0 = Date.now();
  for (let s = 0; s < liveSeconds; s += 15) {
    await page.waitForTimeout(15_000);
    const line = await page.evaluate(() => [...document.querySelectorAll('.stat')].map((e) => e.textContent!.replace(/\s+/g, ' ').trim()).join(' | '));
    console.log(`${((Date.now() - t0) / 1000).toFixed(0)} s: ${line}`);
  }
  await page.click('#pause');
  await waitFor(page, () => (window as unknown as { rnnDebug: Debug }).rnnDebug.status()?.phase === 'paused', null, 'pause', 300_000);
  const h = await page.evaluate(() => (window as unknown as { rnnDebug: Debug }).rnnDebug.history());
  const train = h.train.filter((v): v is number => v !== null);
  console.log(`live: ${train.length} iterations, first loss ${train[0]?.toFixed(3)}, last ${train.at(-1)?.toFixed(3)}, tokens/s ${await page.locator('#stat-tps').textContent()}`);
  summary.push({ live: { iterations: train.length, first: train[0], last: train.at(-1), tps: await page.locator('#stat-tps').textContent(), val: h.val.filter((v) => v !== null) } });
  await page.screenshot({ path: join(resultsDir(), `training-h${sizes.at(-1)}.png`), fullPage: true });
  writeFileSync(join(resultsDir(), 'measure.json'), JSON.stringify(summary, null, 2));
} finally {
  await browser.close();
  await site.close();
}
