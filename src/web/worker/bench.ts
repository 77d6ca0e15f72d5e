/**
 * The page's benchmark panel: a few training iterations of the form's model on the GPU and on
 * the CPU, timed the way training runs them, on the current text.
 */
import { BatchStream } from '../../data/split.ts';
import { yieldToEvents } from '../../engine/training-loop.ts';
import type { Backend } from '../../model/backend.ts';
import type { BenchResult, ModelForm, Placement, Reply } from '../protocol.ts';
import { configsFromForm } from '../shared.ts';
import type { Backends } from './backends.ts';
import { pageWording } from './errors.ts';
import { trainValOf, type PreparedData } from './text.ts';

/** Seconds each backend may take at most: at a large hidden size one CPU iteration takes seconds. */
const BUDGET_S = { gpu: 30, cpu: 6 };

const now = () => performance.now() / 1000;

export async function benchmark(
  backends: Backends, d: PreparedData, form: ModelForm, adapterId: number, iterations: number, post: (r: Reply) => void,
): Promise<BenchResult[]> {
  const { model, train } = configsFromForm(form, d.tokenizer.vocab.length);
  const { train: trainIds } = trainValOf(d);
  const placements: Placement[] = [];
  const gpuAdapter = backends.adapter(adapterId) ?? backends.adapters[0];
  if (gpuAdapter) placements.push({ backend: 'gpu', adapter: gpuAdapter.id });
  placements.push({ backend: 'cpu', adapter: -1 });
  const results: BenchResult[] = [];
  for (const p of placements) {
    let backend: Backend;
    try {
      backend = await backends.make(model, train, form.seed, p);
    } catch (e) {
      post({ type: 'error', area: 'bench', message: `${p.backend.toUpperCase()}: ${pageWording((e as Error).message)}` });
      continue;
    }
    try {
      const stream = new BatchStream(trainIds, train.batchSize, train.seqLength);
      // One untimed iteration: pipelines compile, the JIT warms up.
      await (await backend.trainStep(stream.next())).loss;
      const t0 = now();
      let n = 0;
      let last: Promise<number> = Promise.resolve(0);
      while (n < iterations && (n === 0 || now() - t0 < BUDGET_S[p.backend])) {
        last = (await backend.trainStep(stream.next())).loss;
        n++;
        // The CPU computes inside trainStep: let messages (Pause) in between.
        if (p.backend === 'cpu') await yieldToEvents();
      }
      await last;
      const seconds = now() - t0;
      results.push({
        kind: p.backend, description: backends.describe(backend, p),
        iterations: n, seconds, tokensPerSecond: (n * train.batchSize * train.seqLength) / seconds, msPerIteration: (seconds * 1000) / n,
      });
    } finally {
      backend.destroy();
    }
  }
  return results;
}
