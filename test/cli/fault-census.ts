/**
 * Fault census for issue 15: concrete CLI cases, tried as a hostile but realistic user would,
 * each judged PASS or FAIL by an explicit criterion, against the CLI of any checkout (so the same
 * census counts the failures before and after a change).
 *
 *   node --import tsx test/cli/fault-census.ts <repo-dir> [--json out.json] [--only <regexp>]
 *
 * Not a vitest file: it takes minutes, runs the CLI as child processes of another checkout, and
 * its job is to count, not to gate. The classes are the issue's:
 *   1 interruptions lose work   2 reads without bounds   3 targets that must not be written
 *   4 poisoned state            5 errors that are not one line   6 resume exactness
 *
 * Every case runs in its own temporary directory, in its own process group, under a timeout (a
 * hang is a FAIL) and a resident-memory watchdog over the whole group (a runaway read is a FAIL,
 * killed at WATCHDOG_MB). "One line" means what the user sees: every non-empty stderr line
 * counts, native warnings included.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// ---------------------------------------------------------------------------------------------
// Running the CLI

const WATCHDOG_MB = 3000;
const CLI_ENTRY = ['--import', 'tsx', '--import', './src/node/register-raw.mjs', 'src/cli/main.ts'];

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Killed by the watchdog for growing past WATCHDOG_MB. */
  runaway: boolean;
  /** Peak resident memory of the whole process group, sampled every 200 ms, in MB. */
  peakMb: number;
  /** Processes of the group still alive one second after the leader exited (killed then). */
  leftBehind: string[];
  ms: number;
}

interface Control {
  child: ChildProcess;
  /** Signal the whole process group (as a terminal does) or only the leader (as `kill <pid>`). */
  signal(sig: NodeJS.Signals, to?: 'group' | 'leader'): void;
  /** Close our read end of the child's stdout, as `| head -1` does after its line. */
  closeStdout(): void;
}

interface RunOptions {
  via?: 'node' | 'npm';
  timeoutMs?: number;
  /** Where the child's stdout goes: captured (default) or an fd such as /dev/full's. */
  stdoutFd?: number;
  uid?: number;
  /** Called for every complete stdout line while the process runs. */
  onLine?: (line: string, ctl: Control) => void;
  /** Wrap in /usr/bin/time -f %M -o <file>. */
  timeFile?: string;
}

let REPO = '';
/** The process group of the most recent runCli, for cases that signal it on a timer. */
let lastPgid = 0;

function groupPids(pgid: number): { pid: number; rssKb: number; cmd: string }[] {
  const out: { pid: number; rssKb: number; cmd: string }[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is the state (field 3); pgrp is field 5, rss (pages) field 24.
      if (Number(fields[2]) !== pgid || fields[0] === 'Z') continue;
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.push({ pid: Number(name), rssKb: Number(fields[21]) * 4, cmd });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

function killGroup(pgid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // Already gone.
  }
}

function runCli(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const via = opts.via ?? 'node';
  let cmd: string;
  let argv: string[];
  if (via === 'npm') {
    cmd = 'npm';
    argv = ['run', 'rnn', '--', ...args];
  } else {
    cmd = process.execPath;
    argv = [...CLI_ENTRY, ...args];
  }
  if (opts.timeFile) {
    argv = ['-f', '%M', '-o', opts.timeFile, cmd, ...argv];
    cmd = '/usr/bin/time';
  }
  const started = Date.now();
  const child = spawn(cmd, argv, {
    cwd: REPO,
    detached: true,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', HOME: opts.uid !== undefined ? '/tmp' : process.env.HOME },
    stdio: ['ignore', opts.stdoutFd ?? 'pipe', 'pipe'],
    uid: opts.uid,
    gid: opts.uid,
  });
  const pgid = child.pid!;
  lastPgid = pgid;
  let stdout = '';
  let stderr = '';
  let pending = '';
  let timedOut = false;
  let runaway = false;
  let peakMb = 0;
  const ctl: Control = {
    child,
    signal(sig, to = 'group') {
      try {
        process.kill(to === 'group' ? -pgid : pgid, sig);
      } catch {
        // Gone.
      }
    },
    closeStdout() {
      child.stdout?.destroy();
    },
  };
  child.stdout?.on('data', (b: Buffer) => {
    const s = b.toString('utf8');
    stdout += s;
    pending += s;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      opts.onLine?.(line, ctl);
    }
  });
  child.stdout?.on('error', () => {});
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const watchdog = setInterval(() => {
    const mb = groupPids(pgid).reduce((s, p) => s + p.rssKb, 0) / 1024;
    peakMb = Math.max(peakMb, mb);
    if (mb > WATCHDOG_MB) {
      runaway = true;
      killGroup(pgid);
    }
  }, 200);
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(pgid);
  }, opts.timeoutMs ?? 60_000);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      const ms = Date.now() - started;
      setTimeout(() => {
        const left = groupPids(pgid).map((p) => `${p.pid} ${p.cmd.slice(0, 80)}`);
        killGroup(pgid);
        // Let the pipes drain (a left-behind process may hold them: do not wait for it).
        setTimeout(() => resolve({ code, signal, stdout, stderr, timedOut, runaway, peakMb, leftBehind: left, ms }), 200);
      }, 1000);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Judging

const errLines = (r: RunResult) => r.stderr.split('\n').filter((l) => l.trim() !== '');
const oneLine = (r: RunResult) => errLines(r).length === 1;
const clip = (s: string, n = 160) => (s.length > n ? s.slice(0, n) + '…' : s).replace(/\n/g, ' | ');

function how(r: RunResult): string {
  const exit = r.timedOut ? `HANG (killed after ${Math.round(r.ms / 1000)}s)` : r.runaway ? `RUNAWAY (> ${WATCHDOG_MB} MB, killed)` : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  const lines = errLines(r);
  const err = lines.length === 0 ? 'stderr empty' : `stderr ${lines.length} line${lines.length > 1 ? 's' : ''}: ${clip(lines.length > 1 ? lines.slice(0, 3).join(' | ') : lines[0])}`;
  return `${exit}, ${err}`;
}

