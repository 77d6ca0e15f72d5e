/**
 * How well do models learn Reuters in a fixed wall-clock budget on the GPU backend? Two sets of
 * runs, each scored on held-out batches from a zero state and written to bench/results:
 *
 * - `--set cells` (quality.{json,md}): rnn, lstm and gru at character level (lowercased, as
 *   `npm start` trains), each with about the parameter count of the rnn at hidden 256.
 * - `--set writeup` (writeup.{json,md}): the experiments of the write-up this project started
 *   from (a NumPy vanilla RNN on Reuters): characters as they come, lowercased (`--charset raw`),
 *   only letters and a space (`--charset letters`), and words (vocabulary 10,000), each at the
 *   write-up's hidden 400 and sequence 150 and at the CLI's defaults (hidden 128, sequence 64),
 *   beside the trigram Kneser-Ney baseline of the same split, with a sample of each.
 *
 *   npx tsx --import ./src/node/register-raw.mjs bench/quality.ts [--set cells|writeup] [--minutes 3] [--val-batches 100]
 *
 * Equal time, not equal iterations: the models cost different amounts per iteration, and what a
 * user has is a time budget. The machine's load moves the iteration counts (they are reported,
 * with the load average); the validation loss is what the tables compare.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareCorpus, type PreparedCorpus } from '../src/cli/corpus.ts';
import { encodePrime, generate } from '../src/cli/sampling.ts';
import { TRAIN_DEFAULTS } from '../src/cli/train-settings.ts';
import { countBaselines } from '../src/data/ngram.ts';
import type { Charset } from '../src/data/text.ts';
import { defaultPrime, type TokenizerLevel } from '../src/data/tokenizer.ts';
import { GpuBackend } from '../src/gpu/backend.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { acquireNodeGpu, releaseNodeGpu } from '../src/node/webgpu.ts';
import { Trainer, bits } from '../src/engine/trainer.ts';
import { TrainingLoop } from '../src/engine/training-loop.ts';
import { parameterCount as parameters } from '../src/model/layout.ts';
import type { ModelConfig, TrainConfig } from '../src/model/config.ts';
import type { CellType } from '../src/model/cells.ts';

const { values: opts } = parseArgs({
  options: {
    set: { type: 'string', default: 'cells' },
    minutes: { type: 'string', default: '3' },
    'val-batches': { type: 'string', default: '100' },
    'reference-hidden': { type: 'string', default: '256' },
    cells: { type: 'string', default: 'rnn,lstm,gru' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const set = opts.set!;
if (set !== 'cells' && set !== 'writeup') throw new Error(`--set: cells or writeup, not ${set}`);
const minutes = Number(opts.minutes);
const valBatches = Number(opts['val-batches']);
const referenceHidden = Number(opts['reference-hidden']);

/** What one run trains on, and how. */
interface Text { label: string; level: TokenizerLevel; charset: Charset }
interface Run { text: Text; setting: string; cell: CellType; hidden: number; seqLength: number; batchSize?: number }

interface Row {
  text: string;
  setting: string;
  vocabulary: number;
  cell: CellType;
  hidden: number;
  seqLength: number;
  batchSize: number;
  parameters: number;
  iterations: number;
  seconds: number;
  msPerIteration: number;
  trainLoss: number;
  valNats: number;
  valBits: number;
  valTokens: number;
  /** The trigram Kneser-Ney model's loss on the whole held-out split (writeup set). */
  trigramNats?: number;
  sample?: string;
}

const prepared = new Map<string, PreparedCorpus>();
function corpus(text: Text): PreparedCorpus {
  let data = prepared.get(text.label);
  if (!data) {
    data = prepareCorpus({ spec: TRAIN_DEFAULTS.corpus, charset: text.charset }, {
      level: text.level, maxVocab: TRAIN_DEFAULTS.maxVocab, minCount: TRAIN_DEFAULTS.minCount, unk: true,
    });
    prepared.set(text.label, data);
  }
  return data;
}

const trainConfig = (seqLength: number, batchSize = TRAIN_DEFAULTS.batchSize): TrainConfig => ({
  seqLength, batchSize, optimizer: TRAIN_DEFAULTS.optimizer,
  learningRate: TRAIN_DEFAULTS.lr, clip: TRAIN_DEFAULTS.clip, stateReset: TRAIN_DEFAULTS.stateReset,
});

