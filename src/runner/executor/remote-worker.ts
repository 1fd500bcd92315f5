/**
 * `ablate worker`: takes stage jobs from the BullMQ queue and runs them in a local process
 * pool (so a long synchronous stage never starves BullMQ's lock renewal), in a checkout of
 * the same project. Per job: refuse it if this checkout's code differs from what the
 * coordinator fingerprinted; fetch every upstream output by digest from the shared store;
 * rewrite the job's paths from the coordinator's workspace to this one; run; put the
 * outputs into the store and return their manifest.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Worker, type Job } from 'bullmq';
import type { GatheredInput } from '../../core/contract.js';
import { loadStageKind, resolveStageRef } from '../../core/registry.js';
import { StatCache } from '../caching/stat-cache.js';
import { isSafeRelativePath, UnsafePathError } from '../caching/confine.js';
import { CacheStore } from '../caching/store.js';
import { codeDigest } from '../code-digest.js';
import { diffFingerprints, machineFacts } from '../fingerprint.js';
import { uniqueSuffix } from '../fsutil.js';
import { FileLock } from '../locks.js';
import type { Workspace } from '../workspace.js';
import { connectRedis, DEFAULT_QUEUE, redactRedisUrl, type RemoteJobData, type RemoteJobResult, type RemoteProgress } from './bullmq.js';
import { LocalProcessPool } from './local-pool.js';
import type { JobContext, StageJob } from './types.js';

export interface WorkerOptions {
  readonly redis: string;
  /** Default: DEFAULT_QUEUE. */
  readonly queue?: string;
  /** Jobs run at once. */
  readonly concurrency: number;
  /** The shared store as mounted here; default: the path the coordinator sent. */
  readonly cacheDir?: string;
  /** A job whose worker has not renewed its lock for this long is given to another worker. */
  readonly stalledMs: number;
  readonly workspace: Workspace;
  readonly say: (line: string) => void;
}

/** Progress updates are Redis round trips: at most this often per job. */
const PROGRESS_INTERVAL_MS = 250;

/** Runs until `signal` aborts; then finishes nothing new, closes, and resolves. */
export async function runWorker(options: WorkerOptions, signal: AbortSignal): Promise<void> {
  const connection = await connectRedis(options.redis);
  // Announces this worker to `ablate gc` in the same checkout, which would otherwise delete
  // the job directories it is using.
  mkdirSync(options.workspace.locksDir, { recursive: true });
  const presence = FileLock.tryAcquire(join(options.workspace.locksDir, `worker-${process.pid}-${uniqueSuffix()}.lock`));
  const pool = new LocalProcessPool(options.concurrency);
  const me = `${hostname()}:${process.pid}`;
  const queue = options.queue ?? DEFAULT_QUEUE;
  const worker = new Worker<RemoteJobData, RemoteJobResult>(queue, (job) => runRemoteJob(job, options, pool, me), {
    connection,
    concurrency: options.concurrency,
    lockDuration: options.stalledMs,
    stalledInterval: options.stalledMs,
    maxStalledCount: 3,
  });
  worker.on('active', (job) => options.say(`${me} runs ${job.data.job.id}`));
  worker.on('completed', (job) => options.say(`${me} done ${job.data.job.id}`));
  worker.on('failed', (job, error) => options.say(`${me} failed ${job?.data.job.id ?? '?'}: ${error.message.split('\n')[0]}`));
  // ioredis retries a lost connection every few hundred ms: say each new error once, and the recovery.
  let lastError = '';
  worker.on('error', (error) => {
    if (error.message !== lastError) options.say(`${me} error: ${error.message} (retrying)`);
    lastError = error.message;
  });
  connection.on('ready', () => {
    if (lastError) options.say(`${me} reconnected to ${redactRedisUrl(options.redis)}`);
    lastError = '';
  });
  await worker.waitUntilReady();
  options.say(
    `${me} waiting for jobs on queue '${queue}' at ${redactRedisUrl(options.redis)} (concurrency ${options.concurrency}; a stage's threads come from its params)`,
  );
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  await worker.close();
  await pool.close();
  connection.disconnect();
  if (presence instanceof FileLock) presence.release();
}

