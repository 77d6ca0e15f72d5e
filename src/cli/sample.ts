/** `sample`: text from a checkpoint, on either backend whichever one trained it. */
import { streamState } from '../model/backend.ts';
import type { BackendChoice } from '../engine/create-backend.ts';
import type { TuneMode } from '../gpu/tuner.ts';
import { DEFAULT_CHARSET, userTextFor } from '../data/text.ts';
import { openBackend } from './backend.ts';
import { readCheckpoint } from './checkpoint-files.ts';
import { EXIT_OK, UsageError, oneLine } from './errors.ts';
import type { CliIO } from './io.ts';
import { describeSamplingControls, type SamplingControls } from '../model/backend.ts';
import { defaultPrime, encodePrime, formatSamples, generate } from './sampling.ts';

export interface SampleArgs {
  checkpoint: string;
  length: number;
  temperature: number;
  prime?: string;
  argmax: boolean;
  seed?: number;
  backend: BackendChoice;
  controls?: SamplingControls;
  numSamples?: number;
  tune: TuneMode;
}

export async function runSample(a: SampleArgs, io: CliIO): Promise<number> {
  if (a.checkpoint === '') throw new UsageError('--checkpoint must not be empty');
  const note = (line: string) => io.stderr.write(`note: ${oneLine(line)}\n`);
  const ck = readCheckpoint(a.checkpoint, note);
  const tokenizer = ck.tokenizerObject;
  // A letters model reads any prime as letters and spaces, as its text was.
  const primeText = userTextFor(ck.progress.charset ?? DEFAULT_CHARSET, a.prime ?? defaultPrime(tokenizer));
  const prime = encodePrime(tokenizer, primeText);
  if (prime.unknown.length) {
    io.stderr.write(`note: --prime: ${prime.unknown.map((t) => JSON.stringify(t)).join(', ')} not in the vocabulary, read as <unk>\n`);
  }
  const seed = a.seed ?? Math.floor(Math.random() * 2 ** 32);
  // Sampling needs none of the training buffers: the smallest batch shape keeps the GPU allocation small.
  const train = { ...ck.train, batchSize: 1, seqLength: 1 };
  const opened = await openBackend(io, a.backend, ck.model, train, seed, note, a.tune);
  try {
    // Stream 0 of the state training reached: sampling starts there (see Backend.sample).
    opened.backend.importState({ ...ck.state, ...streamState(ck.model, ck.train.batchSize, ck.state) });
    const n = a.numSamples ?? 1;
    const temperature = a.argmax ? 0 : a.temperature;
    const texts = await generate(opened.backend, tokenizer, prime.ids, a.length, temperature, seed, a.controls, n);
    // The default prime (a newline) only starts the model off; a prime the user wrote is part of the text.
    const settings = `seed ${seed}, temperature ${temperature}${describeSamplingControls(a.controls)}`;
    io.stdout.write(`${formatSamples(texts.map((t) => `${a.prime === undefined ? '' : primeText}${t}`), (i) => `----- sample ${i + 1} of ${n} (${settings}) -----`)}\n`);
  } finally {
    opened.close();
  }
  return EXIT_OK;
}