/** Trains one model for the budget, then scores it (and samples from it, when asked). */
async function train(ctx: GpuContext, run: Run, sampleLength: number): Promise<Row> {
  const data = corpus(run.text);
  const V = data.tokenizer.vocab.length;
  const model: ModelConfig = { cell: run.cell, vocabSize: V, hiddenSize: run.hidden, layers: 1, dropout: 0 };
  const backend = await GpuBackend.create(ctx, model, trainConfig(run.seqLength, run.batchSize), TRAIN_DEFAULTS.seed);
  try {
    const trainer = new Trainer(backend, data.train, data.val);
    const losses: number[] = [];
    const t0 = performance.now();
    const loop: TrainingLoop = new TrainingLoop({
      trainer,
      events: {
        onLoss: (_, l) => losses.push(l),
        onStep: () => {
          if (performance.now() - t0 >= minutes * 60_000) loop.stop();
        },
      },
    });
    await loop.run();
    const seconds = (performance.now() - t0) / 1000;
    const valNats = await trainer.validate(valBatches);
    const last = losses.slice(-50);
    let sample: string | undefined;
    if (sampleLength > 0) {
      const prime = encodePrime(data.tokenizer, defaultPrime(data.tokenizer)).ids;
      [sample] = await generate(backend, data.tokenizer, prime, sampleLength, TRAIN_DEFAULTS.temperature, TRAIN_DEFAULTS.seed);
    }
    const row: Row = {
      text: run.text.label, setting: run.setting, vocabulary: V, cell: run.cell, hidden: run.hidden, seqLength: run.seqLength, batchSize: run.batchSize ?? TRAIN_DEFAULTS.batchSize,
      parameters: parameters(model), iterations: trainer.iteration, seconds, msPerIteration: (seconds * 1000) / trainer.iteration,
      trainLoss: last.reduce((a, b) => a + b, 0) / last.length, valNats, valBits: bits(valNats),
      valTokens: trainer.validationTokens(valBatches), sample,
    };
    console.log(
      `${row.text} ${row.setting}: ${run.cell} hidden ${row.hidden} T=${row.seqLength}  ${row.parameters} params  ` +
      `${row.iterations} iterations (${row.msPerIteration.toFixed(0)} ms each)  validation ${row.valNats.toFixed(3)} nats = ${row.valBits.toFixed(3)} bits/token`,
    );
    return row;
  } finally {
    backend.destroy();
  }
}

/** The hidden size whose parameter count is closest to `target` for this cell. */
function matchedHidden(cell: CellType, vocabSize: number, target: number): number {
  let best = 1;
  for (let h = 1; h <= 4 * referenceHidden; h++) {
    const d = Math.abs(parameters({ cell, vocabSize, hiddenSize: h }) - target);
    if (d < Math.abs(parameters({ cell, vocabSize, hiddenSize: best }) - target)) best = h;
  }
  return best;
}

const num = (x: number) => x.toLocaleString('en-US');
const command = `npx tsx --import ./src/node/register-raw.mjs bench/quality.ts --set ${set} --minutes ${minutes} --val-batches ${valBatches}`;
const load = () => loadavg()[0].toFixed(1);

async function cellsSet(ctx: GpuContext): Promise<{ rows: Row[]; md: string; meta: object }> {
  const text: Text = { label: 'characters', level: TRAIN_DEFAULTS.level, charset: TRAIN_DEFAULTS.charset };
  const V = corpus(text).tokenizer.vocab.length;
  const target = parameters({ cell: 'rnn', vocabSize: V, hiddenSize: referenceHidden });
  const rows: Row[] = [];
  for (const cell of opts.cells!.split(',') as CellType[]) {
    rows.push(await train(ctx, { text, setting: 'equal parameters', cell, hidden: matchedHidden(cell, V, target), seqLength: TRAIN_DEFAULTS.seqLength }, 0));
  }
  const best = Math.min(...rows.map((r) => r.valBits));
  const md = [
    `Validation bits per character on Reuters (lowercased, char level, vocabulary ${V}), one layer, about ` +
    `${num(target)} parameters each (the rnn at hidden ${referenceHidden}), ${minutes} minutes of training each on ` +
    `${ctx.adapterName}; T=${TRAIN_DEFAULTS.seqLength}, B=${TRAIN_DEFAULTS.batchSize}, Adam ${TRAIN_DEFAULTS.lr}, each stream's state zeroed every ${TRAIN_DEFAULTS.stateReset} iterations; ` +
    `scored on the first ${valBatches} held-out batches (${num(rows[0].valTokens)} chars) from a zero state.`,
    '',
    '| cell | hidden | parameters | iterations | ms/iteration | train loss (nats, last 50) | validation bits/char |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) =>
      `| ${r.cell} | ${r.hidden} | ${num(r.parameters)} | ${r.iterations} | ${r.msPerIteration.toFixed(0)} | ` +
      `${r.trainLoss.toFixed(3)} | ${r.valBits === best ? `**${r.valBits.toFixed(3)}**` : r.valBits.toFixed(3)} |`),
  ].join('\n');
  return { rows, md, meta: { corpus: 'reuters (lowercased, char level)', vocabulary: V, referenceParameters: target } };
}

