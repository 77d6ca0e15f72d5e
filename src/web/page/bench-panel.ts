/** The benchmark panel: the form's model timed on the GPU and on the CPU, side by side. */
import type { BenchResult, ModelForm } from '../protocol.ts';
import { selectedAdapter } from './backend-panel.ts';
import { clearError } from './banner.ts';
import { $, el, fmtRate } from './dom.ts';
import { readForm } from './model-form.ts';
import { send } from './state.ts';

const BENCH_ITERATIONS = 5;

const ui = { bench: $<HTMLButtonElement>('bench'), table: $('bench-table'), body: $('bench-body'), note: $('bench-note') };

export function enableBench(enabled: boolean): void {
  ui.bench.disabled = !enabled;
}

export function renderBench(results: BenchResult[], form: ModelForm): void {
  ui.body.replaceChildren();
  for (const r of results) {
    const name = el('td');
    name.append(el('strong', r.kind === 'gpu' ? 'GPU' : 'CPU'), el('span', r.description, 'desc'));
    const row = el('tr');
    row.dataset.kind = r.kind;
    row.append(name, el('td', fmtRate(r.tokensPerSecond), 'num'), el('td', r.msPerIteration.toFixed(r.msPerIteration < 100 ? 1 : 0), 'num'));
    ui.body.append(row);
  }
  ui.table.hidden = results.length === 0;
  const gpu = results.find((r) => r.kind === 'gpu');
  const cpu = results.find((r) => r.kind === 'cpu');
  const ratio = gpu && cpu ? ` GPU/CPU: ${(gpu.tokensPerSecond / cpu.tokensPerSecond).toFixed(1)}×.` : '';
  ui.note.textContent = `Hidden ${form.hiddenSize}, sequence ${form.seqLength} × batch ${form.batchSize}; ` +
    `${results.map((r) => `${r.iterations} iteration${r.iterations === 1 ? '' : 's'} on the ${r.kind.toUpperCase()}`).join(', ')} after one untimed.${ratio}`;
}

/** The benchmark failed: its error line says why, the note has nothing to add. */
export function clearBenchNote(): void {
  ui.note.textContent = '';
}

export function initBenchPanel(): void {
  ui.bench.addEventListener('click', () => {
    clearError('bench');
    ui.note.textContent = 'Running… (the CPU gets a few seconds at most)';
    send({ type: 'bench', form: readForm(), adapter: selectedAdapter()?.id ?? -1, iterations: BENCH_ITERATIONS });
  });
}
