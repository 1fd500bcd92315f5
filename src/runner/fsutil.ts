import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative } from 'node:path';

// Drawn once: a random draw per call showed as ~60 ms in the coordinator's profile of a cold
// run of 1000 small stages; the pid, this token and a counter are as unique (a store may be
// shared by machines, whose pids can coincide).
const processToken = randomBytes(4).toString('hex');
let calls = 0;

/** A name no other process (or other call in this one) will pick for a temporary sibling. */
export function uniqueSuffix(): string {
  return `${process.pid}-${processToken}-${calls++}`;
}

/**
 * Writes by rename: readers see the old file or the new one, never a torn one, even if
 * this process is killed mid-write. The mode is set explicitly (0644 unless told), whatever
 * the umask: a run record or lockfile written under umask 000 must not be world-writable.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${uniqueSuffix()}`;
  try {
    writeFileSync(tmp, data);
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** A path as a message shows it: relative to where the user is, unless it lies outside. */
export function displayPath(path: string, cwd = process.cwd()): string {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}
