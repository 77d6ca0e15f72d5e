/** `eval`: a checkpoint's loss on the held-out split it was validated on, or on any text file. */
import { zeroCarriedState } from '../model/backend.ts';
import { resolve } from 'node:path';
import type { BackendChoice } from '../engine/create-backend.ts';
import { Trainer, bits } from '../engine/trainer.ts';
import { DataError } from '../data/text.ts';
import { openBackend } from './backend.ts';
import { readCheckpoint } from './checkpoint-files.ts';
import { VAL_FRACTION, isNamedCorpus, prepareCorpus } from './corpus.ts';
import { EXIT_OK, UsageError, oneLine } from './errors.ts';
import { int, unitOf } from './format.ts';
import type { CliIO } from './io.ts';

export interface EvalArgs {
  checkpoint: string;
  corpus?: string;
  backend: BackendChoice;
  /** --max-corpus-mb: the largest text file read, in MB. */
  maxCorpusMb?: number;
}

export async function runEval(a: EvalArgs, io: CliIO): Promise<number> {
  if (a.checkpoint === '') throw new UsageError('--checkpoint must not be empty');
  const ck = readCheckpoint(a.checkpoint);
  const spec = a.corpus ?? ck.progress.corpus;
  const source = isNamedCorpus(spec) ? spec : resolve(spec);
  // The text the checkpoint trained on: score its held-out tail. Any other text: score all of it.
  const heldOut = source === ck.progress.corpus;
  const data = prepareCorpus({ spec, lowercase: ck.progress.lowercase, charset: ck.progress.charset, maxMb: a.maxCorpusMb }, ck.tokenizerObject);
  const ids = heldOut ? data.val : data.ids;
  const unit = unitOf(ck.tokenizerObject.level);
  // The checkpoint's batch shape where the text allows, smaller where it is short.
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
    (line) => io.stderr.write(`note: ${oneLine(line)}\n`));
  try {
    opened.backend.importState({ ...ck.state, ...zeroCarriedState(ck.model, B) });
    const trainer = new Trainer(opened.backend, ids, ids);
    const nats = await trainer.validate();
    const scored = Math.floor((Math.floor(ids.length / B) - 1) / T) * B * T;
    const what = heldOut ? `the held-out ${VAL_FRACTION * 100}% of ${spec}` : spec;
    io.stdout.write(
      `loss ${nats.toFixed(4)} nats/${unit} = ${bits(nats).toFixed(4)} bits/${unit} ` +
      `over ${int(scored)} ${unit}s of ${what} (${opened.backend.kind.toUpperCase()} backend)\n`,
    );
  } finally {
    opened.close();
  }
  return EXIT_OK;
}
