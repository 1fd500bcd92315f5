import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isSafeRelativePath } from './caching/confine.js';
import type { CacheStore } from './caching/store.js';
import { withAncestors } from './dag.js';
import type { Executor } from './executor/types.js';
import { describeReasons, diffFingerprints, type StaleReason } from './fingerprint.js';
import { hashBytes } from './hashing.js';
import { lockfilePathFor, readLockfile, type LockEntry, type Lockfile } from './lockfile.js';
import type { Reporter } from './logging/events.js';
import type { Plan } from './plan.js';
import { resolveTargets, runPlan } from './scheduler.js';
import { workspaceAt, type Workspace } from './workspace.js';

/** One recorded metric against its recomputed value. */
export interface MetricComparison {
  readonly name: string;
  readonly recorded: number | undefined;
  readonly recomputed: number | undefined;
  /** |recomputed − recorded| / max(|recorded|, |recomputed|); 0 when both are 0; Infinity when one is missing. */
  readonly relativeDifference: number;
}

export type RecomputeVerdict =
  /** Same fingerprint and byte-identical outputs: the promise held. */
  | 'identical'
  /** Another numeric class (a machine fact differs from the recorded one): metrics within rtol. */
  | 'within-tolerance'
  /** Another numeric class, and a metric outside rtol. */
  | 'outside-tolerance'
  /** Same fingerprint, other bytes: the cache would have lied. */
  | 'differs'
  /** The lockfile's entry is for other code, params or inputs: nothing to compare until `ablate run`. */
  | 'stale'
  | 'not-in-lockfile'
  | 'failed';

export interface RecomputeResult {
  readonly id: string;
  readonly verdict: RecomputeVerdict;
  /** Why the fingerprints differ (machine facts, or what makes the entry stale), in words. */
  readonly reasons: readonly string[];
  readonly metrics: readonly MetricComparison[];
  /** Output files whose bytes differ from the recorded ones. */
  readonly differingFiles: readonly string[];
}

export interface RecomputeOptions {
  /** Stage names or instance ids to recompute; default: every stage. */
  readonly targets?: readonly string[];
  readonly rtol: number;
  readonly signal?: AbortSignal;
}

/**
 * Re-executes the selected stages of a pipeline in a scratch workspace of its own (its own
 * store, artifacts, lockfile and temp dirs, under the system temp dir), and compares each with
 * the pipeline's lockfile. Upstream stages that are not selected are not rerun: their recorded
 * outputs are copied into the scratch space from artifacts/ or the cache (each file checked
 * against its digest). Reads the workspace; writes nothing in it.
 */
