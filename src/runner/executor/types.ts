import type { GatheredInput, ProvenanceEntry, Variant } from '../../core/contract.js';
import type { StageRef } from '../../core/registry.js';
import type { Manifest } from '../caching/manifest.js';
import type { Fingerprint } from '../fingerprint.js';

/** Everything a process needs to run one stage instance; plain data, so it can cross a process (or machine) boundary. */
export interface StageJob {
  readonly id: string;
  readonly ref: StageRef;
  readonly variant: Variant;
  readonly params: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, string | readonly GatheredInput[]>>;
  readonly outDir: string;
  readonly pipelineDir: string;
  readonly logFile: string;
  readonly seed: number;
  readonly provenance: readonly ProvenanceEntry[];
  /** StageContext.provenanceTree. */
  readonly provenanceTree: string;
  /** Cores the stage may use (StageContext.threads). */
  readonly threads: number;
}

/**
 * What only an executor whose workers see neither this workspace nor its artifacts needs;
 * it stays out of StageJob so local worker processes are not sent it.
 */
export interface JobContext {
  /** The coordinator's workspace root: StageJob's paths are under it (or under the pipeline dir). */
  readonly workspaceRoot: string;
  /** Each upstream instance's artifact directory and output manifest, fetched by digest from the shared store. */
  readonly upstream: readonly { readonly artifactDir: string; readonly manifest: Manifest }[];
  /** What the stage was fingerprinted with; a worker whose code or machine facts differ refuses the job. */
  readonly fingerprint: Fingerprint;
}

export interface JobObserver {
  progress(message: string, fraction?: number): void;
  /**
   * A line the stage wrote with `ctx.log` (already in its log file). The display shows
   * these as they come, as Keras prints each epoch's summary above its progress bar: they
   * are the stage's milestones (an epoch's validation loss), where progress is the ticker.
   */
  log(line: string): void;
}

/**
 * Where stages run. The scheduler decides what runs and when; an Executor only runs the
 * job it is given and resolves when the stage's `run` resolved (rejects with its error).
 * Implementations: a local pool of worker processes (local-pool.ts); BullMQ workers (bullmq.ts).
 */
export interface Executor {
  /** How many jobs it can run at once. */
  readonly slots: number;
  run(job: StageJob, observer: JobObserver, signal: AbortSignal, context: JobContext): Promise<void>;
  close(): Promise<void>;
}

/** Messages between the coordinator and a worker process. */
export type ToWorker = { readonly type: 'run'; readonly job: StageJob } | { readonly type: 'abort' };
export type FromWorker =
  | { readonly type: 'progress'; readonly message: string; readonly fraction?: number }
  | { readonly type: 'log'; readonly line: string }
  | { readonly type: 'done' }
  | { readonly type: 'failed'; readonly message: string };