interface Verdict {
  pass: boolean;
  what: string;
}

/** All conditions must hold; the first failing one is named. */
function judge(r: RunResult | null, checks: [boolean, string][], extra = ''): Verdict {
  const failed = checks.filter(([ok]) => !ok).map(([, why]) => why);
  const base = r ? how(r) : '';
  const tail = [extra, failed.length ? `FAILED: ${failed.join('; ')}` : ''].filter(Boolean).join('; ');
  return { pass: failed.length === 0, what: [base, tail].filter(Boolean).join('; ') };
}

/** The one-line-error criterion shared by classes 2-5. */
function oneLineError(r: RunResult, file?: string): [boolean, string][] {
  const checks: [boolean, string][] = [
    [!r.timedOut, 'hung'],
    [!r.runaway, 'unbounded memory'],
    [r.signal === null, `died by signal ${r.signal}`],
    [r.code !== 0 && r.code !== null, 'exit 0'],
    [oneLine(r), `stderr is ${errLines(r).length} lines, not 1`],
    // The CLI's own wording for an internal error, a stack frame, or a native abort.
    [!/unexpected;|RNN_DEBUG|Aborted|FATAL ERROR|heap out of memory|^\s+at /m.test(r.stderr), 'internal/native error text'],
  ];
  if (file) checks.push([r.stderr.includes(path.basename(file)), 'the line does not name the file']);
  return checks;
}

const trained = /^iter \d+/m;

// ---------------------------------------------------------------------------------------------
// Fixtures: a corpus, and a small checkpoint trained by this checkout's own CLI

interface Ctx {
  dir: string; // this case's own temp dir
  corpus: string; // ~90 KB text
  base: string; // a small trained checkpoint (copy it before touching)
}

let ROOT = '';
let CORPUS = '';
let BASE = '';

const TINY = ['--hidden', '16', '--seq-length', '8', '--batch-size', '4', '--sample-every', '0', '--print-every', '1'];
/** CPU iterations of about a second or two here (two shared cores). */
const SLOW_CPU = ['--backend', 'cpu', '--hidden', '128', '--batch-size', '32', '--seq-length', '64'];
const SLOW_GPU = ['--backend', 'gpu', '--hidden', '128', '--batch-size', '16', '--seq-length', '32'];
const LONG = ['--iterations', '100000', '--print-every', '1', '--sample-every', '0', '--eval-every', '0', '--checkpoint-every', '0'];

function makeCorpus(file: string, chars: number): void {
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'dog', 'ran', 'far', 'away', 'home', 'Market', 'rose', '3.5', 'pct'];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 16777216;
  const parts: string[] = [];
  let n = 0;
  while (n < chars) {
    const line = Array.from({ length: 8 + Math.floor(rnd() * 8) }, () => words[Math.floor(rnd() * words.length)]).join(' ') + '\n';
    parts.push(line);
    n += line.length;
  }
  fs.writeFileSync(file, parts.join(''));
}

async function sampleOk(ckpt: string): Promise<boolean> {
  if (!fs.existsSync(ckpt)) return false;
  const r = await runCli(['sample', '--checkpoint', ckpt, '--length', '5', '--backend', 'cpu', '--seed', '1'], { timeoutMs: 60_000 });
  return r.code === 0;
}

// ---------------------------------------------------------------------------------------------
// Safetensors, decoded here (independent of the checkout under test)

interface Decoded {
  header: Record<string, any>;
  dataStart: number;
  bytes: Buffer;
}

function decode(file: string): Decoded {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  return { header, dataStart: 8 + n, bytes };
}

function encode(header: Record<string, any>, data: Buffer): Buffer {
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), data]);
}

/** Rewrite one JSON-valued metadata entry of a checkpoint. */
function editMetadata(src: string, dst: string, key: string, edit: (v: any) => any): void {
  const d = decode(src);
  const meta = d.header.__metadata__;
  if (edit === DELETE) delete meta[key];
  else meta[key] = JSON.stringify(edit(JSON.parse(meta[key])));
  fs.writeFileSync(dst, encode(d.header, d.bytes.subarray(d.dataStart)));
}
const DELETE = (v: any) => v;

/** Set element 0 of a tensor (F32) to a value. */
function poison(src: string, dst: string, tensor: string, value: number): void {
  const d = decode(src);
  const entry = d.header[tensor];
  if (!entry) throw new Error(`no tensor ${tensor} in ${src}: ${Object.keys(d.header).join(', ')}`);
  d.bytes.writeFloatLE(value, d.dataStart + entry.data_offsets[0]);
  fs.writeFileSync(dst, d.bytes);
}

function tensors(file: string): Map<string, Buffer> {
  const d = decode(file);
  const out = new Map<string, Buffer>();
  for (const [name, e] of Object.entries(d.header)) {
    if (name === '__metadata__') continue;
    out.set(name, d.bytes.subarray(d.dataStart + e.data_offsets[0], d.dataStart + e.data_offsets[1]));
  }
  return out;
}

