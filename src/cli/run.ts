/**
 * The command line: `train`, `sample` and `eval` as commander subcommands. run() never exits the
 * process and never throws: it returns the exit code, with any error printed as one line on
 * stderr, so tests drive it in-process with captured output.
 */
import { Command, CommanderError, Option } from 'commander';
import type { BackendChoice } from '../engine/create-backend.ts';
import { errorLine, exitCodeFor, EXIT_OK, EXIT_USAGE, oneLine } from './errors.ts';
import type { CliIO } from './io.ts';
import { countInt, decayFactor, dropoutValue, momentumValue, nonEmpty, nonNegativeNumber, openFraction, positiveInt, positiveNumber, seedValue } from './options.ts';
import { LR_SCHEDULES, OPTIMIZERS, RMSPROP, SGD, STEP_DECAY } from '../model/optimizer.ts';
import { runEval } from './eval.ts';
import { CHARSETS } from '../data/text.ts';
import { DEFAULT_MAX_CORPUS_MB } from '../node/corpora.ts';
import { runSample } from './sample.ts';
import { addSamplingOptions, samplingControls } from './sampling.ts';
import { runTrain } from './train.ts';
import { COMMAND, FROM_PACKAGE, START } from './command.ts';
import { TRAIN_DEFAULTS as D, type TrainArgs } from './train-settings.ts';
import { TUNE_MODES, type TuneMode } from '../gpu/tuner.ts';

const backendOption = () =>
  new Option('--backend <backend>', 'gpu, cpu, or auto (the GPU when a WebGPU adapter exists, else the CPU)')
    .choices(['gpu', 'cpu', 'auto'])
    .default('auto');

const tuneOption = () =>
  new Option('--tune <mode>', 'GPU kernel tuning: auto (the cached choice for this adapter, timing what is missing in up to about two seconds), off (the default kernels, no timing), full (retime everything, a few seconds)')
    .choices([...TUNE_MODES])
    .default('auto');

