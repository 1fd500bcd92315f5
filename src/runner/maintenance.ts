import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isSafeRelativePath } from './caching/confine.js';
import { StatCache } from './caching/stat-cache.js';
import { CacheStore } from './caching/store.js';
import type { FingerprintDigest } from './fingerprint.js';
import { hashBytes } from './hashing.js';
import { readLockfile } from './lockfile.js';
import { isAlive, liveHolders, removeDeadLocks } from './locks.js';
import type { Workspace } from './workspace.js';

const SKIP_DIRS = new Set(['node_modules', '.git', '.ablate', 'artifacts', 'dist']);

/** Every `*.lock.json` in the workspace (outside dependency, state and output folders). */
export function findLockfiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && !SKIP_DIRS.has(entry.name)) walk(join(dir, entry.name));
      else if (entry.isFile() && entry.name.endsWith('.lock.json')) found.push(join(dir, entry.name));
    }
  };
  walk(root);
  return found.sort();
}

export interface VerifyProblem {
  readonly lockfile: string;
  readonly stage: string;
  readonly file: string;
  /** `corrupt-object`: the cache's copy does not match its digest (it was removed); `unsafe`: the lockfile names a path outside the workspace. */
  readonly problem: 'missing' | 'modified' | 'corrupt-object' | 'unsafe';
  /** Whether the store holds the recorded content, so `ablate run` can restore it without running the stage. */
  readonly cached: boolean;
}

/** Per lockfile: how many files it records, and the ones that do not match. */
export interface LockfileVerdict {
  readonly lockfile: string;
  readonly files: number;
  readonly stages: number;
  readonly problems: readonly VerifyProblem[];
}

/**
 * Checks that every artifact a lockfile records exists and has the recorded content, and
 * that the cache's copy of it, where there is one, matches its digest too (a corrupt object
 * is removed: the store is a cache, and the next run that needs it recomputes it). Hashes
 * every file (no stat cache): this is the proof CI relies on.
 */
export function verifyLockfiles(root: string, lockfiles: readonly string[], store: CacheStore): LockfileVerdict[] {
  return lockfiles.flatMap((lockfile) => {
    const lock = readLockfile(lockfile);
    if (!lock) return [];
    let files = 0;
    const problems: VerifyProblem[] = [];
    const where = relative(root, lockfile);
    for (const [stage, entry] of Object.entries(lock.stages)) {
      for (const [path, output] of Object.entries(entry.outputs)) {
        files++;
        if (!isSafeRelativePath(entry.artifactDir) || !isSafeRelativePath(path) || !/^[0-9a-f]{64}$/.test(output.digest)) {
          problems.push({ lockfile: where, stage, file: `${entry.artifactDir}/${path}`, problem: 'unsafe', cached: false });
          continue;
        }
        const abs = join(root, entry.artifactDir, path);
        const object = store.objectPath(output.digest);
        let cached = existsSync(object);
        if (cached && hashBytes(readFileSync(object)) !== output.digest) {
          store.dropObject(output.digest);
          problems.push({ lockfile: where, stage, file: relative(root, object), problem: 'corrupt-object', cached: false });
          cached = false;
        }
        const problem = !existsSync(abs) ? 'missing' : hashBytes(readFileSync(abs)) !== output.digest ? 'modified' : undefined;
        if (problem) problems.push({ lockfile: where, stage, file: relative(root, abs), problem, cached });
      }
    }
    return [{ lockfile: relative(root, lockfile), files, stages: Object.keys(lock.stages).length, problems }];
  });
}

/** A temp dir's owner: ablate names them `<what>-<pid>-<8 hex>-<counter>` (uniqueSuffix). */
const TEMP_OWNER = /-(\d+)-[0-9a-f]{8}-\d+$/;

/**
 * What killed runs leave behind, removed without waiting for gc: temp dirs whose owning
 * process is gone, and lock files held by dead processes of this host. A workspace belongs to
 * one machine (a shared store is a separate directory), so a pid that is not running here is
 * dead. Returns how many of each went.
 */
