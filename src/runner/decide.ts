import { statSync } from 'node:fs';
import { join } from 'node:path';
import { manifestDigest, type Manifest } from './caching/manifest.js';
import type { StatCache } from './caching/stat-cache.js';
import type { CacheStore, RunRecord } from './caching/store.js';
import { diffFingerprints, type Fingerprint, type FingerprintDigest, type StaleReason } from './fingerprint.js';
import type { LockEntry } from './lockfile.js';
import type { StageInstance } from './plan.js';

/**
 * What to do with one instance whose fingerprint is known. `run` acts on it and `status`
 * reports it, both through decide(), so status always predicts what run will do.
 */
export type Decision =
  /** Nothing to do: artifacts/ matches the lockfile's entry (`record` absent) or a cache record. */
  | { readonly action: 'up-to-date'; readonly outputs: Manifest; readonly durationMs: number; readonly record?: RunRecord }
  /** Cached, but files in artifacts/ are missing or modified: copy them back. */
  | { readonly action: 'restore'; readonly record: RunRecord; readonly drifted: readonly string[] }
  /** Not cached: execute it, for these reasons (never empty). */
  | { readonly action: 'run'; readonly reasons: readonly StaleReason[] };

/** Everything decide() reads; it writes nothing. */
export interface DecisionInputs {
  readonly instance: StageInstance;
  readonly fingerprint: Fingerprint;
  readonly digest: FingerprintDigest;
  /** The lockfile's entry for this instance: the fingerprint it last completed with. */
  readonly previous: LockEntry | undefined;
  readonly forced: boolean;
  readonly store: CacheStore;
  readonly statCache: StatCache;
  readonly workspaceRoot: string;
}

/**
 * First the lockfile: an entry with this very fingerprint whose artifacts still match needs no
 * cache read at all (as DVC compares dvc.lock); then the cache record; else the stage runs,
 * and the reasons say which fingerprint fields changed since the lockfile's entry.
 */
export async function decide({
  instance,
  fingerprint,
  digest,
  previous,
  forced,
  store,
  statCache,
  workspaceRoot,
}: DecisionInputs): Promise<Decision> {
  if (forced) return { action: 'run', reasons: [{ type: 'forced' }] };
  const artifactDir = join(workspaceRoot, instance.artifactDir);
  if (
    previous?.digest === digest &&
    previous.artifactDir === instance.artifactDir &&
    !(await driftedArtifacts(previous.outputs, artifactDir, statCache)).length
  ) {
    const recorded = store.recordedOutputDigest(digest, statCache);
    // The lockfile is trusted only where the cache agrees with it (or has no record to say
    // otherwise); a record with other outputs wins, and the lockfile entry is rewritten.
    if (recorded === undefined || recorded === manifestDigest(previous.outputs))
      return { action: 'up-to-date', outputs: previous.outputs, durationMs: previous.durationMs };
  }
  const record = store.readRun(digest);
  if (record) {
    const drifted = await driftedArtifacts(record.outputs, artifactDir, statCache);
    return drifted.length
      ? { action: 'restore', record, drifted }
      : { action: 'up-to-date', outputs: record.outputs, durationMs: record.durationMs, record };
  }
  const reasons = diffFingerprints(previous?.fingerprint, fingerprint);
  return { action: 'run', reasons: reasons.length ? reasons : [{ type: 'not-cached' }] };
}

/**
 * Files of the manifest that are missing or differ in the materialized artifact directory,
 * checked by stat against the stat cache (rehashing only files whose stat changed).
 */
export async function driftedArtifacts(manifest: Manifest, artifactDir: string, statCache: StatCache): Promise<string[]> {
  const drifted: string[] = [];
  for (const [path, entry] of Object.entries(manifest)) {
    const abs = join(artifactDir, path);
    let stats;
    try {
      stats = statSync(abs);
    } catch {
      drifted.push(path);
      continue;
    }
    if (stats.size !== entry.size || (await statCache.digestOf(abs, stats)) !== entry.digest) drifted.push(path);
  }
  return drifted;
}
