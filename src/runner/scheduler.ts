import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ProvenanceEntry } from '../core/contract.js';
import type { Manifest } from './caching/manifest.js';
import { StatCache } from './caching/stat-cache.js';
import { CacheStore, CorruptObjectError, type RunRecord } from './caching/store.js';
import { withAncestors } from './dag.js';
import { decide, type Decision } from './decide.js';
import type { Executor } from './executor/types.js';
import {
  computeFingerprint,
  describeReasons,
  diffFingerprints,
  fingerprintDigest,
  type Fingerprint,
  type FingerprintCaches,
  type FingerprintDigest,
} from './fingerprint.js';
import { appendHistory, historyEntry, writeRunInfo } from './history.js';
import { displayPath } from './fsutil.js';
import { dropIdleHolderRecords, FileLock } from './locks.js';
import { LockfileWriter } from './lockfile-writer.js';
import { sweepLeftovers } from './maintenance.js';
import { lockfilePathFor, readLockfile, type Lockfile } from './lockfile.js';
import type { Reporter } from './logging/events.js';
import type { Plan, StageInstance } from './plan.js';
import { executeInstance, StageFailure } from './run-instance.js';
import { ScratchDirs } from './scratch-dirs.js';
import { SlotPool } from './slot-pool.js';
import { nearestName } from './suggest.js';
import type { Workspace } from './workspace.js';

export interface RunOptions {
  /** Stage names or instance ids; with their ancestors, the part of the pipeline to run. Default: all. */
  readonly targets?: readonly string[];
  /** Rerun these stages (names or ids) even if cached; `true` forces every selected stage. */
  readonly force?: true | readonly string[];
  /** Keep running independent stages after one fails. */
  readonly keepGoing?: boolean;
  readonly signal?: AbortSignal;
  /** The lockfile to read and write; default: the one beside the pipeline file (verify --recompute uses a scratch one). */
  readonly lockfile?: string;
  /**
   * Hold the run to the lockfile (`run --frozen`, CI's counterpart of `npm ci`): it is never
   * rewritten, and a stage whose fingerprint or outputs would change its entry fails, naming
   * why, instead of being materialized. Callers check the lockfile as a whole first
   * (lockfileMismatches); this guards what only running can show: outputs that differ.
   */
  readonly frozen?: boolean;
}

export interface RunSummary {
  readonly ran: string[];
  /** Up to date, nothing to do. */
  readonly upToDate: string[];
  /** Copied back from the cache into artifacts/. */
  readonly restored: string[];
  readonly failed: string[];
  readonly skipped: string[];
  readonly interrupted: boolean;
}

/** The instance ids selected by target names/ids (a stage name selects all its variants). Throws on an unknown target. */
export function resolveTargets(plan: Plan, targets: readonly string[]): string[] {
  return targets.flatMap((t) => {
    if (plan.byId.has(t)) return [t];
    const ids = plan.instances.filter((i) => i.stage === t).map((i) => i.id);
    if (!ids.length) throw new UnknownTargetError(t, plan);
    return ids;
  });
}

export class UnknownTargetError extends Error {
  constructor(
    readonly target: string,
    plan: Plan,
  ) {
    const suggestion = nearestName(target.replace(/\[.*$/, ''), plan.stageNames);
    super(
      `unknown stage '${target}' in ${plan.file}; stages: ${plan.stageNames.join(', ')}${suggestion ? `; did you mean '${suggestion}'?` : ''}`,
    );
  }
}

/** The selected instances (targets with their ancestors) and the forced ones, by id. */
export function selection(plan: Plan, options: Pick<RunOptions, 'targets' | 'force'>): { selected: Set<string>; forced: Set<string> } {
  const selected = options.targets ? withAncestors(plan.graph, resolveTargets(plan, options.targets)) : new Set(plan.graph.keys());
  const forcedIds = options.force === true ? [...selected] : options.force ? resolveTargets(plan, options.force) : [];
  return { selected, forced: new Set(forcedIds) };
}

/**
 * Runs a plan: every selected instance whose fingerprint has no cache entry runs (on the
 * executor, at most `executor.slots` at once); the others are restored. Instances start as
 * soon as their inputs are ready. Outputs go to a temp dir, then into the cache, then to
 * artifacts/, then to the lockfile — in that order, so an interruption at any point
 * leaves nothing that points at missing data.
 */
export async function runPlan(
  plan: Plan,
  workspace: Workspace,
  executor: Executor,
  reporter: Reporter,
  options: RunOptions = {},
): Promise<RunSummary> {
  for (const dir of [workspace.cacheDir, workspace.logsDir, workspace.locksDir, workspace.tmpDir]) mkdirSync(dir, { recursive: true });
  sweepLeftovers(workspace);
  return new PlanRun(plan, workspace, executor, reporter, options).execute();
}

/** One execution of a plan: the state its instances share while they settle. */
class PlanRun {
  private readonly store: CacheStore;
  private readonly statCache: StatCache;
  private readonly caches: FingerprintCaches;
  private readonly previousLock: Lockfile | undefined;
  private readonly lockfile: LockfileWriter;
  private readonly slots: SlotPool;
  private readonly selected: Set<string>;
  private readonly forced: Set<string>;
  private readonly signal: AbortSignal;
  private readonly summary: RunSummary = { ran: [], upToDate: [], restored: [], failed: [], skipped: [], interrupted: false };
  private readonly outputs = new Map<string, Manifest>();
  private readonly lockPath: string;
  private readonly scratch: ScratchDirs;
  private readonly started = performance.now();
  private stopScheduling = false;
  /** Instance id → its position in plan.instances. */
  private readonly planOrder: ReadonlyMap<string, number>;

