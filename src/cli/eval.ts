/**
 * `eval`: a checkpoint's loss on the held-out split it was validated on, or on any text file; with
 * --baselines, beside the count models (src/data/ngram.ts) on the same split, with or without a
 * checkpoint.
 */
import { zeroCarriedState } from '../model/backend.ts';
import { resolve } from 'node:path';
import type { BackendChoice } from '../engine/create-backend.ts';
import type { TuneMode } from '../gpu/tuner.ts';
import { Trainer, bits } from '../engine/trainer.ts';
import { countBaselines } from '../data/ngram.ts';
import { DataError, type Charset } from '../data/text.ts';
import type { TokenIds, TokenizerLevel } from '../data/tokenizer.ts';
import { openBackend } from './backend.ts';
import { readCheckpoint, type LoadedCheckpoint } from './checkpoint-files.ts';
import { VAL_FRACTION, describePreparation, isNamedCorpus, prepareCorpus, type PreparedCorpus } from './corpus.ts';
import { EXIT_OK, UsageError, oneLine } from './errors.ts';
import { int, unitOf } from './format.ts';
import type { CliIO } from './io.ts';
import { TRAIN_DEFAULTS } from './train-settings.ts';
import { describeModel } from './train.ts';

export interface EvalArgs {
  checkpoint?: string;
  corpus?: string;
  backend: BackendChoice;
  tune: TuneMode;
  /** --max-corpus-mb: the largest text file read, in MB. */
  maxCorpusMb?: number;
  /** Also score count models (unigram, bigram and trigram Kneser-Ney) on the same split. */
  baselines?: boolean;
  /** Without a checkpoint: how to prepare the text, as `train` would (its flags and defaults). */
  level?: TokenizerLevel;
  charset?: Charset;
  lowercase?: boolean;
  maxVocab?: number;
  minCount?: number;
  unk?: boolean;
  /** Flags given on the command line (the text-preparation ones contradict a checkpoint). */
  given?: ReadonlySet<string>;
}

/** The flags that say how to prepare text: a checkpoint already says it. */
const PREPARATION_FLAGS: ReadonlyArray<[keyof EvalArgs, string]> = [
  ['level', '--level'], ['charset', '--charset'], ['lowercase', '--lowercase'],
  ['maxVocab', '--max-vocab'], ['minCount', '--min-count'], ['unk', '--no-unk'],
];

/** "1.9787 nats/char = 2.8546 bits/char" (and the perplexity at word level), padded for a table. */
function lossCells(nats: number, level: TokenizerLevel): string {
  const unit = unitOf(level);
  const ppl = level === 'word' ? `, perplexity ${Math.exp(nats).toFixed(1)}` : '';
  return `${nats.toFixed(4)} nats/${unit} = ${bits(nats).toFixed(4)} bits/${unit}${ppl}`;
}

const row = (name: string, nats: number, level: TokenizerLevel) => `  ${name.padEnd(24)} ${lossCells(nats, level)}\n`;

function printBaselines(data: PreparedCorpus, spec: string, io: CliIO): void {
  const level = data.tokenizer.level;
  const unit = unitOf(level);
  const t0 = io.now();
  let counted: ReturnType<typeof countBaselines>;
  try {
    counted = countBaselines(data.ids, data.train.length, data.tokenizer.vocab.length);
  } catch (e) {
    if (e instanceof DataError) throw new DataError(`${spec}: ${e.message}`);
    throw e;
  }
  const { results, tokens } = counted;
  const seconds = (io.now() - t0) / 1000;
  io.stdout.write(
    `count baselines on the held-out ${VAL_FRACTION * 100}% of ${spec}${describePreparation(data)}, vocabulary ` +
    `${int(data.tokenizer.vocab.length)}: ${int(tokens)} ${unit}s scored, counts from ${int(data.train.length)} ` +
    `training ${unit}s (${seconds.toFixed(1)}s)\n`,
  );
  const names = { unigram: 'unigram (add-one)', 'bigram KN': 'bigram (modified KN)', 'trigram KN': 'trigram (modified KN)' };
  for (const r of results) io.stdout.write(row(names[r.name], r.nats, level));
}

