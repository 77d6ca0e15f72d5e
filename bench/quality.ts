/**
 * Which cell learns the default corpus best for the same size and the same time? Trains rnn, lstm
 * and gru on Reuters (lowercased, character level, as `npm start` does) on the GPU backend, each
 * with about the parameter count of the rnn at hidden 256 and the same wall-clock budget, then
 * scores each on the same held-out batches. Writes bench/results/quality.{json,md}.
 *
 *   npx tsx --import ./src/node/register-raw.mjs bench/quality.ts [--minutes 3] [--val-batches 100]
 *
 * Equal time, not equal iterations: the cells cost different amounts per iteration, and what a
 * user has is a time budget. The machine's load moves the iteration counts (they are reported);
 * the validation loss is what the table compares.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareCorpus } from '../src/cli/corpus.ts';
import { TRAIN_DEFAULTS } from '../src/cli/train-settings.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import { acquireNodeGpu, releaseNodeGpu } from '../src/node/webgpu.ts';
import { Trainer, bits } from '../src/engine/trainer.ts';
import { TrainingLoop } from '../src/engine/training-loop.ts';
import { parameterCount as parameters } from '../src/model/layout.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import type { CellType } from '../src/model/cells.ts';

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    'val-batches': { type: 'string', default: '100' },
    'reference-hidden': { type: 'string', default: '256' },
    cells: { type: 'string', default: 'rnn,lstm,gru' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const minutes = Number(opts.minutes);
const valBatches = Number(opts['val-batches']);
const referenceHidden = Number(opts['reference-hidden']);
const cells = opts.cells!.split(',') as CellType[];

/** The hidden size whose parameter count is closest to `target` for this cell. */
function matchedHidden(cell: CellType, vocabSize: number, target: number): number {
  let best = 1;
  for (let h = 1; h <= 4 * referenceHidden; h++) {
    const d = Math.abs(parameters({ cell, vocabSize, hiddenSize: h }) - target);
    if (d < Math.abs(parameters({ cell, vocabSize, hiddenSize: best }) - target)) best = h;
  }
  return best;
}

interface Row {
  cell: CellType;
  hidden: number;
  parameters: number;
  iterations: number;
  seconds: number;
  msPerIteration: number;
  trainLoss: number;
  valNats: number;
  valBits: number;
}

const data = prepareCorpus({ spec: TRAIN_DEFAULTS.corpus }, {
  level: TRAIN_DEFAULTS.level, maxVocab: TRAIN_DEFAULTS.maxVocab, minCount: TRAIN_DEFAULTS.minCount, unk: false,
});
const V = data.tokenizer.vocab.length;
const train: TrainConfig = {
  seqLength: TRAIN_DEFAULTS.seqLength, batchSize: TRAIN_DEFAULTS.batchSize, optimizer: TRAIN_DEFAULTS.optimizer,
  learningRate: TRAIN_DEFAULTS.lr, clip: TRAIN_DEFAULTS.clip, stateReset: TRAIN_DEFAULTS.stateReset,
};
const target = parameters({ cell: 'rnn', vocabSize: V, hiddenSize: referenceHidden });
const ctx = await acquireNodeGpu();
const rows: Row[] = [];
try {
  for (const cell of cells) {
    const model: ModelConfig = { cell, vocabSize: V, hiddenSize: matchedHidden(cell, V, target), layers: 1, dropout: 0 };
    const backend = await GpuBackend.create(ctx, model, train, TRAIN_DEFAULTS.seed);
    try {
      const trainer = new Trainer(backend, data.train, data.val);
      const budget = minutes * 60_000;
      const losses: number[] = [];
      const t0 = performance.now();
      const loop: TrainingLoop = new TrainingLoop({
        trainer,
        events: {
          onLoss: (_, l) => losses.push(l),
          onStep: () => {
            if (performance.now() - t0 >= budget) loop.stop();
          },
        },
      });
      await loop.run();
      const seconds = (performance.now() - t0) / 1000;
      const valNats = await trainer.validate(valBatches);
      const last = losses.slice(-50);
      const row: Row = {
        cell, hidden: model.hiddenSize, parameters: parameters(model), iterations: trainer.iteration, seconds,
        msPerIteration: (seconds * 1000) / trainer.iteration, trainLoss: last.reduce((a, b) => a + b, 0) / last.length,
        valNats, valBits: bits(valNats),
      };
      rows.push(row);
      console.log(
        `${cell.padEnd(4)} hidden ${String(row.hidden).padStart(3)}  ${row.parameters} params  ${row.iterations} iterations ` +
        `(${row.msPerIteration.toFixed(0)} ms each)  validation ${row.valBits.toFixed(3)} bits/char`,
      );
    } finally {
      backend.destroy();
    }
  }
} finally {
  releaseNodeGpu(ctx);
}

const command = `npx tsx --import ./src/node/register-raw.mjs bench/quality.ts --minutes ${minutes} --val-batches ${valBatches}`;
const meta = {
  date: new Date().toISOString(), adapter: ctx.adapterName, corpus: 'reuters (lowercased, char level)', vocabulary: V,
  seqLength: train.seqLength, batchSize: train.batchSize, optimizer: train.optimizer, learningRate: train.learningRate, stateReset: train.stateReset,
  minutesPerCell: minutes, validationChars: valBatches * train.batchSize * train.seqLength, referenceParameters: target, command,
};
mkdirSync(opts.out!, { recursive: true });
writeFileSync(join(opts.out!, 'quality.json'), `${JSON.stringify({ ...meta, rows }, null, 2)}\n`);
const best = [...rows].sort((a, b) => a.valBits - b.valBits)[0];
const md = [
  `Validation bits per character on Reuters (lowercased, char level, vocabulary ${V}), one layer, about ` +
  `${target.toLocaleString('en-US')} parameters each (the rnn at hidden ${referenceHidden}), ${minutes} minutes of training each on ` +
  `${ctx.adapterName}; T=${train.seqLength}, B=${train.batchSize}, Adam ${train.learningRate}, each stream's state zeroed every ${train.stateReset} iterations; ` +
  `scored on the first ${valBatches} held-out batches (${meta.validationChars.toLocaleString('en-US')} chars) from a zero state.`,
  '',
  '| cell | hidden | parameters | iterations | ms/iteration | train loss (nats, last 50) | validation bits/char |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) =>
    `| ${r.cell} | ${r.hidden} | ${r.parameters.toLocaleString('en-US')} | ${r.iterations} | ${r.msPerIteration.toFixed(0)} | ` +
    `${r.trainLoss.toFixed(3)} | ${r.valBits === best.valBits ? `**${r.valBits.toFixed(3)}**` : r.valBits.toFixed(3)} |`),
  '',
  `Reproduce: \`${command}\``,
  '',
].join('\n');
writeFileSync(join(opts.out!, 'quality.md'), md);
console.log(`\n${md}`);
