import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from './caching/manifest.js';
import { manifestDigest } from './caching/manifest.js';
import { StatCache } from './caching/stat-cache.js';
import { CacheStore, CorruptObjectError, type RunRecord } from './caching/store.js';
import { withAncestors } from './dag.js';
import type { ProvenanceEntry } from '../stages/contract.js';
import type { Executor, JobContext, StageJob } from './executor/types.js';
import { describeReasons, diffFingerprints, fingerprintDigest, type Fingerprint, type FingerprintDigest, type StaleReason } from './fingerprint.js';
import { uniqueSuffix } from './fsutil.js';
import { FileLock } from './locks.js';
import { lockfilePathFor, readLockfile, updateLockfile, type LockEntry } from './lockfile.js';
import type { Reporter } from './logging/events.js';
import type { Plan, StageInstance } from './plan.js';
import { cachedState, computeFingerprint, inputPaths, seedOf } from './stage-inputs.js';
import type { Workspace } from './workspace.js';

export interface RunOptions {
  /** Stage names or instance ids; with their ancestors, the part of the pipeline to run. Default: all. */
  readonly targets?: readonly string[];
  /** Rerun these stages (names or ids) even if cached; `true` forces every selected stage. */
  readonly force?: true | readonly string[];
  /** Keep running independent stages after one fails. */
  readonly keepGoing?: boolean;
  readonly signal?: AbortSignal;
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

/** How often completed stages are written to the lockfile while a run goes on. */
const LOCKFILE_FLUSH_MS = 1000;

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
    super(`unknown stage '${target}' in ${plan.file}; stages: ${plan.stageNames.join(', ')}`);
  }
}

/**
 * Runs a plan: every selected instance whose fingerprint has no cache entry runs (on the
 * executor, at most `executor.slots` at once); the others are restored. Instances start as
 * soon as their inputs are ready. Outputs go to a temp dir, then into the cache, then to
 * artifacts/, then to the lockfile — in that order, so an interruption at any point
 * leaves nothing that points at missing data.
 */
