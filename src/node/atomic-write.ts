/**
 * Atomic file replacement for checkpoints (Node only).
 *
 * A checkpoint written in place and interrupted (Ctrl-C, crash, full disk, power loss) would
 * leave a truncated file where the last good one was. Instead the bytes go to a temporary file
 * in the same directory (rename is only atomic within one filesystem), are fsynced so the rename
 * cannot become durable before the data, and then renamed over the target: readers see the old
 * file or the new one, never a mix. The directory is fsynced afterwards so the rename itself
 * survives a power loss.
 *
 * The replaced file's permissions are not carried over: the new file gets the default mode.
 * Any failure up to the rename removes the temporary file and leaves the target as it was; a
 * temporary that a killed process left behind is removed by the next save of the same target. A
 * failing directory fsync (a real I/O error, not "unsupported") is still reported, though by
 * then the new file is already in place.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** Same directory as the target, hidden, and unique per process and call, so writers never collide. */
function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** This process's temporaries being written now: never stale. */
const inFlight = new Set<string>();

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Temporaries of this same target left by a save that was killed before its rename (kill -9, a
 * power loss): exactly tempPathFor's pattern, from a process that no longer exists (or from this
 * one, but not being written now). A live writer's temporary is left alone; so is every other file.
 */
function staleTemporaries(target: string, names: string[]): string[] {
  const dir = path.dirname(target);
  const pattern = new RegExp(`^\\.${escapeRegExp(path.basename(target))}\\.(\\d+)\\.[0-9a-f]{12}\\.tmp$`);
  return names.flatMap((name) => {
    const m = pattern.exec(name);
    if (!m) return [];
    const pid = Number(m[1]);
    const full = path.join(dir, name);
    if (pid === process.pid ? inFlight.has(full) : processAlive(pid)) return [];
    return [full];
  });
}

async function removeStaleTemporaries(target: string): Promise<void> {
  const names = await fsp.readdir(path.dirname(target)).catch(() => [] as string[]);
  // Best effort: a temporary that cannot be removed must not stop the save.
  await Promise.all(staleTemporaries(target, names).map((f) => fsp.rm(f, { force: true }).catch(() => {})));
}

function removeStaleTemporariesSync(target: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(target));
  } catch {
    return;
  }
  for (const f of staleTemporaries(target, names)) {
    try {
      fs.rmSync(f, { force: true });
    } catch {
      // Same: best effort.
    }
  }
}

/**
 * Directory fsync is a POSIX notion: Windows cannot open a directory this way, and some
 * filesystems answer EINVAL/ENOTSUP. Those mean "not supported here", not "write failed".
 */
function isUnsupportedDirSync(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EINVAL' || code === 'ENOTSUP' || code === 'EISDIR' || code === 'EPERM' || code === 'EBADF';
}

export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(path.resolve(target));
  await fsp.mkdir(dir, { recursive: true });
  await removeStaleTemporaries(path.resolve(target));
  const tmp = tempPathFor(path.resolve(target));
  inFlight.add(tmp);

  let handle: fsp.FileHandle | undefined;
  try {
    // 'wx': never follow or reuse something already at the temporary name.
    handle = await fsp.open(tmp, 'wx');
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, target);
  } catch (err) {
    // Leave no debris and keep the original error: that is the one the caller needs to see.
    await handle?.close().catch(() => {});
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw err;
  } finally {
    inFlight.delete(tmp);
  }
  await syncDirectory(dir);
}

/** Synchronous twin, for a SIGINT handler that must finish writing before the process exits. */
export function writeFileAtomicSync(target: string, data: Uint8Array | string): void {
  const dir = path.dirname(path.resolve(target));
  fs.mkdirSync(dir, { recursive: true });
  removeStaleTemporariesSync(path.resolve(target));
  const tmp = tempPathFor(path.resolve(target));

  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // Already failing; the original error matters more.
      }
    }
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // Same: report why the write failed, not why the cleanup did.
    }
    throw err;
  }
  syncDirectorySync(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    if (!isUnsupportedDirSync(err)) throw err;
  } finally {
    await handle?.close().catch(() => {});
  }
}

function syncDirectorySync(dir: string): void {
  if (process.platform === 'win32') return;
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    if (!isUnsupportedDirSync(err)) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
