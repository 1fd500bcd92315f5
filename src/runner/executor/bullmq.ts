/**
 * Stages on BullMQ workers over Redis. The coordinator keeps every decision (validation,
 * fingerprints, cache lookups, order) and enqueues only stages whose inputs are ready, one
 * job per stage instance; the DAG never goes to BullMQ (its flows are trees, ours have
 * diamonds). Workers (`ablate worker`, remote-worker.ts) fetch inputs by digest from the
 * shared content-addressed store, run the stage, put the outputs back by digest and return
 * their manifest; the coordinator materializes them from the store, verifying each object.
 * A killed worker's job is recovered by BullMQ's stalled-job check and given to another.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, QueueEvents, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Manifest } from '../caching/manifest.js';
import { StatCache } from '../caching/stat-cache.js';
import { CacheStore } from '../caching/store.js';
import type { Executor, JobContext, JobObserver, StageJob } from './types.js';

/** The queue both sides use unless told otherwise (`--queue`). */
export const DEFAULT_QUEUE = 'ablate';

/** How long a queued stage waits before the display checks that any worker listens. */
const NO_WORKER_HINT_MS = 1000;

/** What the coordinator puts on the queue. */
export interface RemoteJobData {
  readonly job: StageJob;
  readonly context: JobContext;
  /** The shared store, as the coordinator sees it; a worker may mount it elsewhere (`--cache`). */
  readonly cacheDir: string;
}

/** What a worker returns: the outputs, now in the shared store. */
export interface RemoteJobResult {
  readonly manifest: Manifest;
}

/**
 * What workers publish through BullMQ's progress channel, the one event stream a
 * coordinator already listens to: the progress ticker and the stage's log lines.
 */
export type RemoteProgress =
  { readonly kind: 'progress'; readonly message: string; readonly fraction?: number } | { readonly kind: 'log'; readonly line: string };

export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';
}

/** Redis went away during a run and did not come back in time. */
export class RedisLostError extends Error {
  override readonly name = 'RedisLostError';
}

/**
 * How long the coordinator waits for a lost Redis to come back before it fails the stages in
 * flight (ABLATE_REDIS_TIMEOUT_MS): workers ride out restarts, a run should not hang forever.
 */
const REDIS_LOST_MS = Number(process.env.ABLATE_REDIS_TIMEOUT_MS) || 15_000;

/** A wait that gives up: what to do with Redis calls while Redis may be gone. */
function atMost<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
      timer.unref();
    }),
  ]);
}

/** The URL as it may be printed: a password in it becomes ***. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]+@/, '$1***@');
}

/**
 * A Redis connection for BullMQ, after proving the server answers: ioredis would otherwise
 * retry forever and a run would hang instead of saying what is wrong.
 */
export async function connectRedis(url: string): Promise<Redis> {
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // connect() rejects with a generic "Connection is closed."; the socket's error says why.
  let cause = '';
  probe.on('error', (error: Error) => (cause ||= error.message));
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    throw new RedisUnreachableError(
      `cannot reach Redis at ${redactRedisUrl(url)}: ${cause || (error as Error).message || 'connection failed'}`,
    );
  } finally {
    probe.disconnect();
  }
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  // ioredis prints a stack trace per retry for an 'error' without a listener; the executor and
  // the worker say what a lost connection means, once.
  connection.on('error', () => undefined);
  return connection;
}

export class BullmqExecutor implements Executor {
  private readonly store: CacheStore;
  /** Stages queued or running, by id: named when Redis is lost. */
  private readonly inFlight = new Set<string>();
  /** Each run()'s way to fail when Redis is lost. */
  private readonly onLost = new Set<(error: RedisLostError) => void>();
  private lostTimer: NodeJS.Timeout | undefined;
  private lost: RedisLostError | undefined;

  private constructor(
    readonly slots: number,
    /** BullMQ leaves connections it was given open: close() must end both. */
    private readonly connections: readonly Redis[],
    private readonly queue: Queue<RemoteJobData, RemoteJobResult>,
    private readonly events: QueueEvents,
    private readonly cacheDir: string,
    /** For the hint when no worker listens. */
    private readonly where: string,
  ) {
    this.store = new CacheStore(cacheDir);
    for (const connection of connections) connection.on('error', () => undefined);
    queue.on('error', () => undefined);
    events.on('error', () => undefined);
    const [main] = connections;
    main!.on('close', () => this.connectionDown());
    main!.on('ready', () => {
      clearTimeout(this.lostTimer);
      this.lostTimer = undefined;
    });
  }

  /** The connection closed: unless it is back within REDIS_LOST_MS, every stage in flight fails. */
  private connectionDown(): void {
    if (this.lostTimer || this.lost) return;
    this.lostTimer = setTimeout(() => {
      const stages = [...this.inFlight];
      this.lost = new RedisLostError(
        `lost Redis at ${this.where.replace(/^ablate worker --redis /, '')} for ${REDIS_LOST_MS / 1000} s, with ${stages.length ? `${stages.join(', ')} in flight` : 'nothing in flight'}; what completed is in the cache and the lockfile, rerun when Redis is back`,
      );
      for (const fail of this.onLost) fail(this.lost);
    }, REDIS_LOST_MS);
    this.lostTimer.unref();
  }

