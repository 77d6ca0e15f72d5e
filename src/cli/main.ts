/**
 * Entry point: `npm run rnn -- <command> [options]` (`npm start` = `train` with the defaults).
 * All the work is in run(); this file only connects it to the real process (signals, and what a
 * failing stdout means, are nodeIo's).
 */
import { nodeIo } from './io.ts';
import { run } from './run.ts';

process.exitCode = await run(process.argv.slice(2), nodeIo());