export async function runEval(a: EvalArgs, io: CliIO): Promise<number> {
  const given = a.given ?? new Set<string>();
  if (a.checkpoint === '') throw new UsageError('--checkpoint must not be empty');
  if (a.checkpoint === undefined) {
    if (!a.baselines) {
      throw new UsageError('give --checkpoint, or --baselines (with --corpus and --level) to score count models without one');
    }
    const D = TRAIN_DEFAULTS;
    const spec = a.corpus ?? D.corpus;
    if (a.charset === 'letters' && given.has('lowercase') && a.lowercase === false) {
      throw new UsageError('--charset letters keeps lowercase a-z only: leave out --no-lowercase');
    }
    const data = prepareCorpus(
      { spec, lowercase: a.lowercase, charset: a.charset ?? D.charset, maxMb: a.maxCorpusMb },
      { level: a.level ?? D.level, maxVocab: a.maxVocab ?? D.maxVocab, minCount: a.minCount ?? D.minCount, unk: a.unk ?? true },
    );
    printBaselines(data, spec, io);
    return EXIT_OK;
  }
  const clash = PREPARATION_FLAGS.find(([key]) => given.has(key));
  if (clash) {
    throw new UsageError(`${clash[1]} comes from the checkpoint: leave it out, or leave out --checkpoint to count baselines on any text`);
  }
  const note = (line: string) => io.stderr.write(`note: ${oneLine(line)}\n`);
  const ck = readCheckpoint(a.checkpoint, note);
  const spec = a.corpus ?? ck.progress.corpus;
  const source = isNamedCorpus(spec) ? spec : resolve(spec);
  // The text the checkpoint trained on: score its held-out tail. Any other text: score all of it.
  const heldOut = source === ck.progress.corpus;
  if (a.baselines && !heldOut) {
    throw new UsageError('--baselines counts on the held-out split of the checkpoint\'s own corpus: leave out --corpus');
  }
  const data = prepareCorpus(
    { spec, lowercase: ck.progress.lowercase, charset: ck.progress.charset, maxMb: a.maxCorpusMb }, ck.tokenizerObject,
  );
  if (a.baselines) printBaselines(data, spec, io);
  const { nats, scored, kind } = await modelLoss(a, ck, heldOut ? data.val : data.ids, spec, heldOut, io, note);
  const level = ck.tokenizerObject.level;
  const unit = unitOf(level);
  if (a.baselines) {
    io.stdout.write(row(`model (${describeModel(ck.model)})`, nats, level));
    io.stdout.write(`  (the model scored ${int(scored)} ${unit}s: its streams start cold, without the counts' two tokens of context)\n`);
    return EXIT_OK;
  }
  const what = heldOut ? `the held-out ${VAL_FRACTION * 100}% of ${spec}` : spec;
  io.stdout.write(
    `loss ${nats.toFixed(4)} nats/${unit} = ${bits(nats).toFixed(4)} bits/${unit} ` +
    `over ${int(scored)} ${unit}s of ${what} (${kind.toUpperCase()} backend)\n`,
  );
  return EXIT_OK;
}

/** The checkpoint's mean loss over `ids`, in its own batch shape where the text allows, smaller where it is short. */
async function modelLoss(
  a: EvalArgs, ck: LoadedCheckpoint, ids: TokenIds, spec: string, heldOut: boolean, io: CliIO, note: (line: string) => void,
): Promise<{ nats: number; scored: number; kind: string }> {
  const unit = unitOf(ck.tokenizerObject.level);
  let T = ck.train.seqLength;
  let B = Math.min(ck.train.batchSize, Math.floor(ids.length / (T + 1)));
  if (B < 1) {
    B = 1;
    T = ids.length - 1;
  }
  if (T < 1) {
    throw new DataError(`${spec}: ${heldOut ? 'the held-out split' : 'the text'} has ${ids.length} ${unit}s, too few to score`);
  }
  const opened = await openBackend(io, a.backend, ck.model, { ...ck.train, batchSize: B, seqLength: T }, ck.progress.seed,
    note, a.tune);
  try {
    opened.backend.importState({ ...ck.state, ...zeroCarriedState(ck.model, B) });
    const trainer = new Trainer(opened.backend, ids, ids);
    const nats = await trainer.validate();
    const scored = Math.floor((Math.floor(ids.length / B) - 1) / T) * B * T;
    return { nats, scored, kind: opened.backend.kind };
  } finally {
    opened.close();
  }
}
