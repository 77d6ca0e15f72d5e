/**
 * How a user runs this CLI, for the help and for the lines that suggest a next command: `npm run
 * rnn --` in this repository, `npx webgpu-rnn` from the published package, whose build
 * (src/lib/build/vite.config.ts) defines __WEBGPU_RNN_COMMAND__.
 */
declare const __WEBGPU_RNN_COMMAND__: string | undefined;

export const FROM_PACKAGE = typeof __WEBGPU_RNN_COMMAND__ === 'string';
/** The words before a subcommand: `npm run rnn --` or `npx webgpu-rnn`. */
export const COMMAND = FROM_PACKAGE ? __WEBGPU_RNN_COMMAND__! : 'npm run rnn --';
/** Training with the defaults: `npm start`, or the package's `train`. */
export const START = FROM_PACKAGE ? `${COMMAND} train` : 'npm start';
