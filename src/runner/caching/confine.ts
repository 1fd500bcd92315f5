import { isAbsolute, relative } from 'node:path';
import type { Manifest } from './manifest.js';

/**
 * Paths that come from files ablate did not just write itself (a run record in a shared
 * store, a worker's returned manifest, a committed lockfile) are data from elsewhere: one
 * crafted entry such as `../../../x` would make a restore write outside its directory. Every
 * such path is checked here before anything is written or deleted.
 */
export class UnsafePathError extends Error {
  override readonly name = 'UnsafePathError';
}

/** A '/'-separated path below a directory: no absolute path, no `..` or `.` segment, no empty segment, no backslash or NUL. */
export function isSafeRelativePath(path: string): boolean {
  if (!path || isAbsolute(path) || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

const DIGEST = /^[0-9a-f]{64}$/;

/** Throws UnsafePathError naming `source` unless every path of the manifest stays inside its directory and every digest is a SHA-256. */
export function checkManifest(manifest: Manifest, source: string): void {
  for (const [path, entry] of Object.entries(manifest)) {
    if (!isSafeRelativePath(path)) throw new UnsafePathError(`${source} names an output '${path}' outside its directory; it was not used`);
    if (typeof entry?.digest !== 'string' || !DIGEST.test(entry.digest))
      throw new UnsafePathError(`${source} has an invalid digest for '${path}'; it was not used`);
  }
}

/** Whether `child` is `parent` or lies below it (both absolute). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}
