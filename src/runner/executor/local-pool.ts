import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Executor, FromWorker, JobObserver, StageJob, ToWorker } from './types.js';

const fromSource = import.meta.url.endsWith('.ts');
const workerEntry = fileURLToPath(new URL(fromSource ? './worker-main.ts' : './worker-main.js', import.meta.url));

/** How long a stage gets to stop after an abort before its process is killed. */
const ABORT_GRACE_MS = 3000;

/**
 * Runs each job in a worker process (reused across jobs), so a heavy stage never blocks
 * the scheduler or the progress display, and a crashing stage can't take the run down.
 */
export class LocalProcessPool implements Executor {
  private readonly idle: ChildProcess[] = [];
  private readonly all = new Set<ChildProcess>();
  /** Where each worker's stdout/stderr goes: the log of the job it runs. */
  private readonly logFileOf = new Map<ChildProcess, string>();
  /** Workers that have never been given a job: nothing of a stage to stop when the run ends. */
  private readonly unused = new Set<ChildProcess>();

  constructor(readonly slots: number) {}

  /**
   * Starts one worker now, before any job exists. A worker takes ~0.15 s to start (Node's own
   * start, mostly); a run that will have work calls this before it parses the pipeline, so
   * that start overlaps the parse on another core instead of delaying the first stage.
   */
  prewarm(): void {
    if (this.all.size < this.slots) this.idle.push(this.spawn());
  }

  async run(job: StageJob, observer: JobObserver, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const worker = this.idle.pop() ?? this.spawn();
    this.unused.delete(worker);
    this.logFileOf.set(worker, job.logFile);
    return new Promise<void>((resolve, reject) => {
      let killTimer: NodeJS.Timeout | undefined;
      const finish = (error?: Error) => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        signal.removeEventListener('abort', onAbort);
        if (killTimer) clearTimeout(killTimer);
        if (worker.connected && !signal.aborted) this.idle.push(worker);
        else worker.kill('SIGKILL');
        if (error) reject(error);
        else resolve();
      };
      const onMessage = (message: FromWorker) => {
        if (message.type === 'progress') observer.progress(message.message, message.fraction);
        else if (message.type === 'log') observer.log(message.line);
        else if (message.type === 'done') finish();
        else finish(new Error(message.message));
      };
      const onExit = (code: number | null, sig: NodeJS.Signals | null) => {
        this.all.delete(worker);
        finish(new Error(`worker process died (${sig ? `signal ${sig}` : `exit code ${code}`}) while running ${job.id}`));
      };
      const onAbort = () => {
        worker.send({ type: 'abort' } satisfies ToWorker);
        killTimer = setTimeout(() => worker.kill('SIGKILL'), ABORT_GRACE_MS);
      };
      worker.on('message', onMessage);
      worker.on('exit', onExit);
      signal.addEventListener('abort', onAbort, { once: true });
      worker.send({ type: 'run', job } satisfies ToWorker);
    });
  }

  private spawn(): ChildProcess {
    const worker = fork(workerEntry, [], {
      execArgv: fromSource ? ['--import', 'tsx'] : [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.all.add(worker);
    this.unused.add(worker);
    const toLog = (chunk: Buffer) => {
      const file = this.logFileOf.get(worker);
      if (file) appendFileSync(file, chunk);
    };
    worker.stdout?.on('data', toLog);
    worker.stderr?.on('data', toLog);
    worker.on('exit', () => {
      this.all.delete(worker);
      this.unused.delete(worker);
      this.logFileOf.delete(worker);
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return worker;
  }

  async close(): Promise<void> {
    // One still starting would otherwise hold the exit until it notices the disconnect.
    for (const w of this.unused) w.kill('SIGKILL');
    const exits = [...this.all].map((w) => new Promise<void>((r) => (w.exitCode !== null ? r() : w.once('exit', () => r()))));
    for (const w of this.all) w.disconnect?.();
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const w of this.all) w.kill('SIGKILL');
  }
}
