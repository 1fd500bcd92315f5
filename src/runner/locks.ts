import { closeSync, existsSync, linkSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { removeFile, uniqueSuffix } from './fsutil.js';

/** Who holds a lock, written into the lock file so others can tell a live holder from a dead one. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

const HOST = hostname();

/** Whether a process of this host with this pid is running. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

/** A holder on this machine whose process is gone: it was killed and can't release. */
function isStale(holder: LockHolder | undefined): boolean {
  return holder !== undefined && holder.host === HOST && !isAlive(holder.pid);
}

/**
 * An exclusive lock as a file created with O_EXCL. A lock left behind by a killed process
 * (same host, dead pid) is taken over, so nobody ever has to delete one by hand. Taking
 * over is itself guarded by a short-lived second lock, so two runs that find the same
 * stale lock cannot both win.
 */
export class FileLock {
  private released = false;

  private constructor(readonly path: string) {}

  /** The lock, or the live holder that has it. */
  static tryAcquire(path: string): FileLock | LockHolder {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (createExclusive(path)) {
        const dir = dirname(path);
        heldIn.set(dir, (heldIn.get(dir) ?? 0) + 1);
        return new FileLock(path);
      }
      const holder = readHolder(path);
      if (holder === undefined) {
        // Created but not yet written by its holder, or half-written by one killed in between.
        if (ageMs(path) > 2000) rmSync(path, { force: true });
        continue;
      }
      if (!isStale(holder)) return holder;
      takeOverStale(path, holder);
    }
    return readHolder(path) ?? { pid: -1, host: '?', since: '' };
  }

  /** Waits until the lock is free (polling), reporting the holder once. */
  static async acquire(path: string, options: { signal?: AbortSignal; onWait?: (holder: LockHolder) => void } = {}): Promise<FileLock> {
    let delay = 20;
    let reported = false;
    for (;;) {
      const result = FileLock.tryAcquire(path);
      if (result instanceof FileLock) return result;
      if (!reported) options.onWait?.(result);
      reported = true;
      options.signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 250);
    }
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    removeFile(this.path);
    const dir = dirname(this.path);
    heldIn.set(dir, heldIn.get(dir)! - 1);
  }
}

/**
 * This process's holder record, one file per locks folder: a lock is taken by hard-linking
 * it to the lock's name, which fails if the name exists, as O_EXCL does. Releasing then
 * removes a name, not a file: ext4 without a journal (as on the VMs here) makes every new
 * file skip the inodes freed in the last 60 s, so a cold run of 1000 stages that created and
 * deleted a lock file each spent a quarter of its kernel time in that scan. The record
 * persists while the process holds locks or runs, so gc also sees a run as active between
 * its stages; a killed process's record is swept like any dead lock.
 */
const holderFiles = new Map<string, string>();
/** Locks this process holds, by folder: a record goes only when none are left. */
const heldIn = new Map<string, number>();
process.on('exit', () => holderFiles.forEach((file) => removeFile(file)));

/** What a lock file says of this process. */
function ownHolder(): LockHolder {
  return { pid: process.pid, host: HOST, since: new Date().toISOString() };
}

/**
 * Deletes this process's holder records in folders where it holds no lock: the end of a run
 * calls it, so a process that goes on (a test, a library user) leaves nothing in locks/.
 */
export function dropIdleHolderRecords(): void {
  for (const [dir, file] of holderFiles) {
    if (heldIn.get(dir)) continue;
    removeFile(file);
    holderFiles.delete(dir);
  }
}

function holderFile(locksDir: string): string {
  const known = holderFiles.get(locksDir);
  if (known) return known;
  const path = join(locksDir, `holder-${uniqueSuffix()}`);
  writeFileSync(path, JSON.stringify(ownHolder()), { flag: 'wx' });
  holderFiles.set(locksDir, path);
  return path;
}

function createExclusive(path: string): boolean {
  try {
    try {
      linkSync(holderFile(dirname(path)), path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // Our record was deleted (by hand, or with the whole folder): write it again.
      holderFiles.delete(dirname(path));
      linkSync(holderFile(dirname(path)), path);
    }
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // A filesystem without hard links: a file of its own, created exclusively.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw error;
  }
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, JSON.stringify(ownHolder()));
  } finally {
    closeSync(fd);
  }
  return true;
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function takeOverStale(path: string, seen: LockHolder): void {
  const guard = `${path}.takeover`;
  if (!createExclusive(guard)) {
    if (isStale(readHolder(guard)) || ageMs(guard) > 10_000) rmSync(guard, { force: true });
    return;
  }
  try {
    const now = readHolder(path);
    if (now && now.pid === seen.pid && now.since === seen.since) rmSync(path, { force: true });
  } finally {
    rmSync(guard, { force: true });
  }
}

/** Lock files in a directory whose holder was a process of this host that is gone: removed. Returns how many. */
export function removeDeadLocks(locksDir: string): number {
  if (!existsSync(locksDir)) return 0;
  let removed = 0;
  for (const name of readdirSync(locksDir)) {
    const path = join(locksDir, name);
    const holder = readHolder(path);
    if (holder && isStale(holder)) {
      takeOverStale(path, holder);
      removed++;
    }
  }
  return removed;
}

/** Holders of the locks in a directory whose processes are still alive. */
export function liveHolders(locksDir: string): LockHolder[] {
  if (!existsSync(locksDir)) return [];
  return readdirSync(locksDir)
    .map((name) => readHolder(join(locksDir, name)))
    .filter((h): h is LockHolder => h !== undefined && (h.host !== HOST || isAlive(h.pid)));
}
