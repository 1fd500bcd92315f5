import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';

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
      if (createExclusive(path)) return new FileLock(path);
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
    rmSync(this.path, { force: true });
  }
}

function createExclusive(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    const holder: LockHolder = { pid: process.pid, host: HOST, since: new Date().toISOString() };
    writeSync(fd, JSON.stringify(holder));
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