  /** `slots`: how many stages may be queued or running at once (workers decide how many run). */
  static async open(url: string, options: { slots: number; queue?: string; cacheDir: string }): Promise<BullmqExecutor> {
    const connection = await connectRedis(url);
    const name = options.queue ?? DEFAULT_QUEUE;
    const queue = new Queue<RemoteJobData, RemoteJobResult>(name, { connection });
    // QueueEvents blocks on its connection (XREAD), so it cannot share the queue's.
    const eventsConnection = connection.duplicate();
    const events = new QueueEvents(name, { connection: eventsConnection });
    await events.waitUntilReady();
    return new BullmqExecutor(
      options.slots,
      [connection, eventsConnection],
      queue,
      events,
      options.cacheDir,
      `ablate worker --redis ${redactRedisUrl(url)}${options.queue ? ` --queue ${name}` : ''}`,
    );
  }

  async run(job: StageJob, observer: JobObserver, signal: AbortSignal, context: JobContext): Promise<void> {
    signal.throwIfAborted();
    if (this.lost) throw this.lost;
    let failLost = (_: RedisLostError) => undefined as void;
    const lost = new Promise<never>((_, reject) => (failLost = reject));
    this.onLost.add(failLost);
    this.inFlight.add(job.id);
    try {
      await Promise.race([this.runQueued(job, observer, signal, context), lost]);
    } finally {
      this.onLost.delete(failLost);
      this.inFlight.delete(job.id);
    }
  }

  private async runQueued(job: StageJob, observer: JobObserver, signal: AbortSignal, context: JobContext): Promise<void> {
    // Workers read inputs from the shared store only; refill any object it lost (a worker
    // deletes one it finds corrupt) from this workspace's verified artifacts.
    for (const u of context.upstream) this.store.putMissing(u.manifest, join(context.workspaceRoot, u.artifactDir));
    // Jobs are removed once settled; the ages only bound what a coordinator that died leaves behind.
    const queued: Job<RemoteJobData, RemoteJobResult> = await this.queue.add(
      job.id,
      { job, context, cacheDir: this.cacheDir },
      { attempts: 1, removeOnComplete: { age: 3600 }, removeOnFail: { age: 86_400 } },
    );
    const id = queued.id!;
    // Asked only of a job still waiting after a while: CLIENT LIST per stage would cost every run.
    const noWorkerHint = setTimeout(() => {
      void this.queue
        .getWorkersCount()
        .then((count) => count === 0 && observer.progress(`queued; no worker is listening yet (start one: ${this.where})`))
        .catch(() => undefined);
    }, NO_WORKER_HINT_MS);
    const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
      if (jobId !== id) return;
      const published = data as RemoteProgress;
      if (published.kind === 'log') observer.log(published.line);
      else observer.progress(published.message, published.fraction);
    };
    const onStalled = ({ jobId }: { jobId: string }) => {
      if (jobId === id) observer.progress('its worker stopped answering; waiting for another worker');
    };
    this.events.on('progress', onProgress);
    this.events.on('stalled', onStalled);
    // Removed in `finally`: one signal serves every stage of a run.
    let onAbort = () => undefined as void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const result = await Promise.race([queued.waitUntilFinished(this.events), aborted]);
      await this.copyLogs(id, job.logFile);
      // Verifies every object against its digest on the way (a corrupted download throws).
      this.store.materialize(result.manifest, job.outDir, StatCache.inMemory(), `the manifest a worker returned for ${job.id}`);
    } catch (error) {
      if (!signal.aborted && !this.lost) await atMost(this.copyLogs(id, job.logFile), 2000);
      throw error;
    } finally {
      clearTimeout(noWorkerHint);
      signal.removeEventListener('abort', onAbort);
      this.events.off('progress', onProgress);
      this.events.off('stalled', onStalled);
      // Fails for a job a worker still holds (interrupted mid-stage): it finishes there and
      // its result is dropped and the next run recomputes it.
      if (!this.lost)
        await atMost(
          this.queue.remove(id).catch(() => undefined),
          2000,
        );
    }
  }

  /** The stage's log lines, as the worker attached them to the job, into the local log file. */
  private async copyLogs(id: string, logFile: string): Promise<void> {
    const { logs } = await this.queue.getJobLogs(id, 0, -1);
    appendFileSync(logFile, logs.join(''));
  }

  async close(): Promise<void> {
    clearTimeout(this.lostTimer);
    // Closing waits on Redis; without it, only the sockets are left to end.
    await atMost(Promise.all([this.events.close(), this.queue.close()]), 2000);
    for (const connection of this.connections) connection.disconnect();
  }
}
