/**
 * Entry point: `npm run rnn -- <command> [options]` (`npm start` = `train` with the defaults).
 * All the work is in run(); this file only connects it to the real process.
 */
import { nodeIo } from './io.ts';
import { run } from './run.ts';

// `rnn sample | head` closes the pipe early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

process.exitCode = await run(process.argv.slice(2), nodeIo());