export async function recompute(
  plan: Plan,
  workspace: Workspace,
  store: CacheStore,
  executor: Executor,
  reporter: Reporter,
  options: RecomputeOptions,
): Promise<RecomputeResult[]> {
  const lock = readLockfile(lockfilePathFor(plan.file));
  if (!lock) throw new Error(`${lockfilePathFor(plan.file)} does not exist: run the pipeline first, then verify what it recorded`);
  const targets = options.targets?.length ? resolveTargets(plan, options.targets) : plan.instances.map((i) => i.id);
  const scratchRoot = mkdtempSync(join(tmpdir(), 'ablate-recompute-'));
  try {
    const scratch = scratchWorkspace(scratchRoot);
    const scratchLock = join(scratchRoot, 'recompute.lock.json');
    seedUpstream(plan, lock, targets, workspace, store, scratchRoot, scratchLock);
    await runPlan(plan, scratch, executor, reporter, {
      targets,
      force: targets,
      lockfile: scratchLock,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const after = readLockfile(scratchLock);
    return targets.map((id) => compareEntry(id, lock.stages[id], after?.stages[id], options.rtol, plan.byId.get(id)!.ref.name));
  } finally {
    rmSync(scratchRoot, { recursive: true, force: true });
  }
}

/** The scratch project's own layout, with its own store even when ABLATE_CACHE_DIR names a shared one. */
function scratchWorkspace(root: string): Workspace {
  return { ...workspaceAt(root), cacheDir: join(root, '.ablate', 'cache') };
}

/**
 * The lockfile entries and artifacts of the selected stages' unselected ancestors, copied into
 * the scratch space, so the scheduler finds them up to date there. One whose recorded bytes
 * are neither in artifacts/ nor in the cache is left out: it then runs in the scratch space too.
 */
function seedUpstream(
  plan: Plan,
  lock: Lockfile,
  targets: readonly string[],
  workspace: Workspace,
  store: CacheStore,
  scratchRoot: string,
  scratchLock: string,
): void {
  const wanted = new Set(targets);
  const stages: Record<string, LockEntry> = {};
  for (const id of withAncestors(plan.graph, targets)) {
    const entry = lock.stages[id];
    if (wanted.has(id) || !entry || entry.artifactDir !== plan.byId.get(id)?.artifactDir || !isSafeRelativePath(entry.artifactDir))
      continue;
    const copied = Object.entries(entry.outputs).every(([path, output]) => {
      if (!isSafeRelativePath(path)) return false;
      const source = [join(workspace.root, entry.artifactDir, path), store.objectPath(output.digest)].find(
        (file) => existsSync(file) && hashBytes(readFileSync(file)) === output.digest,
      );
      if (!source) return false;
      const target = join(scratchRoot, entry.artifactDir, path);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(source, target);
      return true;
    });
    if (copied) stages[id] = entry;
  }
  writeFileSync(scratchLock, JSON.stringify({ version: 1, pipeline: plan.name, stages } satisfies Lockfile));
}

/** Reasons that a recomputation on another machine class may show, and still compare numbers. */
const COMPARABLE: ReadonlySet<StaleReason['type']> = new Set(['environment', 'input']);

/** Compares what the lockfile recorded with what was recomputed. */
function compareEntry(
  id: string,
  recorded: LockEntry | undefined,
  recomputed: LockEntry | undefined,
  rtol: number,
  kind: string,
): RecomputeResult {
  const none = { reasons: [], metrics: [], differingFiles: [] };
  if (!recorded) return { id, verdict: 'not-in-lockfile', ...none };
  if (!recomputed) return { id, verdict: 'failed', ...none };
  const reasons = diffFingerprints(recorded.fingerprint, recomputed.fingerprint);
  const words = describeReasons(reasons, kind);
  const names = [...new Set([...Object.keys(recorded.metrics ?? {}), ...Object.keys(recomputed.metrics ?? {})])].sort();
  const metrics = names.map((name) => compareMetric(name, recorded.metrics?.[name], recomputed.metrics?.[name]));
  const paths = [...new Set([...Object.keys(recorded.outputs), ...Object.keys(recomputed.outputs)])].sort();
  const differingFiles = paths
    .filter((p) => recorded.outputs[p]?.digest !== recomputed.outputs[p]?.digest)
    .map((p) => join(recorded.artifactDir, p));
  if (reasons.some((r) => !COMPARABLE.has(r.type))) return { id, verdict: 'stale', reasons: words, metrics: [], differingFiles: [] };
  if (!reasons.length) return { id, verdict: differingFiles.length ? 'differs' : 'identical', reasons: words, metrics, differingFiles };
  if (!differingFiles.length) return { id, verdict: 'identical', reasons: words, metrics, differingFiles };
  const within = metrics.every((m) => m.relativeDifference <= rtol);
  return { id, verdict: within ? 'within-tolerance' : 'outside-tolerance', reasons: words, metrics, differingFiles };
}

export function compareMetric(name: string, recorded: number | undefined, recomputed: number | undefined): MetricComparison {
  let relativeDifference: number;
  if (recorded === undefined || recomputed === undefined) relativeDifference = Infinity;
  else if (recorded === recomputed) relativeDifference = 0;
  else relativeDifference = Math.abs(recomputed - recorded) / Math.max(Math.abs(recorded), Math.abs(recomputed));
  return { name, recorded, recomputed, relativeDifference };
}

/** Whether `verify --recompute` passes for these results. */
export function recomputePassed(results: readonly RecomputeResult[]): boolean {
  return results.every((r) => r.verdict === 'identical' || r.verdict === 'within-tolerance');
}
