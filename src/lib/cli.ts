#!/usr/bin/env node
// The package's `webgpu-rnn` (and `rnn`) command, compiled to dist/lib/cli.js: the CLI of
// src/cli/main.ts in plain node, with no loader, so signals reach it directly and a run stopped by
// Ctrl-C, SIGTERM or SIGHUP saves its checkpoint (src/cli/io.ts).
import '../cli/main.ts';