export function sweepLeftovers(workspace: Workspace): { tempDirs: number; locks: number } {
  let tempDirs = 0;
  if (existsSync(workspace.tmpDir)) {
    for (const name of readdirSync(workspace.tmpDir)) {
      const owner = TEMP_OWNER.exec(name);
      if (!owner || isAlive(Number(owner[1]))) continue;
      rmSync(join(workspace.tmpDir, name), { recursive: true, force: true });
      tempDirs++;
    }
  }
  return { tempDirs, locks: removeDeadLocks(workspace.locksDir) };
}

/** gc refused: something in this workspace is using what it would delete. */
export class WorkspaceBusyError extends Error {
  override readonly name = 'WorkspaceBusyError';
}

export interface GcResult {
  readonly keptRuns: number;
  readonly removedRuns: number;
  readonly removedObjects: number;
  readonly freedBytes: number;
  readonly removedTemp: number;
  /** Parsed pipeline texts and expanded plans (.ablate/parsed/): pure cache, rebuilt on the next run. */
  readonly removedParsed: number;
  /** Stat-cache entries of files no longer there (artifacts deleted, records removed above). */
  readonly removedStatEntries: number;
}

/**
 * Drops cache entries that no lockfile (and no entry of `alsoKeep`: recent runs' history)
 * references, then objects no remaining entry uses,
 * temp dirs left by killed runs, and the parse cache. Refuses while another run holds a stage lock (its
 * freshly stored objects are not referenced by any lockfile yet) or a worker runs in this checkout.
 */
export function collectGarbage(
  workspace: Workspace,
  lockfiles: readonly string[],
  options: { dryRun?: boolean; alsoKeep?: ReadonlySet<string> } = {},
): GcResult {
  // A dry run deletes nothing, so it may look while a run is going on.
  const active = [...new Set(liveHolders(workspace.locksDir).map((h) => h.pid))];
  if (active.length && !options.dryRun)
    throw new WorkspaceBusyError(`another ablate run or worker is active (pid ${active.join(', ')}); run gc when it has finished`);
  const store = new CacheStore(workspace.cacheDir);
  const referenced = new Set<string>(options.alsoKeep ?? []);
  for (const file of lockfiles) for (const entry of Object.values(readLockfile(file)?.stages ?? {})) referenced.add(entry.digest);
  const keep = new Set<string>();
  let removedRuns = 0;
  let keptRuns = 0;
  for (const digest of store.listRuns()) {
    const record = store.readRun(digest);
    if (record && referenced.has(digest)) {
      keptRuns++;
      for (const entry of Object.values(record.outputs)) keep.add(entry.digest);
    } else {
      removedRuns++;
      if (!options.dryRun) store.dropRun(digest as FingerprintDigest);
    }
  }
  let removedObjects = 0;
  let freedBytes = 0;
  for (const digest of store.listObjects()) {
    if (keep.has(digest)) continue;
    removedObjects++;
    freedBytes += statSync(store.objectPath(digest)).size;
    if (!options.dryRun) store.dropObject(digest);
  }
  let removedTemp = 0;
  if (existsSync(workspace.tmpDir)) {
    for (const name of readdirSync(workspace.tmpDir)) {
      removedTemp++;
      if (!options.dryRun) rmSync(join(workspace.tmpDir, name), { recursive: true, force: true });
    }
  }
  let removedParsed = 0;
  if (existsSync(workspace.parsedDir)) {
    for (const name of readdirSync(workspace.parsedDir)) {
      removedParsed++;
      if (!options.dryRun) rmSync(join(workspace.parsedDir, name), { force: true });
    }
  }
  const statCache = StatCache.load(workspace.statCacheFile);
  const removedStatEntries = statCache.prune(existsSync);
  if (!options.dryRun) statCache.save();
  return { keptRuns, removedRuns, removedObjects, freedBytes, removedTemp, removedParsed, removedStatEntries };
}