export async function runPlan(plan: Plan, workspace: Workspace, executor: Executor, reporter: Reporter, options: RunOptions = {}): Promise<RunSummary> {
  for (const dir of [workspace.cacheDir, workspace.logsDir, workspace.locksDir, workspace.tmpDir]) mkdirSync(dir, { recursive: true });
  const store = new CacheStore(workspace.cacheDir);
  const statCache = StatCache.load(workspace.statCacheFile);
  const caches = { statCache, codeDigests: new Map() };
  const lockPath = lockfilePathFor(plan.file);
  const previousLock = readLockfile(lockPath);
  const selected = options.targets ? withAncestors(plan.graph, resolveTargets(plan, options.targets)) : new Set(plan.graph.keys());
  const forced = options.force === true ? selected : new Set(options.force ? resolveTargets(plan, options.force) : []);
  const signal = options.signal ?? new AbortController().signal;

  const summary: RunSummary = { ran: [], upToDate: [], restored: [], failed: [], skipped: [], interrupted: false };
  const outputs = new Map<string, Manifest>();
  const origins = new Map<string, { origin: 'ran' | 'cached'; durationMs: number }>();
  const provenanceOf = (instance: StageInstance): ProvenanceEntry[] =>
    [...withAncestors(plan.graph, [instance.id])]
      .filter((id) => id !== instance.id)
      .map((id) => {
        const up = plan.byId.get(id)!;
        const known = origins.get(id)!;
        return { id, stage: up.stage, kind: up.ref.name, variant: up.variant, dependsOn: plan.graph.get(id) ?? [], ...known };
      })
      .sort((a, b) => plan.instances.indexOf(plan.byId.get(a.id)!) - plan.instances.indexOf(plan.byId.get(b.id)!));
  const lockUpdates = new Map<string, LockEntry>();
  let stopScheduling = false;
  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  const lockIsCurrent = () => lockUpdates.size === 0 && previousLock !== undefined && Object.keys(previousLock.stages).every((id) => plan.byId.has(id));
  const flushLock = () => {
    flushTimer = undefined;
    if (lockIsCurrent()) return flushing;
    const batch = new Map(lockUpdates);
    flushing = flushing.then(() => updateLockfile(lockPath, plan.name, batch, [...plan.graph.keys()], workspace.locksDir));
    return flushing;
  };
  const recordLock = (instance: StageInstance, record: RunRecord) => {
    const previous = previousLock?.stages[instance.id];
    if (previous?.digest === record.digest && previous.outputDigest === record.outputDigest && previous.artifactDir === instance.artifactDir) return;
    const { createdAt: _createdAt, ...rest } = record;
    lockUpdates.set(instance.id, { ...rest, artifactDir: instance.artifactDir });
    flushTimer ??= setTimeout(flushLock, LOCKFILE_FLUSH_MS);
  };

  // Slots are cores. A multithreaded stage takes an equal share of the free slots with the
  // other multithreaded stages that could run now (`contenders`: their inputs are ready, they
  // hold no slot yet), so a training alone gets every core and two trainings one each.
  let free = executor.slots;
  const waiters: (() => void)[] = [];
  const contenders = new Set<string>();
  const takeSlots = async (instance: StageInstance): Promise<number> => {
    while (free === 0) await new Promise<void>((r) => waiters.push(r));
    const share = instance.kind.multithreaded ? Math.max(1, Math.floor(free / Math.max(1, contenders.size))) : 1;
    contenders.delete(instance.id);
    free -= share;
    return share;
  };
  const giveSlots = (count: number) => {
    free += count;
    for (let i = 0; i < count; i++) waiters.shift()?.();
  };

  const execute = async (instance: StageInstance, fingerprint: Fingerprint, digest: FingerprintDigest, reasons: string[], threads: number): Promise<RunRecord> => {
    const outDir = join(workspace.tmpDir, `${digest.slice(0, 16)}-${uniqueSuffix()}`);
    const logFile = join(workspace.logsDir, plan.name, `${instance.id.replace(/[/\\]/g, '_')}.log`);
    mkdirSync(outDir, { recursive: true });
    mkdirSync(join(workspace.logsDir, plan.name), { recursive: true });
    writeFileSync(logFile, `# ${instance.id} · ${new Date().toISOString()} · fingerprint ${digest} · ${threads} thread(s)\n`);
    reporter.event({ type: 'start', id: instance.id, reasons });
    const job: StageJob = {
      id: instance.id,
      ref: instance.ref,
      variant: instance.variant,
      params: instance.params,
      inputs: inputPaths(instance, plan, workspace.root),
      outDir,
      pipelineDir: plan.dir,
      logFile,
      seed: seedOf(instance),
      provenance: provenanceOf(instance),
      threads,
    };
    const context: JobContext = {
      workspaceRoot: workspace.root,
      upstream: (plan.graph.get(instance.id) ?? []).map((id) => ({ artifactDir: plan.byId.get(id)!.artifactDir, manifest: outputs.get(id)! })),
      fingerprint,
    };
    const observer = { progress: (message: string, fraction?: number) => reporter.event({ type: 'progress', id: instance.id, message, ...(fraction === undefined ? {} : { fraction }) }) };
    const started = performance.now();
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await executor.run(job, observer, signal, context);
          break;
        } catch (error) {
          if (attempt >= instance.retries || signal.aborted) throw error;
          const why = error instanceof Error ? error.message : String(error);
          appendFileSync(logFile, `# attempt ${attempt + 1} of ${instance.retries + 1} failed: ${why}\n`);
          observer.progress(`retrying (attempt ${attempt + 2} of ${instance.retries + 1}) after: ${why.split('\n')[0]}`);
          rmSync(outDir, { recursive: true, force: true });
          mkdirSync(outDir, { recursive: true });
        }
      }
      for (const [name, path] of Object.entries(instance.outputs)) {
        if (!existsSync(join(outDir, path))) throw new Error(`declared output '${name}' (${path}) was not written`);
      }
      const metrics = instance.metricsFile ? readMetrics(join(outDir, instance.metricsFile)) : undefined;
      const manifest = store.ingest(outDir);
      const record: RunRecord = {
        digest,
        fingerprint,
        outputs: manifest,
        outputDigest: manifestDigest(manifest),
        ...(metrics ? { metrics } : {}),
        durationMs: Math.round(performance.now() - started),
        createdAt: new Date().toISOString(),
      };
      store.writeRun(record);
      return record;
    } catch (error) {
      throw new StageFailure(error instanceof Error ? error.message : String(error), logFile);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  };

  /** Records an instance that will not run; `false`, so callers can `return skip(…)`. */
  const skip = (instance: StageInstance, reason: string): false => {
    summary.skipped.push(instance.id);
    reporter.event({ type: 'skipped', id: instance.id, reason });
    return false;
  };
  const haltReason = () => (signal.aborted ? 'interrupted' : stopScheduling ? 'stopped after a failure' : undefined);

  const settle = async (instance: StageInstance, deps: Promise<boolean>[]): Promise<boolean> => {
    const depsOk = await Promise.all(deps);
    if (!depsOk.every(Boolean)) return skip(instance, 'an upstream stage did not complete');
    const halted = haltReason();
    if (halted) return skip(instance, halted);
    if (instance.kind.multithreaded) contenders.add(instance.id);
    const fingerprint = await computeFingerprint(instance, plan, (id) => outputs.get(id), caches);
    if ('missing' in fingerprint) throw new Error(`internal: ${instance.id} scheduled before ${fingerprint.missing}`);
    const digest = fingerprintDigest(fingerprint);
    const isForced = forced.has(instance.id) || forced.has(instance.stage);

    const tryCache = async (): Promise<boolean> => {
      const found = await cachedState(instance, digest, previousLock?.stages[instance.id], store, statCache, workspace.root);
      if (found.state === 'absent') return false;
      if (found.state === 'restore') {
        try {
          store.materialize(found.record.outputs, join(workspace.root, instance.artifactDir), statCache);
        } catch (error) {
          if (!(error instanceof CorruptObjectError) && (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
          store.dropRun(digest);
          return false;
        }
      }
      const restored = found.state === 'restore';
      outputs.set(instance.id, restored ? found.record.outputs : found.outputs);
      origins.set(instance.id, { origin: 'cached', durationMs: restored ? found.record.durationMs : found.durationMs });
      // Up to date by the lockfile itself: its entry stands as it is.
      if (found.record) recordLock(instance, found.record);
      (restored ? summary.restored : summary.upToDate).push(instance.id);
      reporter.event({ type: 'cached', id: instance.id, restored });
      return true;
    };
    if (!isForced && (await tryCache())) return true;

    // Only one process runs a given fingerprint; a concurrent run waits, then restores its result.
    let lock: FileLock;
    try {
      lock = await FileLock.acquire(join(workspace.locksDir, `${digest}.lock`), {
        signal,
        onWait: (holder) => reporter.event({ type: 'waiting', id: instance.id, holderPid: holder.pid }),
      });
    } catch (error) {
      if (!signal.aborted) throw error;
      return skip(instance, 'interrupted');
    }
    try {
      if (!isForced && (await tryCache())) return true;
      const previous = previousLock?.stages[instance.id];
      const reasons: StaleReason[] = isForced ? [{ type: 'forced' }] : diffFingerprints(previous?.fingerprint, fingerprint);
      if (!reasons.length) reasons.push({ type: 'not-cached' });
      const threads = await takeSlots(instance);
      let record: RunRecord;
      try {
        const haltedWhileQueued = haltReason();
        if (haltedWhileQueued) return skip(instance, haltedWhileQueued);
        record = await execute(instance, fingerprint, digest, describeReasons(reasons, instance.ref.name), threads);
      } finally {
        giveSlots(threads);
      }
      store.materialize(record.outputs, join(workspace.root, instance.artifactDir), statCache);
      outputs.set(instance.id, record.outputs);
      origins.set(instance.id, { origin: 'ran', durationMs: record.durationMs });
      recordLock(instance, record);
      summary.ran.push(instance.id);
      reporter.event({ type: 'done', id: instance.id, durationMs: record.durationMs, ...(record.metrics ? { metrics: record.metrics } : {}) });
      return true;
    } catch (error) {
      if (signal.aborted) return skip(instance, 'interrupted');
      const failure = error instanceof StageFailure ? error : new StageFailure(error instanceof Error ? error.message : String(error), '');
      summary.failed.push(instance.id);
      if (!options.keepGoing) stopScheduling = true;
      reporter.event({ type: 'failed', id: instance.id, message: failure.message, logFile: failure.logFile, logTail: tail(failure.logFile) });
      return false;
    } finally {
      lock.release();
    }
  };

  reporter.event({ type: 'plan', ids: plan.instances.filter((i) => selected.has(i.id)).map((i) => i.id) });
  const done = new Map<string, Promise<boolean>>();
  for (const instance of plan.instances) {
    if (!selected.has(instance.id)) continue;
    const deps = (plan.graph.get(instance.id) ?? []).map((d) => done.get(d)!);
    done.set(
      instance.id,
      settle(instance, deps)
        .finally(() => contenders.delete(instance.id))
        .catch((error: unknown) => {
          summary.failed.push(instance.id);
          stopScheduling = true;
          reporter.event({ type: 'failed', id: instance.id, message: error instanceof Error ? error.message : String(error), logFile: '', logTail: '' });
          return false;
        }),
    );
  }
  await Promise.all(done.values());
  if (flushTimer) clearTimeout(flushTimer);
  await flushLock();
  statCache.save();
  return { ...summary, interrupted: signal.aborted };
}

class StageFailure extends Error {
  constructor(
    message: string,
    readonly logFile: string,
  ) {
    super(message);
  }
}

/** A metrics file's numbers, flattened to dotted keys (`test.elbo`); other values are ignored. */
export function readMetrics(file: string): Record<string, number> {
  if (!existsSync(file)) throw new Error(`declared metrics file ${file} was not written`);
  const flat: Record<string, number> = {};
  const walk = (value: unknown, prefix: string) => {
    if (typeof value === 'number' && Number.isFinite(value)) flat[prefix] = value;
    else if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, prefix ? `${prefix}.${k}` : k);
    }
  };
  walk(JSON.parse(readFileSync(file, 'utf8')), '');
  return flat;
}

/** The last lines of a stage's log, shown when it fails. */
function tail(file: string, lines = 20): string {
  if (!file || !existsSync(file) || statSync(file).size === 0) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
