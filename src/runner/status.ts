import type { Manifest } from './caching/manifest.js';
import { StatCache } from './caching/stat-cache.js';
import { CacheStore } from './caching/store.js';
import { withAncestors } from './dag.js';
import { describeReasons, diffFingerprints, fingerprintDigest, type Fingerprint, type StaleReason } from './fingerprint.js';
import { lockfilePathFor, readLockfile } from './lockfile.js';
import type { Plan } from './plan.js';
import { resolveTargets } from './scheduler.js';
import { cachedState, computeFingerprint } from './stage-inputs.js';
import type { Workspace } from './workspace.js';

export type StageState =
  /** Cached and materialized: a run does nothing. */
  | 'up-to-date'
  /** Cached, but artifacts/ is missing or has modified files: a run copies them back. */
  | 'restore'
  /** Will run. */
  | 'stale';

export interface StageStatus {
  readonly id: string;
  readonly state: StageState;
  readonly reasons: readonly StaleReason[];
  /** The reasons in words, e.g. `param beta 1 → 4`. */
  readonly explanation: readonly string[];
  /** For 'restore': the artifact files that are missing or differ. */
  readonly drifted?: readonly string[];
}

/**
 * What a run would do with each selected instance, and why: the same fingerprints the
 * scheduler computes, compared with the cache and with the lockfile's record of the last
 * run. Reads only; writes nothing (not even the stat cache).
 */
export async function pipelineStatus(
  plan: Plan,
  workspace: Workspace,
  options: { targets?: readonly string[]; force?: true | readonly string[] } = {},
): Promise<StageStatus[]> {
  const store = new CacheStore(workspace.cacheDir);
  const statCache = StatCache.load(workspace.statCacheFile);
  const caches = { statCache, codeDigests: new Map() };
  const lock = readLockfile(lockfilePathFor(plan.file));
  const selected = options.targets ? withAncestors(plan.graph, resolveTargets(plan, options.targets)) : new Set(plan.graph.keys());
  const forced = options.force === true ? selected : new Set(options.force ? resolveTargets(plan, options.force) : []);
  const known = new Map<string, Manifest>();
  const result: StageStatus[] = [];
  for (const instance of plan.instances) {
    if (!selected.has(instance.id)) continue;
    const previous = lock?.stages[instance.id];
    const status = (state: StageState, reasons: StaleReason[], drifted?: string[]): StageStatus => ({
      id: instance.id,
      state,
      reasons,
      explanation: [...describeReasons(reasons, instance.ref.name), ...(drifted?.length ? [`artifacts differ from cache: ${drifted.join(', ')}`] : [])],
      ...(drifted ? { drifted } : {}),
    });
    // An upstream that will run has unknown outputs; assume, for this stage's own diff, the inputs it last ran with.
    const upstreamLookup = (id: string) => known.get(id);
    let fingerprint = await computeFingerprint(instance, plan, upstreamLookup, caches);
    if ('missing' in fingerprint) {
      const pending = fingerprint.missing;
      fingerprint = await computeFingerprint(instance, plan, (id) => known.get(id) ?? lock?.stages[id]?.outputs, caches);
      const own = 'missing' in fingerprint ? [] : diffFingerprints(previous?.fingerprint, withoutInputs(fingerprint, previous?.fingerprint));
      result.push(status('stale', [...own, { type: 'upstream', id: pending }]));
      continue;
    }
    const digest = fingerprintDigest(fingerprint);
    const isForced = forced.has(instance.id) || forced.has(instance.stage);
    const found = isForced ? { state: 'absent' as const } : await cachedState(instance, digest, previous, store, statCache, workspace.root);
    if (found.state === 'up-to-date') {
      known.set(instance.id, found.outputs);
      result.push(status('up-to-date', []));
      continue;
    }
    if (found.state === 'restore') {
      known.set(instance.id, found.record.outputs);
      result.push(status('restore', [], [...found.drifted]));
      continue;
    }
    if (isForced) {
      result.push(status('stale', [{ type: 'forced' }]));
      continue;
    }
    const reasons = diffFingerprints(previous?.fingerprint, fingerprint);
    result.push(status('stale', reasons.length ? reasons : [{ type: 'not-cached' }]));
  }
  return result;
}

/** The fingerprint with the inputs it had before, so an upstream rerun isn't reported as this stage's own change. */
function withoutInputs(current: Fingerprint, before: Fingerprint | undefined): Fingerprint {
  return before ? { ...current, inputs: before.inputs } : current;
}