async function writeupSet(ctx: GpuContext): Promise<{ rows: Row[]; md: string; meta: object }> {
  const texts: Text[] = [
    { label: 'raw', level: 'char', charset: 'raw' },
    { label: 'letters', level: 'char', charset: 'letters' },
    { label: 'words', level: 'word', charset: TRAIN_DEFAULTS.charset },
  ];
  const settings = [
    { setting: "write-up's", hidden: 400, seqLength: 150 },
    { setting: 'defaults', hidden: TRAIN_DEFAULTS.hidden, seqLength: TRAIN_DEFAULTS.seqLength },
  ];
  const rows: Row[] = [];
  for (const text of texts) {
    const data = corpus(text);
    const trigram = countBaselines(data.ids, data.train.length, data.tokenizer.vocab.length).results.find((r) => r.name === 'trigram KN')!;
    for (const s of settings) {
      // T x B x V logits must fit one storage binding (128 MiB here): at T = 150 the word runs take half the batch.
      const batchSize = text.level === 'word' && s.seqLength > TRAIN_DEFAULTS.seqLength ? TRAIN_DEFAULTS.batchSize / 2 : undefined;
      const row = await train(ctx, { text, cell: 'rnn', ...s, batchSize }, text.level === 'word' ? 60 : 300);
      rows.push({ ...row, trigramNats: trigram.nats });
    }
  }
  const loss = (r: Row, nats: number) => (r.text === 'words' ? `${nats.toFixed(3)} nats (perplexity ${Math.exp(nats).toFixed(1)})` : `${bits(nats).toFixed(3)} bits/char`);
  const md = [
    `The write-up's experiments on Reuters: a vanilla RNN, one layer, ${minutes} minutes of training each on ${ctx.adapterName} ` +
    `(load average about ${load()} at the end); Adam ${TRAIN_DEFAULTS.lr}, clip ${TRAIN_DEFAULTS.clip}, ` +
    `each stream's state zeroed every ${TRAIN_DEFAULTS.stateReset} iterations; validation on the first ${valBatches} held-out batches ` +
    'from a zero state; the trigram (modified Kneser-Ney, as `eval --baselines`) trained on the same 95% and scored on the whole held-out 5%. ' +
    '`raw`: the text as it comes, lowercased; `letters`: a-z and one space; `words`: words, spaces and punctuation marks as tokens, ' +
    `the ${num(TRAIN_DEFAULTS.maxVocab)} most frequent (the rest \`<unk>\`).`,
    '',
    '| text | vocabulary | setting | hidden | T | B | parameters | iterations | ms/iteration | validation | trigram KN |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) =>
      `| ${r.text} | ${num(r.vocabulary)} | ${r.setting} | ${r.hidden} | ${r.seqLength} | ${r.batchSize} | ${num(r.parameters)} | ${r.iterations} | ` +
      `${r.msPerIteration.toFixed(0)} | ${loss(r, r.valNats)} | ${loss(r, r.trigramNats!)} |`),
    '',
    ...rows.flatMap((r) => [`**${r.text}, ${r.setting}** (temperature ${TRAIN_DEFAULTS.temperature}):`, '', '```', r.sample!.trimEnd(), '```', '']),
  ].join('\n');
  return { rows, md, meta: { corpus: 'reuters' } };
}

const ctx = await acquireNodeGpu();
let result: { rows: Row[]; md: string; meta: object };
try {
  result = set === 'cells' ? await cellsSet(ctx) : await writeupSet(ctx);
} finally {
  releaseNodeGpu(ctx);
}
const meta = {
  date: new Date().toISOString(), adapter: ctx.adapterName, loadAverage: Number(load()), set, ...result.meta,
  batchSize: TRAIN_DEFAULTS.batchSize, optimizer: TRAIN_DEFAULTS.optimizer, learningRate: TRAIN_DEFAULTS.lr,
  stateReset: TRAIN_DEFAULTS.stateReset, minutesPerRun: minutes, valBatches, command,
};
const name = set === 'cells' ? 'quality' : 'writeup';
const md = `${result.md}\n\nReproduce: \`${command}\`\n`;
mkdirSync(opts.out!, { recursive: true });
writeFileSync(join(opts.out!, `${name}.json`), `${JSON.stringify({ ...meta, rows: result.rows }, null, 2)}\n`);
writeFileSync(join(opts.out!, `${name}.md`), md);
console.log(`\n${md}`);