  constructor(
    private readonly plan: Plan,
    private readonly workspace: Workspace,
    private readonly executor: Executor,
    private readonly reporter: Reporter,
    private readonly options: RunOptions,
  ) {
    this.store = new CacheStore(workspace.cacheDir);
    this.planOrder = new Map(plan.instances.map((i, position) => [i.id, position]));
    this.scratch = new ScratchDirs(workspace.tmpDir);
    this.statCache = StatCache.load(workspace.statCacheFile);
    this.caches = { statCache: this.statCache, codeDigests: new Map() };
    this.lockPath = options.lockfile ?? lockfilePathFor(plan.file);
    this.previousLock = readLockfile(this.lockPath);
    this.lockfile = new LockfileWriter(this.lockPath, plan.name, [...plan.graph.keys()], workspace.locksDir, this.previousLock, {
      readOnly: options.frozen ?? false,
    });
    this.slots = new SlotPool(executor.slots);
    const { selected, forced } = selection(plan, options);
    this.selected = selected;
    this.forced = forced;
    this.signal = options.signal ?? new AbortController().signal;
  }

  async execute(): Promise<RunSummary> {
    const { plan, reporter } = this;
    reporter.event({ type: 'plan', ids: plan.instances.filter((i) => this.selected.has(i.id)).map((i) => i.id) });
    const done = new Map<string, Promise<boolean>>();
    for (const instance of plan.instances) {
      if (!this.selected.has(instance.id)) continue;
      const deps = (plan.graph.get(instance.id) ?? []).map((d) => done.get(d)!);
      done.set(
        instance.id,
        this.settle(instance, deps).catch((error: unknown) => {
          this.summary.failed.push(instance.id);
          this.stopScheduling = true;
          reporter.event({
            type: 'failed',
            id: instance.id,
            message: error instanceof Error ? error.message : String(error),
            logFile: '',
            logTail: '',
          });
          return false;
        }),
      );
    }
    await Promise.all(done.values());
    this.scratch.dispose();
    const lockfile = await this.lockfile.flush();
    dropIdleHolderRecords();
    this.statCache.save();
    const summary = { ...this.summary, interrupted: this.signal.aborted };
    this.recordHistory(summary, lockfile);
    return summary;
  }

  /** A line in .ablate/history/: the run's results are complete without it, so a failure to write it only warns. */
  private recordHistory(summary: RunSummary, lockfile: Lockfile | undefined): void {
    const { plan, workspace } = this;
    try {
      const entry = historyEntry(summary, {
        pipeline: plan.name,
        file: relative(workspace.root, plan.file),
        root: workspace.root,
        seconds: (performance.now() - this.started) / 1000,
        selected: plan.instances.filter((i) => this.selected.has(i.id)).map((i) => i.id),
        lockfile,
      });
      appendHistory(workspace.historyDir, entry);
      writeRunInfo(join(workspace.root, 'artifacts', plan.name), entry);
    } catch (error) {
      process.stderr.write(`ablate: warning: run history not written: ${(error as Error).message}\n`);
    }
  }

