import type { Writable } from 'node:stream';
import type { Reporter, RunEvent } from './events.js';

/** Progress lines per stage are at most this frequent: a log, not an animation. */
const PROGRESS_INTERVAL_MS = 5000;

/** How long a line may wait for others to go out with it. */
const FLUSH_MS = 50;

/**
 * One line per event, each naming its stage: for CI logs and pipes, where an animated
 * display would be noise.
 */
export class PlainReporter implements Reporter {
  private width = 0;
  private readonly lastProgress = new Map<string, number>();
  private readonly pending: string[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly out: Writable) {}

  event(e: RunEvent): void {
    switch (e.type) {
      case 'plan':
        this.width = Math.min(48, Math.max(0, ...e.ids.map((id) => id.length)));
        return;
      case 'cached':
        return this.line('✓', e.id, e.restored ? 'restored from cache' : 'up to date');
      case 'waiting':
        return this.line('…', e.id, `waiting: another ablate run (pid ${e.holderPid}) is running this stage`);
      case 'start':
        return this.line('▶', e.id, `running: ${e.reasons.join('; ')}`);
      case 'progress': {
        const now = Date.now();
        if (now - (this.lastProgress.get(e.id) ?? 0) < PROGRESS_INTERVAL_MS) return;
        this.lastProgress.set(e.id, now);
        return this.line('·', e.id, e.message);
      }
      case 'log':
        return this.line('›', e.id, e.line);
      case 'done':
        this.line('✓', e.id, `done in ${formatDuration(e.durationMs)}${formatMetrics(e.metrics)}`);
        for (const warning of e.warnings ?? []) this.line('⚠', e.id, warning);
        return;
      case 'failed':
        this.line('✗', e.id, `failed: ${e.message.split('\n')[0]}`);
        if (e.logTail) this.write(e.logTail.replace(/^/gm, '    | ') + '\n');
        if (e.logFile) this.write(`    log: ${e.logFile}\n`);
        return;
      case 'skipped':
        return this.line('-', e.id, `skipped: ${e.reason}`);
    }
  }

  private line(mark: string, id: string, text: string): void {
    this.write(`${mark} ${id.padEnd(this.width)}  ${text}\n`);
  }

  /**
   * Lines go out together, at most every FLUSH_MS: a no-op run of a big pipeline reports a
   * thousand stages at once, and a cold run of a thousand small stages wrote two thousand
   * times, each write waking the reader of the pipe. close() writes what is left at once;
   * a run that ends without it (an error) still has its lines written by the timer.
   */
  private write(text: string): void {
    this.pending.push(text);
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.length) this.out.write(this.pending.join(''));
    this.pending.length = 0;
  }

  async close(): Promise<void> {
    this.flush();
  }
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A few headline numbers, for the done line. */
export function formatMetrics(metrics: Readonly<Record<string, number>> | undefined, max = 4): string {
  if (!metrics) return '';
  const entries = Object.entries(metrics).slice(0, max);
  return entries.length ? `  ${entries.map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toPrecision(4)}`).join(' ')}` : '';
}