function compareTensors(a: string, b: string): { same: boolean; what: string } {
  const ta = tensors(a);
  const tb = tensors(b);
  const diffs: string[] = [];
  let maxAbs = 0;
  for (const name of new Set([...ta.keys(), ...tb.keys()])) {
    const x = ta.get(name);
    const y = tb.get(name);
    if (!x || !y) {
      diffs.push(`${name} only in one`);
      continue;
    }
    if (x.equals(y)) continue;
    const fx = new Float32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
    const fy = new Float32Array(y.buffer.slice(y.byteOffset, y.byteOffset + y.byteLength));
    let n = 0;
    for (let i = 0; i < fx.length; i++) {
      if (Object.is(fx[i], fy[i])) continue;
      n++;
      maxAbs = Math.max(maxAbs, Math.abs(fx[i] - fy[i]));
    }
    diffs.push(`${name} (${n}/${fx.length})`);
  }
  return {
    same: diffs.length === 0,
    what: diffs.length === 0 ? `all ${ta.size} tensors bit-identical` : `${diffs.length} of ${ta.size} tensors differ, max |diff| ${maxAbs.toExponential(2)}: ${diffs.slice(0, 4).join(', ')}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Case helpers

function mkfifo(p: string): void {
  const r = spawnSync('mkfifo', [p]);
  if (r.status !== 0) throw new Error(`mkfifo ${p} failed`);
}

const copyBase = (ctx: Ctx, name = 'ck.safetensors') => {
  const p = path.join(ctx.dir, name);
  fs.copyFileSync(ctx.base, p);
  return p;
};

const tmpDebris = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'));

/** Class 1: train, signal after the first iteration line, then judge save + exit + leftovers. */
function interruption(opts: {
  backend: string[];
  sig: NodeJS.Signals;
  via?: 'node' | 'npm';
  to?: 'group' | 'leader';
  second?: boolean;
  pipe?: boolean;
}) {
  return async (ctx: Ctx): Promise<Verdict> => {
    const ck = path.join(ctx.dir, 'ck.safetensors');
    let sentAt = 0;
    const extra = opts.second ? ['--checkpoint-every', '1'] : [];
    const args = ['train', '--corpus', ctx.corpus, ...opts.backend, ...LONG, ...extra, '--checkpoint', ck];
    const r = await runCli(args, {
      via: opts.via,
      timeoutMs: 120_000,
      onLine(line, c) {
        // The second-signal case waits for iteration 2, so iteration 1's save is on disk.
        if (sentAt || !/^iter (\d+)/.test(line) || (opts.second && !/^iter 2\//.test(line))) return;
        sentAt = Date.now();
        if (opts.pipe) c.closeStdout();
        else {
          c.signal(opts.sig, opts.to ?? 'group');
          if (opts.second) setTimeout(() => c.signal(opts.sig, opts.to ?? 'group'), 300);
        }
      },
    });
    const n = opts.pipe ? 13 : ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as Record<string, number>)[opts.sig];
    const sigName = opts.pipe ? 'SIGPIPE' : opts.sig;
    const exitOk = opts.via === 'npm' ? r.code !== 0 && !(r.code === null && r.signal === null) : r.code === 128 + n || r.signal === sigName;
    const saved = /\bsaved\b/i.test(r.stdout + r.stderr);
    const loads = await sampleOk(ck);
    const after = sentAt ? `stopped ${((Date.now() - sentAt) / 1000).toFixed(1)}s after the signal` : 'never reached an iteration line';
    const checks: [boolean, string][] = [
      [sentAt > 0, 'no iteration line to interrupt'],
      [!r.timedOut, 'did not stop'],
      [exitOk, opts.via === 'npm' ? 'npm exit 0' : `exit not ${128 + n}`],
      [r.leftBehind.length === 0, `process left running after exit: ${r.leftBehind.join(', ')}`],
      [loads, fs.existsSync(ck) ? 'checkpoint does not load' : 'no checkpoint at the target'],
      [tmpDebris(ctx.dir).length === 0, `debris ${tmpDebris(ctx.dir).join(',')}`],
    ];
    if (!opts.second) checks.push([saved, 'no "saved" message']);
    return judge(r, checks, `${after}, peak ${Math.round(r.peakMb)} MB`);
  };
}

/** Classes 2, 4, 5: a command that must end in one line naming the file and a non-zero exit. */
function mustRefuse(build: (ctx: Ctx) => { args: string[]; file?: string; timeoutMs?: number; maxMb?: number }) {
  return async (ctx: Ctx): Promise<Verdict> => {
    const { args, file, timeoutMs, maxMb } = build(ctx);
    const r = await runCli(args, { timeoutMs: timeoutMs ?? 30_000 });
    const checks = oneLineError(r, file);
    checks.push([!trained.test(r.stdout), 'trained anyway']);
    if (maxMb) checks.push([r.peakMb < maxMb, `peak ${Math.round(r.peakMb)} MB >= ${maxMb} MB`]);
    return judge(r, checks, `peak ${Math.round(r.peakMb)} MB`);
  };
}

/** Class 5 metadata: a bad value is refused in one line naming the file, or (for a value the
 * command does not use) ignored cleanly with exit 0 and an empty stderr; a resume must refuse. */
function badMetadata(key: string, edit: (v: any) => any, cmd: 'sample' | 'eval' | 'resume') {
  return async (ctx: Ctx): Promise<Verdict> => {
    const ck = path.join(ctx.dir, 'bad.safetensors');
    editMetadata(ctx.base, ck, key, edit);
    const args =
      cmd === 'sample' ? ['sample', '--checkpoint', ck, '--length', '5', '--backend', 'cpu', '--seed', '1']
      : cmd === 'eval' ? ['eval', '--checkpoint', ck, '--backend', 'cpu']
      : ['train', '--resume', ck, '--iterations', '8', '--backend', 'cpu', '--checkpoint', path.join(ctx.dir, 'out.safetensors'), '--print-every', '1', '--sample-every', '0'];
    const r = await runCli(args, { timeoutMs: 30_000 });
    if (cmd !== 'resume' && r.code === 0 && errLines(r).length === 0) return judge(r, [], 'value not used by this command; ignored');
    const checks = oneLineError(r, ck);
    checks.push([!trained.test(r.stdout), 'trained anyway']);
    return judge(r, checks);
  };
}

/** Class 3: an output path that must be refused before training, leaving the target as it was. */
function mustNotWrite(setup: (ctx: Ctx) => { checkpoint: string; extraArgs?: string[]; intact: () => [boolean, string]; uid?: number }) {
  return async (ctx: Ctx): Promise<Verdict> => {
    const s = setup(ctx);
    const args = ['train', '--corpus', ctx.corpus, '--backend', 'cpu', ...TINY, '--iterations', '5', '--checkpoint', s.checkpoint, ...(s.extraArgs ?? [])];
    const r = await runCli(args, { timeoutMs: 60_000, uid: s.uid });
    const [intact, why] = s.intact();
    return judge(r, [
      [!r.timedOut, 'hung'],
      [r.code !== 0 && r.code !== null, 'exit 0'],
      [!trained.test(r.stdout), 'trained before refusing'],
      [oneLine(r), `stderr is ${errLines(r).length} lines, not 1`],
      [intact, why],
    ]);
  };
}

const sameBytes = (file: string, before: Buffer): [boolean, string] => {
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile()) return [false, `${path.basename(file)} is no longer a regular file`];
    return [fs.readFileSync(file).equals(before), `${path.basename(file)} changed`];
  } catch {
    return [false, `${path.basename(file)} is gone`];
  }
};

// ---------------------------------------------------------------------------------------------
// The cases

interface Case {
  cls: number;
  name: string;
  run: (ctx: Ctx) => Promise<Verdict>;
}

const CLASS_NAMES: Record<number, string> = {
  1: 'interruptions lose work',
  2: 'reads without bounds',
  3: 'targets that must not be written',
  4: 'poisoned state',
  5: 'errors that are not one line',
  6: 'resume exactness',
};

const CPU = ['--backend', 'cpu'];
const sampleArgs = (ck: string) => ['sample', '--checkpoint', ck, '--length', '5', '--backend', 'cpu', '--seed', '1'];
const evalArgs = (ck: string) => ['eval', '--checkpoint', ck, '--backend', 'cpu'];
const resumeArgs = (ctx: Ctx, ck: string) => ['train', '--resume', ck, '--iterations', '8', '--backend', 'cpu', '--print-every', '1', '--sample-every', '0', '--checkpoint', path.join(ctx.dir, 'out.safetensors')];

const cases: Case[] = [
  // 1. Interruptions ----------------------------------------------------------------------------
  ...(['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => ({ cls: 1, name: `cpu node ${sig} (1-2 s iterations)`, run: interruption({ backend: SLOW_CPU, sig }) })),
  ...(['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => ({ cls: 1, name: `gpu node ${sig}`, run: interruption({ backend: SLOW_GPU, sig }) })),
  { cls: 1, name: 'cpu npm run: SIGINT to the process group (Ctrl-C)', run: interruption({ backend: SLOW_CPU, sig: 'SIGINT', via: 'npm' }) },
  { cls: 1, name: 'cpu npm run: SIGTERM to the npm pid alone', run: interruption({ backend: SLOW_CPU, sig: 'SIGTERM', via: 'npm', to: 'leader' }) },
  { cls: 1, name: 'cpu npm run: SIGHUP to the process group (terminal closed)', run: interruption({ backend: SLOW_CPU, sig: 'SIGHUP', via: 'npm' }) },
  { cls: 1, name: 'gpu npm run: SIGINT to the process group', run: interruption({ backend: SLOW_GPU, sig: 'SIGINT', via: 'npm' }) },
  { cls: 1, name: 'gpu npm run: SIGTERM to the npm pid alone', run: interruption({ backend: SLOW_GPU, sig: 'SIGTERM', via: 'npm', to: 'leader' }) },
  { cls: 1, name: 'cpu node: second SIGINT 0.3 s after the first (--checkpoint-every 1)', run: interruption({ backend: SLOW_CPU, sig: 'SIGINT', second: true }) },
  { cls: 1, name: 'cpu node: stdout pipe closed after the first line (| head -1)', run: interruption({ backend: SLOW_CPU, sig: 'SIGINT', pipe: true }) },
  { cls: 1, name: 'gpu node: stdout pipe closed after the first line (| head -1)', run: interruption({ backend: SLOW_GPU, sig: 'SIGINT', pipe: true }) },
  {
    cls: 1,
    name: 'kill -9 during a save, then the next save removes the *.tmp',
    async run(ctx) {
      const ck = path.join(ctx.dir, 'ck.safetensors');
      // A model whose save takes a while (a few MB, fsynced): kill the group the moment a
      // temporary appears in the directory.
      const args = ['train', '--corpus', ctx.corpus, '--backend', 'cpu', '--hidden', '512', '--batch-size', '1', '--seq-length', '2', ...LONG, '--checkpoint-every', '1', '--checkpoint', ck];
      let caught = false;
      let watcher: fs.FSWatcher | undefined;
      const r = await runCli(args, {
        timeoutMs: 90_000,
        onLine(line, c) {
          // Give up waiting for the save window after 30 iterations: the stale file is planted below.
          if (/^iter 30\//.test(line) && !caught) c.signal('SIGKILL');
          if (watcher || !/^iter 1\//.test(line)) return;
          watcher = fs.watch(ctx.dir, (_ev, name) => {
            if (!caught && name && String(name).endsWith('.tmp')) {
              caught = true;
              c.signal('SIGKILL');
            }
          });
        },
      });
      watcher?.close();
      const debris = tmpDebris(ctx.dir);
      let note = caught && debris.length ? `killed mid-save, left ${debris.length} *.tmp` : '';
      if (!debris.length) {
        // The kill landed after the rename: plant what it would have left, from a dead pid.
        const dead = spawnSync('true').pid!;
        fs.writeFileSync(path.join(ctx.dir, `.ck.safetensors.${dead}.0123456789ab.tmp`), Buffer.alloc(1 << 20));
        note = 'kill missed the save window; planted a stale .tmp from a dead pid';
      }
      const r2 = await runCli(['train', '--corpus', ctx.corpus, '--backend', 'cpu', ...TINY, '--iterations', '2', '--checkpoint', ck], { timeoutMs: 60_000 });
      const left = tmpDebris(ctx.dir);
      return judge(r2, [
        [!r.timedOut, `the first run did not start saving: ${how(r)}`],
        [r2.code === 0, 'the next run failed'],
        [left.length === 0, `*.tmp still there after the next save: ${left.join(', ')}`],
      ], note);
    },
  },

  // 2. Reads without bounds ---------------------------------------------------------------------
  {
    cls: 2,
    name: 'FIFO as the corpus',
    run: mustRefuse((ctx) => {
      const f = path.join(ctx.dir, 'corpus.fifo');
      mkfifo(f);
      return { args: ['train', '--corpus', f, ...CPU, ...TINY, '--iterations', '2', '--checkpoint', path.join(ctx.dir, 'o.safetensors')], file: f };
    }),
  },
  ...(['sample', 'eval', 'resume'] as const).map((cmd) => ({
    cls: 2,
    name: `FIFO as the ${cmd} checkpoint`,
    run: mustRefuse((ctx) => {
      const f = path.join(ctx.dir, 'ck.fifo');
      mkfifo(f);
      return { args: cmd === 'sample' ? sampleArgs(f) : cmd === 'eval' ? evalArgs(f) : resumeArgs(ctx, f), file: f };
    }),
  })),
  { cls: 2, name: '/dev/zero as the corpus', run: mustRefuse((ctx) => ({ args: ['train', '--corpus', '/dev/zero', ...CPU, ...TINY, '--iterations', '2', '--checkpoint', path.join(ctx.dir, 'o.safetensors')], file: '/dev/zero', maxMb: 1000 })) },
  { cls: 2, name: '/dev/zero as the sample checkpoint', run: mustRefuse(() => ({ args: sampleArgs('/dev/zero'), file: '/dev/zero', maxMb: 1000 })) },
  { cls: 2, name: '/dev/zero as --resume', run: mustRefuse((ctx) => ({ args: resumeArgs(ctx, '/dev/zero'), file: '/dev/zero', maxMb: 1000 })) },
  ...([
    ['layers', 1e9],
    ['hiddenSize', 1e9],
    ['vocabSize', 1e9],
  ] as const).flatMap(([field, value]) =>
    (['sample', 'resume'] as const).map((cmd) => ({
      cls: 2,
      name: `metadata model.${field} = ${value} (${cmd})`,
      run: mustRefuse((ctx) => {
        const ck = path.join(ctx.dir, 'huge.safetensors');
        editMetadata(ctx.base, ck, 'model', (m) => ({ ...m, [field]: value }));
        return { args: cmd === 'sample' ? sampleArgs(ck) : resumeArgs(ctx, ck), file: ck, maxMb: 1000 };
      }),
    })),
  ),
  {
    cls: 2,
    name: '1.5 GB sparse file of zeros as the checkpoint',
    run: mustRefuse((ctx) => {
      const f = path.join(ctx.dir, 'zeros.safetensors');
      fs.closeSync(fs.openSync(f, 'w'));
      fs.truncateSync(f, 1500 * 1024 * 1024);
      return { args: sampleArgs(f), file: f, maxMb: 1000 };
    }),
  },
  {
    cls: 2,
    name: 'real checkpoint padded to 1.5 GB (sparse trailing bytes)',
    run: mustRefuse((ctx) => {
      const f = copyBase(ctx, 'padded.safetensors');
      fs.truncateSync(f, 1500 * 1024 * 1024);
      return { args: sampleArgs(f), file: f, maxMb: 1000 };
    }),
  },
  {
    cls: 2,
    name: '100 MB text corpus: peak RSS to the first iteration under 3x the file',
    async run(ctx) {
      const big = path.join(ROOT, 'big100.txt');
      if (!fs.existsSync(big)) {
        const chunk = fs.readFileSync(CORPUS);
        const fd = fs.openSync(big, 'w');
        let n = 0;
        while (n < 100 * 1024 * 1024) n += fs.writeSync(fd, chunk);
        fs.closeSync(fd);
      }
      const size = fs.statSync(big).size;
      const timeFile = path.join(ctx.dir, 'rss.txt');
      let first = false;
      const r = await runCli(['train', '--corpus', big, ...CPU, ...TINY, '--iterations', '1000', '--checkpoint', path.join(ctx.dir, 'o.safetensors')], {
        timeoutMs: 180_000,
        timeFile,
        onLine(line, c) {
          // Stop the trainer (not `time`) at the first iteration: the corpus is loaded by then.
          if (first || !/^iter 1\//.test(line)) return;
          first = true;
          for (const p of groupPids(c.child.pid!)) if (!p.cmd.startsWith('/usr/bin/time')) process.kill(p.pid, 'SIGKILL');
        },
      });
      const peakKb = Number((fs.existsSync(timeFile) ? fs.readFileSync(timeFile, 'utf8') : '').trim().split('\n').pop());
      const peakMb = peakKb / 1024;
      return judge(null, [
        [!r.timedOut, `no iteration within ${Math.round(r.ms / 1000)} s`],
        [first, `never reached iteration 1: ${how(r)}`],
        [peakMb < (3 * size) / 1024 / 1024, `peak ${Math.round(peakMb)} MB >= 3x ${Math.round(size / 1048576)} MB`],
      ], `first iteration after ${(r.ms / 1000).toFixed(1)} s, peak RSS ${Math.round(peakMb)} MB for ${Math.round(size / 1048576)} MB`);
    },
  },

  // 3. Targets that must not be written ---------------------------------------------------------
  ...(['itself', 'a symlink', 'a hard link'] as const).map((kind) => ({
    cls: 3,
    name: `--checkpoint is the corpus (${kind})`,
    run: mustNotWrite((ctx) => {
      const corpus = path.join(ctx.dir, 'text.txt');
      fs.copyFileSync(ctx.corpus, corpus);
      const before = fs.readFileSync(corpus);
      let ck = corpus;
      if (kind === 'a symlink') fs.symlinkSync(corpus, (ck = path.join(ctx.dir, 'link.safetensors')));
      if (kind === 'a hard link') fs.linkSync(corpus, (ck = path.join(ctx.dir, 'hard.safetensors')));
      // The corpus flag must name this copy, so override the context's.
      ctx.corpus = corpus;
      return { checkpoint: ck, intact: () => sameBytes(corpus, before) };
    }),
  })),
  {
    cls: 3,
    name: '--checkpoint is a symlink to /dev/null',
    run: mustNotWrite((ctx) => {
      const link = path.join(ctx.dir, 'null.safetensors');
      fs.symlinkSync('/dev/null', link);
      return {
        checkpoint: link,
        intact: () => {
          const l = fs.lstatSync(link);
          const ok = l.isSymbolicLink() && fs.readlinkSync(link) === '/dev/null' && fs.statSync('/dev/null').isCharacterDevice();
          return [ok, l.isSymbolicLink() ? '/dev/null changed' : 'the symlink was replaced by a regular file'];
        },
      };
    }),
  },
  {
    cls: 3,
    name: '--checkpoint is a character device node (mknod c 1 3)',
    run: mustNotWrite((ctx) => {
      const dev = path.join(ctx.dir, 'nulldev');
      const made = spawnSync('mknod', [dev, 'c', '1', '3']).status === 0;
      return { checkpoint: dev, intact: () => [made && fs.lstatSync(dev).isCharacterDevice(), made ? 'the device node was replaced' : 'mknod unavailable'] };
    }),
  },
  {
    cls: 3,
    name: '--checkpoint is a FIFO',
    run: mustNotWrite((ctx) => {
      const f = path.join(ctx.dir, 'ck.fifo');
      mkfifo(f);
      return { checkpoint: f, intact: () => [fs.lstatSync(f).isFIFO(), 'the FIFO was replaced'] };
    }),
  },
  {
    cls: 3,
    name: '--checkpoint is a directory',
    run: mustNotWrite((ctx) => {
      const d = path.join(ctx.dir, 'ckdir');
      fs.mkdirSync(d);
      return { checkpoint: d, intact: () => [fs.statSync(d).isDirectory() && fs.readdirSync(d).length === 0, 'the directory changed'] };
    }),
  },
  {
    cls: 3,
    name: '--checkpoint under a regular file (file.txt/ck.safetensors)',
    run: mustNotWrite((ctx) => {
      const f = path.join(ctx.dir, 'file.txt');
      fs.writeFileSync(f, 'keep me\n');
      return { checkpoint: path.join(f, 'ck.safetensors'), intact: () => sameBytes(f, Buffer.from('keep me\n')) };
    }),
  },
  {
    cls: 3,
    name: '--checkpoint in an unwritable directory (as user nobody)',
    run: mustNotWrite((ctx) => {
      const d = path.join(ctx.dir, 'ro');
      fs.mkdirSync(d);
      fs.chmodSync(ctx.dir, 0o755);
      fs.chmodSync(d, 0o555);
      const corpus = path.join(ctx.dir, 'text.txt');
      fs.copyFileSync(ctx.corpus, corpus);
      fs.chmodSync(corpus, 0o644);
      ctx.corpus = corpus;
      return { checkpoint: path.join(d, 'ck.safetensors'), uid: 65534, intact: () => [fs.readdirSync(d).length === 0, 'something was written'] };
    }),
  },
  {
    cls: 3,
    name: '--resume "" beside a trained checkpoint',
    run: mustNotWrite((ctx) => {
      const ck = copyBase(ctx);
      const before = fs.readFileSync(ck);
      return { checkpoint: ck, extraArgs: ['--resume', ''], intact: () => sameBytes(ck, before) };
    }),
  },
  {
    cls: 3,
    name: '--checkpoint ""',
    run: mustNotWrite(() => ({ checkpoint: '', intact: () => [true, ''] })),
  },

  // 4. Poisoned state -----------------------------------------------------------------------------
  ...([
    ['NaN in a parameter', 'rnn.weight_hh_l0', NaN],
    ['+Inf in an optimizer first moment', 'optimizer.m.decoder.weight', Infinity],
    ['negative optimizer second moment', 'optimizer.v.decoder.bias', -1],
    ['NaN in the carried state', 'state.hidden', NaN],
  ] as const).flatMap(([what, tensor, value]) =>
    (['sample', 'eval', 'resume'] as const).map((cmd) => ({
      cls: 4,
      name: `${what} (${tensor}), ${cmd}`,
      run: mustRefuse((ctx) => {
        const ck = path.join(ctx.dir, 'poisoned.safetensors');
        poison(ctx.base, ck, tensor, value);
        return { args: cmd === 'sample' ? sampleArgs(ck) : cmd === 'eval' ? evalArgs(ck) : resumeArgs(ctx, ck), file: ck };
      }),
    })),
  ),

  // 5. Errors that are not one line -------------------------------------------------------------
  ...(['train', 'sample', 'eval'] as const).map((cmd) => ({
    cls: 5,
    name: `${cmd} > /dev/full`,
    async run(ctx: Ctx) {
      const ck = copyBase(ctx);
      const args =
        cmd === 'train' ? ['train', '--corpus', ctx.corpus, ...CPU, ...TINY, '--iterations', '3', '--checkpoint', path.join(ctx.dir, 'o.safetensors')]
        : cmd === 'sample' ? sampleArgs(ck)
        : evalArgs(ck);
      const fd = fs.openSync('/dev/full', 'w');
      const r = await runCli(args, { stdoutFd: fd, timeoutMs: 60_000 });
      fs.closeSync(fd);
      return judge(r, oneLineError(r));
    },
  })),
  ...([
    ['negative iteration', 'progress', (p: any) => ({ ...p, iteration: -5 })],
    ['fractional batch size', 'train', (t: any) => ({ ...t, batchSize: 2.5 })],
    ['string seed', 'progress', (p: any) => ({ ...p, seed: 'abc' })],
    ['unknown cell', 'model', (m: any) => ({ ...m, cell: 'transformer' })],
    ['missing tokenizer', 'tokenizer', DELETE],
  ] as const).flatMap(([what, key, edit]) =>
    (['sample', 'eval', 'resume'] as const).map((cmd) => ({ cls: 5, name: `metadata: ${what}, ${cmd}`, run: badMetadata(key, edit, cmd) })),
  ),
  {
    cls: 5,
    name: 'GPU error: --backend gpu --hidden 100000 (over the device limits)',
    run: mustRefuse((ctx) => ({ args: ['train', '--corpus', ctx.corpus, '--backend', 'gpu', '--hidden', '100000', '--seq-length', '8', '--batch-size', '4', '--iterations', '2', '--checkpoint', path.join(ctx.dir, 'o.safetensors')] })),
  },

  // 6. Resume exactness -------------------------------------------------------------------------
  ...(['cpu', 'gpu'] as const).flatMap((backend) =>
    [
      ['rnn', ['--hidden', '16', '--seq-length', '8', '--batch-size', '4', '--sample-every', '0', '--eval-every', '0']],
      ['2-layer lstm, dropout 0.2, evals and samples every 5', ['--cell', 'lstm', '--layers', '2', '--dropout', '0.2', '--hidden', '24', '--seq-length', '16', '--batch-size', '8', '--sample-every', '5', '--sample-length', '20', '--eval-every', '5', '--eval-batches', '3']],
    ].map(([label, model]) => ({
    cls: 6,
    name: `${backend} ${label}: 20 iterations straight vs 10 + --resume to 20, every tensor bit for bit`,
    async run(ctx: Ctx) {
      const common = ['--backend', backend, ...(model as string[]), '--checkpoint-every', '0', '--print-every', '5', '--seed', '7'];
      const straight = path.join(ctx.dir, 'straight.safetensors');
      const half = path.join(ctx.dir, 'half.safetensors');
      const r1 = await runCli(['train', '--corpus', ctx.corpus, ...common, '--iterations', '20', '--checkpoint', straight]);
      const r2 = await runCli(['train', '--corpus', ctx.corpus, ...common, '--iterations', '10', '--checkpoint', half]);
      const r3 = await runCli(['train', '--resume', half, '--backend', backend, '--iterations', '20', '--print-every', '5', '--sample-every', '0', '--eval-every', '0', '--checkpoint-every', '0', '--checkpoint', half]);
      const runs = [r1, r2, r3];
      const bad = runs.findIndex((r) => r.code !== 0);
      if (bad >= 0) return judge(runs[bad], [[false, `run ${bad + 1} of 3 failed`]]);
      const cmp = compareTensors(straight, half);
      return judge(null, [[cmp.same, 'tensors differ']], cmp.what);
    },
  }))),
];

/** More hostile inputs, beyond the reproductions: the other ways in to the same classes. */
cases.push(
  {
    cls: 1,
    name: 'cpu node SIGTERM during start-up (before the first iteration)',
    async run(ctx) {
      const ck = path.join(ctx.dir, 'ck.safetensors');
      let sent = false;
      const child = runCli(['train', '--corpus', ctx.corpus, ...SLOW_CPU, ...LONG, '--checkpoint', ck], { timeoutMs: 60_000 });
      // The CLI is still importing and loading at 1.5 s here (start-up takes 3-4 s).
      await new Promise((res) => setTimeout(res, 1500));
      if (groupPids(lastPgid).length > 0) {
        process.kill(-lastPgid, 'SIGTERM');
        sent = true;
      }
      const r = await child;
      return judge(r, [
        [sent, 'no process to signal'],
        [!r.timedOut, 'did not stop'],
        [r.code !== 0, 'exit 0'],
        [r.leftBehind.length === 0, `left running: ${r.leftBehind.join(', ')}`],
        [errLines(r).length <= 1, `stderr is ${errLines(r).length} lines`],
        [!trained.test(r.stdout) || fs.existsSync(ck), 'trained but saved nothing'],
      ]);
    },
  },
  {
    cls: 2,
    name: 'FIFO as eval --corpus',
    run: mustRefuse((ctx) => {
      const f = path.join(ctx.dir, 'text.fifo');
      mkfifo(f);
      return { args: ['eval', '--checkpoint', copyBase(ctx), '--corpus', f, '--backend', 'cpu'], file: f };
    }),
  },
  { cls: 2, name: '/dev/zero as eval --corpus', run: mustRefuse((ctx) => ({ args: ['eval', '--checkpoint', copyBase(ctx), '--corpus', '/dev/zero', '--backend', 'cpu'], file: '/dev/zero', maxMb: 1000 })) },
  {
    cls: 2,
    name: '--resume through a symlink to a FIFO',
    run: mustRefuse((ctx) => {
      const f = path.join(ctx.dir, 'ck.fifo');
      mkfifo(f);
      const l = path.join(ctx.dir, 'ck.safetensors');
      fs.symlinkSync(f, l);
      return { args: resumeArgs(ctx, l), file: l };
    }),
  },
  {
    cls: 2,
    name: '700 MB sparse corpus of zeros (over a sane default limit)',
    run: mustRefuse((ctx) => {
      const f = path.join(ctx.dir, 'huge.txt');
      fs.closeSync(fs.openSync(f, 'w'));
      fs.truncateSync(f, 700 * 1024 * 1024);
      return { args: ['train', '--corpus', f, ...CPU, ...TINY, '--iterations', '2', '--checkpoint', path.join(ctx.dir, 'o.safetensors')], file: f, maxMb: 1000, timeoutMs: 60_000 };
    }),
  },
  {
    cls: 5,
    name: 'empty corpus file',
    run: mustRefuse((ctx) => {
      const f = path.join(ctx.dir, 'empty.txt');
      fs.writeFileSync(f, '');
      return { args: ['train', '--corpus', f, ...CPU, ...TINY, '--iterations', '2', '--checkpoint', path.join(ctx.dir, 'o.safetensors')], file: f };
    }),
  },
  {
    cls: 5,
    name: 'checkpoint cut in the middle of its tensors (sample)',
    run: mustRefuse((ctx) => {
      const f = copyBase(ctx);
      fs.truncateSync(f, Math.floor(fs.statSync(f).size * 0.7));
      return { args: sampleArgs(f), file: f };
    }),
  },
  {
    cls: 5,
    name: 'sample --length 200000 | head -1 (stdout closed early)',
    async run(ctx) {
      const ck = copyBase(ctx);
      // A pipe whose reader is gone before the text is written, as `head -1` is once it has its line:
      // reading the child's stdout ourselves would drain what it wrote and hide the closed pipe.
      const fifo = path.join(ctx.dir, 'out.fifo');
      spawnSync('mkfifo', [fifo]);
      const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.closeSync(reader);
      const closed = true;
      let r;
      try {
        r = await runCli(['sample', '--checkpoint', ck, '--length', '200000', '--backend', 'cpu', '--seed', '1'], { timeoutMs: 60_000, stdoutFd: writer });
      } finally {
        fs.closeSync(writer);
      }
      return judge(r, [
        [closed, 'no line to close after'],
        [!r.timedOut, 'hung'],
        [r.code !== 0, 'exit 0 with its output cut'],
        [errLines(r).length <= 1, `stderr is ${errLines(r).length} lines`],
        [!/unexpected;|RNN_DEBUG|^\s+at /m.test(r.stderr), 'internal error text'],
      ]);
    },
  },
);

/** Class 6, the user's flow: Ctrl-C part way (a random iteration), then --resume to the end. */
for (const backend of ['cpu', 'gpu'] as const) {
  cases.push({
    cls: 6,
    name: `${backend}: 20 straight vs Ctrl-C at a random iteration + --resume to 20, bit for bit`,
    async run(ctx: Ctx) {
      const common = ['--backend', backend, '--hidden', '128', '--seq-length', '32', '--batch-size', '16', '--sample-every', '0', '--eval-every', '0', '--checkpoint-every', '0', '--print-every', '1', '--seed', '7'];
      const straight = path.join(ctx.dir, 'straight.safetensors');
      const cut = path.join(ctx.dir, 'cut.safetensors');
      const at = 3 + Math.floor(Math.random() * 10);
      const r1 = await runCli(['train', '--corpus', ctx.corpus, ...common, '--iterations', '20', '--checkpoint', straight], { timeoutMs: 120_000 });
      let stoppedAt = 0;
      const r2 = await runCli(['train', '--corpus', ctx.corpus, ...common, '--iterations', '20', '--checkpoint', cut], {
        timeoutMs: 120_000,
        onLine(line, c) {
          if (!stoppedAt && new RegExp(`^iter ${at}/`).test(line)) {
            stoppedAt = at;
            c.signal('SIGINT');
          }
        },
      });
      const saved = decode(cut).header.__metadata__?.progress;
      const savedIter = saved ? JSON.parse(saved).iteration : NaN;
      const r3 = await runCli(['train', '--resume', cut, '--backend', backend, '--iterations', '20', '--print-every', '5', '--sample-every', '0', '--eval-every', '0', '--checkpoint-every', '0', '--checkpoint', cut], { timeoutMs: 120_000 });
      const runs = [r1, r2, r3];
      const bad = runs.findIndex((r, i) => (i === 1 ? r.code === 0 && savedIter >= 20 : r.code !== 0));
      if (bad >= 0) return judge(runs[bad], [[false, `run ${bad + 1} of 3 failed or was not interrupted`]]);
      const cmp = compareTensors(straight, cut);
      return judge(null, [[cmp.same, 'tensors differ']], `interrupted at iteration ${savedIter}; ${cmp.what}`);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const repoArg = argv.find((a, i) => !a.startsWith('--') && argv[i - 1] !== '--json' && argv[i - 1] !== '--only');
  if (!repoArg) {
    console.error('usage: node --import tsx test/cli/fault-census.ts <repo-dir> [--json out.json] [--only <regexp>]');
    process.exit(2);
  }
  REPO = path.resolve(repoArg);
  const jsonOut = argv.includes('--json') ? argv[argv.indexOf('--json') + 1] : undefined;
  const only = argv.includes('--only') ? new RegExp(argv[argv.indexOf('--only') + 1], 'i') : undefined;
  if (!fs.existsSync(path.join(REPO, 'src/node/register-raw.mjs'))) throw new Error(`${REPO} has no src/node/register-raw.mjs`);

  ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'fault-census-'));
  fs.chmodSync(ROOT, 0o755);
  CORPUS = path.join(ROOT, 'corpus.txt');
  makeCorpus(CORPUS, 90_000);
  BASE = path.join(ROOT, 'base.safetensors');
  const head = spawnSync('git', ['-C', REPO, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).stdout.trim();
  console.log(`fault census of ${REPO} (${head.slice(0, 90)})`);
  const b = await runCli(['train', '--corpus', CORPUS, ...CPU, ...TINY, '--iterations', '6', '--checkpoint', BASE]);
  if (b.code !== 0) throw new Error(`could not train the base checkpoint: ${how(b)}`);

  const results: { cls: number; name: string; pass: boolean; what: string; seconds: number }[] = [];
  let i = 0;
  for (const c of cases) {
    i++;
    if (only && !only.test(c.name)) continue;
    const dir = path.join(ROOT, `case-${String(i).padStart(2, '0')}`);
    fs.mkdirSync(dir);
    const started = Date.now();
    let v: Verdict;
    try {
      v = await c.run({ dir, corpus: CORPUS, base: BASE });
    } catch (err) {
      v = { pass: false, what: `census error: ${(err as Error).message}` };
    }
    const seconds = (Date.now() - started) / 1000;
    results.push({ cls: c.cls, name: c.name, pass: v.pass, what: v.what, seconds });
    console.log(`${c.cls} | ${String(i).padStart(2)} ${c.name.padEnd(70)} | ${v.pass ? 'PASS' : 'FAIL'} | ${v.what}`);
  }

  console.log('\ntotals by class (failed / tried):');
  let failed = 0;
  for (const cls of [...new Set(results.map((r) => r.cls))].sort()) {
    const rs = results.filter((r) => r.cls === cls);
    const f = rs.filter((r) => !r.pass).length;
    failed += f;
    console.log(`  ${cls}. ${CLASS_NAMES[cls].padEnd(34)} ${f} / ${rs.length}`);
  }
  console.log(`  total${' '.repeat(33)}${failed} / ${results.length}`);
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ repo: REPO, head, results }, null, 2));
  fs.rmSync(ROOT, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
