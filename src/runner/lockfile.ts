import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { RunRecord } from './caching/store.js';
import { displayPath, writeFileAtomic } from './fsutil.js';
import { FileLock } from './locks.js';

/** A stage as it last completed: the run record plus where its outputs were materialized. */
export interface LockEntry extends Omit<RunRecord, 'createdAt'> {
  /** Relative to the workspace root. */
  readonly artifactDir: string;
}

/**
 * The commit-able record of a pipeline's last results (like dvc.lock): for each stage
 * instance its fingerprint, output digests and headline metrics. It lists only completed
 * stages, each written after its outputs are in the cache and materialized.
 */
export interface Lockfile {
  readonly version: 1;
  readonly pipeline: string;
  readonly stages: Readonly<Record<string, LockEntry>>;
}

/** `pipelines/quickstart.yaml` → `pipelines/quickstart.lock.json`. */
export function lockfilePathFor(pipelineFile: string): string {
  return join(dirname(pipelineFile), `${basename(pipelineFile).replace(/\.ya?ml$/, '')}.lock.json`);
}

/** A lockfile that cannot be read as one: the user must restore or remove it (usage error, exit 2). */
export class LockfileError extends Error {
  override readonly name = 'LockfileError';
}

export function readLockfile(path: string): Lockfile | undefined {
  const text = lockfileText(path);
  return text === undefined ? undefined : parseLockfile(text, displayPath(path));
}

function lockfileText(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/** A lockfile's text, from disk or from `git show REV:path`; `where` names it in errors. */
export function parseLockfile(text: string, where: string): Lockfile {
  let parsed: Lockfile;
  try {
    parsed = JSON.parse(text) as Lockfile;
  } catch (error) {
    throw new LockfileError(
      `${where} is not valid JSON (${(error as Error).message}); restore it (git checkout -- ${where}) or delete it, and the next run rebuilds it from the cache`,
    );
  }
  if (parsed?.version !== 1 || typeof parsed.stages !== 'object' || parsed.stages === null) {
    throw new LockfileError(`${where}: not an ablate lockfile of version 1; restore it (git checkout -- ${where}) or delete it`);
  }
  return parsed;
}

/**
 * Read-modify-write under a lock, so two runs that finish different stages at the same
 * time both keep their entries. Entries for instances no longer in the pipeline are dropped.
 * Returns the lockfile as written, so a caller need not read it back.
 */
export async function updateLockfile(
  path: string,
  pipeline: string,
  updates: ReadonlyMap<string, LockEntry>,
  currentIds: readonly string[],
  locksDir: string,
): Promise<Lockfile> {
  const mutex = await FileLock.acquire(join(locksDir, `lockfile-${basename(path)}.lock`));
  try {
    const before = lockfileText(path);
    const previous = before === undefined ? {} : parseLockfile(before, displayPath(path)).stages;
    const stages: Record<string, LockEntry> = {};
    for (const id of currentIds) {
      const entry = updates.get(id) ?? previous[id];
      if (entry) stages[id] = entry;
    }
    const next: Lockfile = { version: 1, pipeline, stages };
    const text = JSON.stringify(next, null, 2) + '\n';
    if (before !== text) writeFileAtomic(path, text);
    return next;
  } finally {
    mutex.release();
  }
}
