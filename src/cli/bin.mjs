#!/usr/bin/env node
// The package's `rnn` command: plain node with tsx registered as a loader in-process, as the npm
// scripts do with `--import tsx`, not the tsx CLI, whose signal relay SIGKILLs a trainer busy
// with a CPU iteration.
import { register } from 'tsx/esm/api';

register();
await import('../node/register-raw.mjs');
await import('./main.ts');
