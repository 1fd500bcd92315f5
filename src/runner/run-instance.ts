import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GatheredInput, ProvenanceEntry } from '../core/contract.js';
import { manifestDigest, type Manifest } from './caching/manifest.js';
import { renderTextTree } from './dag-render.js';
import type { CacheStore, RunRecord } from './caching/store.js';
import type { Executor, JobContext, StageJob } from './executor/types.js';
import { seedOf, type Fingerprint, type FingerprintDigest } from './fingerprint.js';
import { inDirectory } from './fsutil.js';
import type { ScratchDirs } from './scratch-dirs.js';
import { EtaEstimate, formatEta } from './logging/eta.js';
import type { Reporter } from './logging/events.js';
import type { Plan, StageInstance } from './plan.js';
import type { Workspace } from './workspace.js';

/** What executing any instance of one run needs. */
export interface ExecutionScope {
  readonly plan: Plan;
  readonly workspace: Workspace;
  readonly executor: Executor;
  readonly store: CacheStore;
  readonly reporter: Reporter;
  readonly signal: AbortSignal;
  /** Outputs of the instances completed so far in this run. */
  readonly outputs: ReadonlyMap<string, Manifest>;
  /** Where stages write their outputs before the store takes them. */
  readonly scratch: ScratchDirs;
}

/** A stage that failed, with the log the user should read. */
export class StageFailure extends Error {
  constructor(
    message: string,
    readonly logFile: string,
  ) {
    super(message);
  }
}

/**
 * Runs one instance on the executor into a fresh temp dir (retrying as its `retries:` allows),
 * checks its declared outputs, moves them into the store and writes its run record — in that
 * order, so a record never points at missing objects. Throws StageFailure.
 */
export async function executeInstance(
  scope: ExecutionScope,
  instance: StageInstance,
  fingerprint: Fingerprint,
  digest: FingerprintDigest,
  reasons: readonly string[],
  provenance: readonly ProvenanceEntry[],
): Promise<RunRecord> {
  const { plan, workspace, executor, store, reporter, signal } = scope;
  const outDir = scope.scratch.take();
  const logFile = join(workspace.logsDir, plan.name, `${instance.id.replace(/[/\\]/g, '_')}.log`);
  const header = `# ${instance.id} · ${new Date().toISOString()} · fingerprint ${digest} · ${instance.threads} thread(s)\n`;
  inDirectory(logFile, () => writeFileSync(logFile, header));
  reporter.event({ type: 'start', id: instance.id, reasons: [...reasons] });
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
    provenance,
    provenanceTree: renderTextTree(new Map(provenance.map((p) => [p.id, [...p.dependsOn]]))),
    threads: instance.threads,
  };
  const context: JobContext = {
    workspaceRoot: workspace.root,
    upstream: (plan.graph.get(instance.id) ?? []).map((id) => ({
      artifactDir: plan.byId.get(id)!.artifactDir,
      manifest: scope.outputs.get(id)!,
    })),
    fingerprint,
  };
  const estimate = new EtaEstimate();
  const observer = {
    progress: (message: string, fraction?: number) => {
      const now = performance.now();
      const eta = fraction === undefined ? undefined : estimate.update(now, fraction);
      const text = eta === undefined ? message : `${message} · ETA ${formatEta(eta)}`;
      reporter.event({ type: 'progress', id: instance.id, message: text, ...(fraction === undefined ? {} : { fraction }) });
    },
    log: (line: string) => reporter.event({ type: 'log', id: instance.id, line }),
  };
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
    const warnings = instance.metricsFile ? readWarnings(join(outDir, instance.metricsFile)) : [];
    const manifest = store.ingest(outDir);
    const record: RunRecord = {
      digest,
      fingerprint,
      outputs: manifest,
      outputDigest: manifestDigest(manifest),
      ...(metrics ? { metrics } : {}),
      ...(warnings.length ? { warnings } : {}),
      durationMs: Math.round(performance.now() - started),
      createdAt: new Date().toISOString(),
    };
    store.writeRun(record);
    return record;
  } catch (error) {
    throw new StageFailure(error instanceof Error ? error.message : String(error), logFile);
  } finally {
    scope.scratch.give(outDir);
  }
}

/** Paths the job sees for its inputs: upstream artifact directories (or named outputs in them). */
export function inputPaths(instance: StageInstance, plan: Plan, workspaceRoot: string): Record<string, string | GatheredInput[]> {
  const pathOf = (id: string, output: string | undefined) => {
    const up = plan.byId.get(id)!;
    const base = join(workspaceRoot, up.artifactDir);
    return output === undefined ? base : join(base, up.outputs[output]!.replace(/\/$/, ''));
  };
  return Object.fromEntries(
    Object.entries(instance.inputs).map(([name, b]) => [
      name,
      b.type === 'single' ? pathOf(b.from, b.output) : b.from.map((f) => ({ id: f.id, variant: f.variant, path: pathOf(f.id, b.output) })),
    ]),
  );
}

/**
 * A metrics file's `warnings`: strings a stage wants on its line and in the lockfile, for
 * results that are valid but probably not what the user meant (the runner does not know why).
 */
export function readWarnings(file: string): string[] {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { warnings?: unknown };
  return Array.isArray(parsed.warnings) ? parsed.warnings.filter((w): w is string => typeof w === 'string') : [];
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