async function runRemoteJob(
  bullJob: Job<RemoteJobData, RemoteJobResult>,
  options: WorkerOptions,
  pool: LocalProcessPool,
  me: string,
): Promise<RemoteJobResult> {
  const { job, context, cacheDir } = bullJob.data;
  const store = new CacheStore(options.cacheDir ?? cacheDir);
  const local = join(options.workspace.tmpDir, `remote-${uniqueSuffix()}`);
  const publish = (update: RemoteProgress) => void bullJob.updateProgress(update).catch(() => undefined);
  let lastProgress = 0;
  const progress = (message: string, fraction?: number) => {
    const now = Date.now();
    if (now - lastProgress < PROGRESS_INTERVAL_MS && fraction !== 1) return;
    lastProgress = now;
    publish({ kind: 'progress', message, ...(fraction === undefined ? {} : { fraction }) });
  };
  // Log lines are milestones (one per epoch), few enough to publish every one.
  const log = (line: string) => publish({ kind: 'log', line });
  let localJob: StageJob | undefined;
  try {
    localJob = await localize(job, context, local, store, options.workspace);
    await pool.run(localJob, { progress, log }, new AbortController().signal);
    return { manifest: store.ingest(localJob.outDir) };
  } finally {
    const stageLog = localJob ? readFileSync(localJob.logFile, 'utf8') : '';
    await bullJob.log(`# ran on ${me}\n${stageLog}`).catch(() => undefined);
    rmSync(local, { recursive: true, force: true });
  }
}

/** The job as this machine runs it: code and machine facts checked, inputs fetched by digest, paths rewritten. */
async function localize(job: StageJob, context: JobContext, local: string, store: CacheStore, workspace: Workspace): Promise<StageJob> {
  const { workspaceRoot } = context;
  const fromRoot = (path: string) =>
    path === workspaceRoot || path.startsWith(`${workspaceRoot}/`) ? join(workspace.root, path.slice(workspaceRoot.length)) : path;
  const pipelineDir = fromRoot(job.pipelineDir);
  const ref = resolveStageRef(job.ref.name, pipelineDir);
  if (!ref) throw new Error(`stage kind '${job.ref.name}' is not available in this worker's checkout (${workspace.root})`);
  const kind = await loadStageKind(ref);
  // Code and the machine facts the kind declares (its TensorFlow.js backend) are part of the
  // fingerprint: outputs computed under others must not be stored under the coordinator's.
  const expected = context.fingerprint;
  const here = { ...expected, code: codeDigest(ref.sourceFile, ref.codeRoot), environment: await machineFacts(kind, job.params) };
  const reasons = diffFingerprints(expected, here);
  const code = reasons.flatMap((r) => (r.type === 'code' ? [r.file] : r.type === 'package' ? [`package ${r.name}`] : []));
  if (code.length)
    throw new Error(`this worker's code differs from the coordinator's (${code.join(', ')}); update its checkout (${workspace.root})`);
  const machine = reasons.flatMap((r) =>
    r.type === 'environment' ? [`${r.name}: ${r.to ?? '(none)'} here, ${r.from ?? '(none)'} on the coordinator`] : [],
  );
  if (machine.length)
    throw new Error(
      `this worker's machine differs from what the stage was fingerprinted with (${machine.join('; ')}); run it on a matching worker or run this pipeline locally`,
    );

  for (const u of context.upstream)
    if (!isSafeRelativePath(u.artifactDir))
      throw new UnsafePathError(`the job names an upstream directory '${u.artifactDir}' outside the workspace; refused`);
  const upstreamDirs = context.upstream.map((u) => ({
    remote: join(workspaceRoot, u.artifactDir),
    local: join(local, 'in', u.artifactDir),
  }));
  for (const [i, u] of context.upstream.entries())
    store.materialize(u.manifest, upstreamDirs[i]!.local, StatCache.inMemory(), `the job's manifest of ${u.artifactDir}`);
  const remap = (path: string) => {
    const hit = upstreamDirs.find((u) => path === u.remote || path.startsWith(`${u.remote}/`));
    return hit ? join(hit.local, path.slice(hit.remote.length)) : fromRoot(path);
  };
  const inputs = Object.fromEntries(
    Object.entries(job.inputs).map(([name, value]) => [
      name,
      typeof value === 'string' ? remap(value) : value.map((g: GatheredInput) => ({ ...g, path: remap(g.path) })),
    ]),
  );
  const outDir = join(local, 'out');
  mkdirSync(outDir, { recursive: true });
  const logFile = join(local, 'stage.log');
  writeFileSync(logFile, '');
  return { ...job, ref, inputs, outDir, pipelineDir, logFile };
}