  /** Waits for the instance's inputs, then restores it or runs it; false when it did not complete. */
  private async settle(instance: StageInstance, deps: Promise<boolean>[]): Promise<boolean> {
    const depsOk = await Promise.all(deps);
    if (!depsOk.every(Boolean)) return this.skip(instance, 'an upstream stage did not complete');
    const halted = this.haltReason();
    if (halted) return this.skip(instance, halted);
    const fingerprint = await computeFingerprint(instance, this.plan, (id) => this.outputs.get(id), this.caches);
    if ('missing' in fingerprint) throw new Error(`internal: ${instance.id} scheduled before ${fingerprint.missing}`);
    const digest = fingerprintDigest(fingerprint);
    if (this.options.frozen) this.holdToLockfile(instance, fingerprint, digest);
    const decideNow = () =>
      decide({
        instance,
        fingerprint,
        digest,
        previous: this.previousLock?.stages[instance.id],
        forced: this.forced.has(instance.id),
        store: this.store,
        statCache: this.statCache,
        workspaceRoot: this.workspace.root,
      });
    const first = await decideNow();
    if (first.action !== 'run' && (await this.useCached(instance, digest, first))) return true;

    // Only one process runs a given fingerprint; a concurrent run waits, then restores its result.
    let lock: FileLock;
    try {
      lock = await FileLock.acquire(join(this.workspace.locksDir, `${digest}.lock`), {
        signal: this.signal,
        onWait: (holder) => this.reporter.event({ type: 'waiting', id: instance.id, holderPid: holder.pid }),
      });
    } catch (error) {
      if (!this.signal.aborted) throw error;
      return this.skip(instance, 'interrupted');
    }
    try {
      // Another process may have completed it while this one waited for the lock.
      const decision = await decideNow();
      if (decision.action !== 'run' && (await this.useCached(instance, digest, decision))) return true;
      const reasons = decision.action === 'run' ? decision.reasons : [{ type: 'not-cached' as const }];
      return await this.runFresh(instance, fingerprint, digest, describeReasons(reasons, instance.ref.name));
    } catch (error) {
      if (this.signal.aborted) return this.skip(instance, 'interrupted');
      const failure = error instanceof StageFailure ? error : new StageFailure(error instanceof Error ? error.message : String(error), '');
      this.summary.failed.push(instance.id);
      if (!this.options.keepGoing) this.stopScheduling = true;
      this.reporter.event({
        type: 'failed',
        id: instance.id,
        message: failure.message,
        logFile: failure.logFile,
        logTail: tail(failure.logFile),
      });
      return false;
    } finally {
      lock.release();
    }
  }

