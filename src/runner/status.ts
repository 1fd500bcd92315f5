import type { Manifest } from './caching/manifest.js';
import { StatCache } from './caching/stat-cache.js';
import { CacheStore } from './caching/store.js';
import { decide } from './decide.js';
import {
  computeFingerprint,
  describeReasons,
  diffFingerprints,
  fingerprintDigest,
  type Fingerprint,
  type StaleReason,
} from './fingerprint.js';
import { lockfilePathFor, readLockfile } from './lockfile.js';
import type { Plan } from './plan.js';
import { selection } from './scheduler.js';
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
 * scheduler computes, and the same decide(). Reads only; writes nothing (not even the stat cache).
 */
export async function pipelineStatus(
  plan: Plan,
  workspace: Workspace,
  options: { targets?: readonly string[]; force?: true | readonly string[]; lockfile?: string } = {},
): Promise<StageStatus[]> {
  const store = new CacheStore(workspace.cacheDir);
  const statCache = StatCache.load(workspace.statCacheFile);
  const caches = { statCache, codeDigests: new Map() };
  const lock = readLockfile(options.lockfile ?? lockfilePathFor(plan.file));
  const { selected, forced } = selection(plan, options);
  const known = new Map<string, Manifest>();
  const result: StageStatus[] = [];
  for (const instance of plan.instances) {
    if (!selected.has(instance.id)) continue;
    const previous = lock?.stages[instance.id];
    const status = (state: StageState, reasons: readonly StaleReason[], drifted?: readonly string[]): StageStatus => ({
      id: instance.id,
      state,
      reasons,
      explanation: [
        ...describeReasons(reasons, instance.ref.name),
        ...(drifted?.length ? [`artifacts differ from cache: ${drifted.join(', ')}`] : []),
      ],
      ...(drifted ? { drifted } : {}),
    });
    let fingerprint = await computeFingerprint(instance, plan, (id) => known.get(id), caches);
    if ('missing' in fingerprint) {
      // An upstream that will run has unknown outputs; assume, for this stage's own diff, the inputs it last ran with.
      const pending = fingerprint.missing;
      fingerprint = await computeFingerprint(instance, plan, (id) => known.get(id) ?? lock?.stages[id]?.outputs, caches);
      const own =
        'missing' in fingerprint ? [] : diffFingerprints(previous?.fingerprint, withoutInputs(fingerprint, previous?.fingerprint));
      result.push(status('stale', [...own, { type: 'upstream', id: pending }]));
      continue;
    }
    const decision = await decide({
      instance,
      fingerprint,
      digest: fingerprintDigest(fingerprint),
      previous,
      forced: forced.has(instance.id),
      store,
      statCache,
      workspaceRoot: workspace.root,
    });
    if (decision.action === 'up-to-date') {
      known.set(instance.id, decision.outputs);
      result.push(status('up-to-date', []));
    } else if (decision.action === 'restore') {
      known.set(instance.id, decision.record.outputs);
      result.push(status('restore', [], decision.drifted));
    } else result.push(status('stale', decision.reasons));
  }
  return result;
}

/** The fingerprint with the inputs it had before, so an upstream rerun isn't reported as this stage's own change. */
function withoutInputs(current: Fingerprint, before: Fingerprint | undefined): Fingerprint {
  return before ? { ...current, inputs: before.inputs } : current;
}

/** A stage whose committed lockfile entry is not what the pipeline and code give now. */
export interface LockfileMismatch {
  readonly id: string;
  /**
   * Its own entry differs; or only an upstream stage's does (its inputs may then change too);
   * or the lockfile has an entry for an instance the pipeline no longer has (a run drops it).
   */
  readonly kind: 'differs' | 'waits' | 'removed';
  /** Why, in words: the fingerprint fields that differ, that the lockfile has no entry, or which upstream it waits for. */
  readonly explanation: readonly string[];
  /**
   * True when only environment facts differ (the CPU class, the Node.js version, the kernels):
   * the pipeline and stage modules match, and the lockfile was written where those facts were other.
   */
  readonly environmentOnly: boolean;
}

/**
 * The CI gate (`ablate status --check`): does the committed lockfile match the pipeline and the
 * code, without artifacts or a cache to look at? Each instance's fingerprint is computed from
 * its upstream outputs as the lockfile records them, and compared with the fingerprint the
 * lockfile says it last completed with. Nothing is read from artifacts/ or the cache, so a fresh
 * clone answers the same as the machine that wrote the lockfile (facts of this machine, such as
 * the native route's instruction set, are part of a fingerprint, as they are for `run`).
 */
export async function lockfileMismatches(
  plan: Plan,
  workspace: Workspace,
  options: { lockfile?: string; targets?: readonly string[] } = {},
): Promise<LockfileMismatch[]> {
  const lock = readLockfile(options.lockfile ?? lockfilePathFor(plan.file));
  const caches = { statCache: StatCache.load(workspace.statCacheFile), codeDigests: new Map() };
  const { selected } = selection(plan, options);
  const mismatches: LockfileMismatch[] = [];
  const flagged = new Set<string>();
  for (const instance of plan.instances) {
    if (!selected.has(instance.id)) continue;
    const entry = lock?.stages[instance.id];
    const report = (kind: LockfileMismatch['kind'], explanation: string[], environmentOnly = false) => {
      flagged.add(instance.id);
      mismatches.push({ id: instance.id, kind, explanation, environmentOnly });
    };
    if (!entry) {
      report('differs', ['not in the lockfile']);
      continue;
    }
    const fingerprint = await computeFingerprint(instance, plan, (id) => lock?.stages[id]?.outputs, caches);
    if ('missing' in fingerprint) {
      report('differs', [`its input ${fingerprint.missing} is not in the lockfile`]);
      continue;
    }
    if (fingerprintDigest(fingerprint) !== entry.digest) {
      const reasons = diffFingerprints(entry.fingerprint, fingerprint);
      const environmentOnly = reasons.length > 0 && reasons.every((r) => r.type === 'environment');
      report('differs', describeReasons(reasons, instance.ref.name), environmentOnly);
      continue;
    }
    // Its own entry matches the upstream outputs the lockfile records; an upstream that reruns may change them.
    const upstream = (plan.graph.get(instance.id) ?? []).find((id) => flagged.has(id));
    if (upstream) report('waits', [`waits for ${upstream}, whose outputs may change`]);
  }
  // Any run drops them, whatever stages it selects.
  for (const id of Object.keys(lock?.stages ?? {}))
    if (!plan.byId.has(id))
      mismatches.push({ id, kind: 'removed', explanation: ['in the lockfile, no longer in the pipeline'], environmentOnly: false });
  return mismatches;
}