function buildProgram(io: CliIO, setCode: (code: number) => void): Command {
  const program = new Command(FROM_PACKAGE ? 'webgpu-rnn' : 'rnn');
  program
    .description('Train recurrent networks on text with WebGPU compute shaders, and sample from them.')
    .usage(`<command> [options]   (${COMMAND} <command> ..., or ${START} to train with the defaults)`)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // One line, and a pointer to the help, for every usage error commander reports.
      outputError: (s, write) => write(`${oneLine(s)} (see --help)\n`),
    })
    .showSuggestionAfterError(true)
    .helpCommand(false);

  const train = program
    .command('train')
    .description('train a model on a corpus, printing progress and samples, saving checkpoints')
    .option('--corpus <name|path>', 'reuters, shakespeare, gutenberg, or a UTF-8 text file', nonEmpty, D.corpus)
    .addOption(new Option('--level <level>', 'tokens: characters or words').choices(['char', 'word']).default(D.level))
    .addOption(new Option('--charset <set>', 'characters kept: clean (the corpus cleaned: for reuters no sign-offs or control bytes), raw (as it comes), letters (a-z and one space for every other run; implies lowercase)')
      .choices([...CHARSETS]).default(D.charset))
    .option('--lowercase', 'lowercase the text (default: on for reuters, off for everything else)')
    .option('--no-lowercase', 'keep the text\'s case')
    .option('--max-vocab <n>', 'word level: largest vocabulary, <unk> included', positiveInt, D.maxVocab)
    .option('--min-count <n>', 'word level: words seen fewer times become <unk>', positiveInt, D.minCount)
    .option('--no-unk', 'word level: no <unk> token; fail if the words do not fit in --max-vocab')
    .addOption(new Option('--cell <cell>', 'recurrent cell: vanilla rnn, lstm or gru').choices(['rnn', 'lstm', 'gru']).default(D.cell))
    .option('--layers <n>', 'recurrent layers stacked', positiveInt, D.layers)
    .option('--dropout <p>', 'dropout between layers and before the decoder, training only, in [0, 1)', dropoutValue, D.dropout)
    .option('--hidden <n>', 'hidden units per layer', positiveInt, D.hidden)
    .option('--seq-length <n>', 'time steps of backpropagation through time per iteration', positiveInt, D.seqLength)
    .option('--batch-size <n>', 'sequences trained side by side', positiveInt, D.batchSize)
    .option('--lr <rate>', 'learning rate (the base rate, with --lr-schedule)', positiveNumber, D.lr)
    .addOption(new Option('--optimizer <name>', 'adam, adagrad, rmsprop (PyTorch\'s formula) or sgd (with momentum)').choices(OPTIMIZERS).default(D.optimizer))
    .option('--momentum <mu>', `sgd: momentum in [0, 1), 0 for plain SGD (default ${SGD.momentum})`, momentumValue)
    .option('--nesterov', 'sgd: Nesterov momentum')
    .option('--rms-decay <alpha>', `rmsprop: decay of the mean of squared gradients (default ${RMSPROP.alpha}, char-rnn's)`, openFraction)
    .addOption(new Option('--lr-schedule <kind>', 'none; step: multiply by --lr-decay every --lr-decay-every epochs from epoch --lr-decay-after on (char-rnn); cosine: down to --lr-min over the run').choices(LR_SCHEDULES).default(D.lrSchedule))
    .option('--lr-decay <factor>', `step schedule: the factor, in (0, 1] (default ${STEP_DECAY.decay})`, decayFactor)
    .option('--lr-decay-every <epochs>', `step schedule: epochs between decays, fractions allowed (default ${STEP_DECAY.everyEpochs})`, positiveNumber)
    .option('--lr-decay-after <epochs>', `step schedule: the epoch of the first decay (default ${STEP_DECAY.afterEpochs})`, nonNegativeNumber)
    .option('--lr-min <rate>', 'cosine schedule: the floor the rate ends at (default 0)', nonNegativeNumber)
    .option('--clip <value>', 'clip each gradient element to [-value, value]', positiveNumber, D.clip)
    .option('--state-reset <n>', 'zero each sequence\'s carried state every n iterations, staggered, so the model also learns to start from zero (0: only when the data wraps)', countInt, D.stateReset)
    .option('--iterations <n>', `total iterations (default: ${D.iterations}, or the resumed run's own)`, positiveInt)
    .option('--epochs <x>', 'train for this many passes over the training text instead of --iterations', positiveNumber)
    .option('--seed <n>', 'seed for the initial weights and the samples', seedValue, D.seed)
    .addOption(backendOption())
    .addOption(tuneOption())
    .option('--checkpoint <path>', 'checkpoint file (default: checkpoints/<corpus>-<level>.safetensors; the best model also goes to <path minus .safetensors>-val<loss>.safetensors)')
    .option('--checkpoint-every <n>', 'save every n iterations (0: only at the end and on Ctrl-C)', countInt, D.checkpointEvery)
    .option('--eval-every <n>', 'validation loss every n iterations (0: only at the end)', countInt, D.evalEvery)
    .option('--eval-batches <n>', 'batches per intermediate validation (0: all; the final one always uses all)', countInt, D.evalBatches)
    .option('--sample-every <n>', 'print a sample every n iterations (0: never)', countInt, D.sampleEvery)
    .option('--sample-length <n>', 'tokens per sample', positiveInt, D.sampleLength)
    .option('--temperature <t>', 'sampling temperature (lower: safer, higher: wilder; 0: argmax)', nonNegativeNumber, D.temperature)
    .option('--prime <text>', 'text the samples start from (default: a newline)', nonEmpty);
  addSamplingOptions(train)
    .option('--resume <path>', 'continue training from a checkpoint, exactly where it stopped')
    .option('--max-corpus-mb <n>', `refuse a corpus file larger than this many MB (default ${DEFAULT_MAX_CORPUS_MB})`, positiveInt)
    .option('--print-every <n>', 'without a terminal: a progress line every n iterations (0: every 10 seconds)', countInt, D.printEvery)
    .option('-q, --quiet', 'print only warnings, errors and the final result', false)
    .addHelpText('after', `
Examples:
  ${START.padEnd(43)} train on Reuters with these defaults
  ${COMMAND} train --corpus shakespeare --hidden 512 --iterations 5000
  ${COMMAND} train --cell lstm --layers 2 --dropout 0.2
  ${COMMAND} train --corpus my.txt --level word --max-vocab 5000
  ${COMMAND} train --resume checkpoints/reuters-char.safetensors --iterations 6000
Ctrl-C (or SIGTERM, SIGHUP, a closed stdout) stops after the iteration in flight and saves a checkpoint;
a second signal quits without saving.`)
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const given = new Set(Object.keys(o).filter((k) => cmd.getOptionValueSource(k) === 'cli'));
      const args: TrainArgs = {
        corpus: o.corpus as string,
        level: o.level as TrainArgs['level'],
        charset: o.charset as TrainArgs['charset'],
        lowercase: o.lowercase as boolean | undefined,
        maxVocab: o.maxVocab as number,
        minCount: o.minCount as number,
        unk: o.unk as boolean,
        cell: o.cell as TrainArgs['cell'],
        layers: o.layers as number,
        dropout: o.dropout as number,
        hidden: o.hidden as number,
        seqLength: o.seqLength as number,
        batchSize: o.batchSize as number,
        lr: o.lr as number,
        optimizer: o.optimizer as TrainArgs['optimizer'],
        momentum: o.momentum as number | undefined,
        nesterov: o.nesterov as boolean | undefined,
        rmsDecay: o.rmsDecay as number | undefined,
        lrSchedule: o.lrSchedule as TrainArgs['lrSchedule'],
        lrDecay: o.lrDecay as number | undefined,
        lrDecayEvery: o.lrDecayEvery as number | undefined,
        lrDecayAfter: o.lrDecayAfter as number | undefined,
        lrMin: o.lrMin as number | undefined,
        clip: o.clip as number,
        stateReset: o.stateReset as number,
        iterations: o.iterations as number | undefined,
        epochs: o.epochs as number | undefined,
        seed: o.seed as number,
        backend: o.backend as BackendChoice,
        tune: o.tune as TuneMode,
        checkpoint: o.checkpoint as string | undefined,
        checkpointEvery: o.checkpointEvery as number,
        evalEvery: o.evalEvery as number,
        evalBatches: o.evalBatches as number,
        sampleEvery: o.sampleEvery as number,
        sampleLength: o.sampleLength as number,
        temperature: o.temperature as number,
        prime: o.prime as string | undefined,
        resume: o.resume as string | undefined,
        quiet: Boolean(o.quiet),
        printEvery: o.printEvery as number,
        maxCorpusMb: o.maxCorpusMb as number | undefined,
        controls: samplingControls(o),
        numSamples: o.numSamples as number,
        given,
      };
      setCode(await runTrain(args, io));
    });
  void train;

  addSamplingOptions(program
    .command('sample')
    .description('generate text from a checkpoint')
    .requiredOption('--checkpoint <path>', 'checkpoint file to sample from')
    .option('--length <n>', 'tokens to generate', positiveInt, 500)
    .option('--temperature <t>', 'sampling temperature (lower: safer, higher: wilder)', nonNegativeNumber, 0.8)
    .option('--prime <text>', 'text to start from, printed before the generated text (default: a newline)', nonEmpty)
    .option('--argmax', 'always take the most likely next token (same as --temperature 0)', false)
    .option('--seed <n>', 'seed for the sampler (default: a random one)', seedValue))
    .addOption(backendOption())
    .addOption(tuneOption())
    .action(async (o: Record<string, unknown>) => {
      setCode(await runSample({
        checkpoint: o.checkpoint as string,
        length: o.length as number,
        temperature: o.temperature as number,
        prime: o.prime as string | undefined,
        argmax: Boolean(o.argmax),
        seed: o.seed as number | undefined,
        backend: o.backend as BackendChoice,
        controls: samplingControls(o),
        numSamples: o.numSamples as number,
        tune: o.tune as TuneMode,
      }, io));
    });

  program
    .command('eval')
    .description('validation loss of a checkpoint, in nats and bits per token; --baselines: beside count models, with or without a checkpoint')
    .option('--checkpoint <path>', 'checkpoint file to evaluate (needed unless --baselines)')
    .option('--corpus <name|path>', 'text to score (default: the held-out 5% of the checkpoint\'s own corpus; another file is scored whole)', nonEmpty)
    .option('--baselines', 'also score unigram, bigram and trigram count models (modified Kneser-Ney) trained on the same 95% and scored on the same held-out 5%', false)
    .addOption(new Option('--level <level>', 'without --checkpoint: tokens, characters or words').choices(['char', 'word']))
    .addOption(new Option('--charset <set>', 'without --checkpoint: characters kept, as for train').choices([...CHARSETS]))
    .option('--lowercase', 'without --checkpoint: lowercase the text (default: on for reuters)')
    .option('--no-lowercase', 'without --checkpoint: keep the text\'s case')
    .option('--max-vocab <n>', `without --checkpoint, word level: largest vocabulary (default ${D.maxVocab})`, positiveInt)
    .option('--min-count <n>', `without --checkpoint, word level: words seen fewer times become <unk> (default ${D.minCount})`, positiveInt)
    .option('--no-unk', 'without --checkpoint, word level: no <unk> token')
    .option('--max-corpus-mb <n>', `refuse a corpus file larger than this many MB (default ${DEFAULT_MAX_CORPUS_MB})`, positiveInt)
    .addOption(backendOption())
    .addOption(tuneOption())
    .addHelpText('after', `
Examples:
  npm run rnn -- eval --checkpoint checkpoints/reuters-char.safetensors --baselines
  npm run rnn -- eval --baselines --corpus reuters --level word --max-vocab 10000`)
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const given = new Set(Object.keys(o).filter((k) => cmd.getOptionValueSource(k) === 'cli'));
      setCode(await runEval({
        checkpoint: o.checkpoint as string | undefined, corpus: o.corpus as string | undefined, backend: o.backend as BackendChoice, tune: o.tune as TuneMode,
        maxCorpusMb: o.maxCorpusMb as number | undefined, baselines: Boolean(o.baselines),
        level: o.level as TrainArgs['level'] | undefined, charset: o.charset as TrainArgs['charset'] | undefined,
        lowercase: o.lowercase as boolean | undefined, maxVocab: o.maxVocab as number | undefined,
        minCount: o.minCount as number | undefined, unk: o.unk as boolean | undefined, given,
      }, io));
    });

  return program;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  let code = EXIT_OK;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are successes; everything else commander reports is a usage error.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT_OK;
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    io.stderr.write(`${errorLine(e)}\n`);
    if (io.env.RNN_DEBUG && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
    return exitCodeFor(e);
  }
}