  /**
   * Acts on an up-to-date or restore decision. False when the cache let it down (an object
   * missing or corrupt: the record is dropped and the stage runs instead).
   */
  private async useCached(
    instance: StageInstance,
    digest: FingerprintDigest,
    decision: Exclude<Decision, { action: 'run' }>,
  ): Promise<boolean> {
    if (this.options.frozen)
      this.holdOutputsToLockfile(instance, decision.action === 'restore' ? decision.record.outputs : decision.outputs);
    let outputs: Manifest;
    if (decision.action === 'restore') {
      try {
        this.store.materialize(
          decision.record.outputs,
          join(this.workspace.root, instance.artifactDir),
          this.statCache,
          `the cache record of ${instance.id}`,
        );
      } catch (error) {
        if (!(error instanceof CorruptObjectError) && (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        this.store.dropRun(digest);
        return false;
      }
      outputs = decision.record.outputs;
    } else outputs = decision.outputs;
    this.outputs.set(instance.id, outputs);
    // Up to date by the lockfile itself (no record): its entry stands as it is.
    if (decision.record) this.lockfile.record(instance, decision.record);
    (decision.action === 'restore' ? this.summary.restored : this.summary.upToDate).push(instance.id);
    this.reporter.event({ type: 'cached', id: instance.id, restored: decision.action === 'restore' });
    return true;
  }

  /** Executes the instance on its slots, then materializes and records its outputs. */
  private async runFresh(
    instance: StageInstance,
    fingerprint: Fingerprint,
    digest: FingerprintDigest,
    reasons: string[],
  ): Promise<boolean> {
    const held = await this.slots.take(instance.threads);
    let record: RunRecord;
    try {
      const halted = this.haltReason();
      if (halted) return this.skip(instance, halted);
      const scope = {
        plan: this.plan,
        workspace: this.workspace,
        executor: this.executor,
        store: this.store,
        reporter: this.reporter,
        signal: this.signal,
        outputs: this.outputs,
        scratch: this.scratch,
      };
      record = await executeInstance(scope, instance, fingerprint, digest, reasons, this.provenanceOf(instance));
    } finally {
      this.slots.give(held);
    }
    // The cache keeps the record (it is what this code produced); artifacts/ and the lockfile do not change.
    if (this.options.frozen) this.holdOutputsToLockfile(instance, record.outputs);
    this.store.materialize(
      record.outputs,
      join(this.workspace.root, instance.artifactDir),
      this.statCache,
      `the outputs of ${instance.id}`,
    );
    this.outputs.set(instance.id, record.outputs);
    this.lockfile.record(instance, record);
    this.summary.ran.push(instance.id);
    this.reporter.event({
      type: 'done',
      id: instance.id,
      durationMs: record.durationMs,
      ...(record.metrics ? { metrics: record.metrics } : {}),
      ...(record.warnings?.length ? { warnings: record.warnings } : {}),
    });
    return true;
  }

  /** --frozen: the fingerprint must be the one the lockfile's entry completed with. */
  private holdToLockfile(instance: StageInstance, fingerprint: Fingerprint, digest: FingerprintDigest): void {
    const entry = this.previousLock?.stages[instance.id];
    if (!entry) throw new FrozenLockfileError(this.lockPath, instance.id, 'it is not in the lockfile');
    if (entry.digest !== digest)
      throw new FrozenLockfileError(
        this.lockPath,
        instance.id,
        `its fingerprint differs from the lockfile's entry (${describeReasons(diffFingerprints(entry.fingerprint, fingerprint), instance.ref.name).join('; ')})`,
      );
  }

  /** --frozen: the outputs must be the files, byte for byte, that the lockfile's entry records. */
  private holdOutputsToLockfile(instance: StageInstance, outputs: Manifest): void {
    const recorded = this.previousLock?.stages[instance.id]?.outputs ?? {};
    const paths = [...new Set([...Object.keys(recorded), ...Object.keys(outputs)])].sort();
    const differing = paths.filter((p) => recorded[p]?.digest !== outputs[p]?.digest || recorded[p]?.executable !== outputs[p]?.executable);
    if (!differing.length) return;
    const shown = differing.slice(0, 5).map((p) => (!recorded[p] ? `${p} (new)` : !outputs[p] ? `${p} (not written)` : p));
    const more = differing.length > shown.length ? ` and ${differing.length - shown.length} more` : '';
    throw new FrozenLockfileError(
      this.lockPath,
      instance.id,
      `its outputs differ from the lockfile's entry: ${shown.join(', ')}${more} (the same fingerprint gave other bytes: another machine, or a stage that is not deterministic)`,
    );
  }

  /** Every instance this one depends on, directly or not, in plan order. */
  private provenanceOf(instance: StageInstance): ProvenanceEntry[] {
    const { plan } = this;
    // Positions from a map: indexOf in the comparator was O(instances) per comparison.
    const order = this.planOrder;
    return [...withAncestors(plan.graph, [instance.id])]
      .filter((id) => id !== instance.id)
      .map((id) => {
        const up = plan.byId.get(id)!;
        return { id, stage: up.stage, kind: up.ref.name, variant: up.variant, dependsOn: plan.graph.get(id) ?? [] };
      })
      .sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  }

  /** Records an instance that will not run; `false`, so callers can `return this.skip(…)`. */
  private skip(instance: StageInstance, reason: string): false {
    this.summary.skipped.push(instance.id);
    this.reporter.event({ type: 'skipped', id: instance.id, reason });
    return false;
  }

  private haltReason(): string | undefined {
    return this.signal.aborted ? 'interrupted' : this.stopScheduling ? 'stopped after a failure' : undefined;
  }
}

/** `run --frozen` met a stage that would change the lockfile. */
export class FrozenLockfileError extends Error {
  override readonly name = 'FrozenLockfileError';
  constructor(lockfile: string, id: string, why: string) {
    super(`--frozen: ${id} would change ${displayPath(lockfile)}: ${why}; the lockfile was left as it is`);
  }
}

/** The last lines of a stage's log, shown when it fails. */
function tail(file: string, lines = 20): string {
  if (!file || !existsSync(file) || statSync(file).size === 0) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
