import { Listr, type ListrDefaultRenderer, type ListrSimpleRenderer, type ListrTaskWrapper } from 'listr2';
import type { Writable } from 'node:stream';
import type { Reporter, RunEvent } from './events.js';
import { formatDuration, formatMetrics } from './plain.js';

type Wrapper = ListrTaskWrapper<unknown, ListrDefaultRenderer, ListrSimpleRenderer>;

interface TaskState {
  wrapper?: Wrapper;
  title: string;
  /** The latest progress message, and above it the latest log line (an epoch's summary). */
  progress?: string;
  lastLog?: string;
  end?: { type: 'ok' } | { type: 'skip'; reason: string } | { type: 'fail'; message: string };
  finish?: (error?: Error) => void;
}

/**
 * The live terminal display: one listr2 line per stage instance with its state and, while
 * it runs, its latest log line and progress under it. Listr drives tasks itself, so each task here is a promise the
 * scheduler's events resolve; events that arrive before listr has started a task are
 * kept and applied when it does.
 */
export class ListrReporter implements Reporter {
  private readonly tasks = new Map<string, TaskState>();
  private running: Promise<unknown> = Promise.resolve();
  private readonly failures: Extract<RunEvent, { type: 'failed' }>[] = [];

  constructor(private readonly out: Writable) {}

  event(e: RunEvent): void {
    if (e.type === 'plan') return this.start(e.ids);
    const state = this.tasks.get(e.id);
    if (!state) return;
    switch (e.type) {
      case 'cached':
        state.title = `${e.id}  ${e.restored ? 'restored from cache' : 'cached'}`;
        state.end = { type: 'ok' };
        break;
      case 'waiting':
        state.title = `${e.id}  waiting for another ablate run (pid ${e.holderPid})`;
        break;
      case 'start':
        state.title = `${e.id}  running (${e.reasons.join('; ')})`;
        break;
      case 'progress':
        state.progress = e.message;
        break;
      case 'log':
        state.lastLog = e.line;
        break;
      case 'done':
        state.title = `${e.id}  done in ${formatDuration(e.durationMs)}${formatMetrics(e.metrics)}${(e.warnings ?? []).map((w) => `  ⚠ ${w}`).join('')}`;
        state.end = { type: 'ok' };
        break;
      case 'failed':
        this.failures.push(e);
        state.title = `${e.id}  failed`;
        state.end = { type: 'fail', message: `${e.id}: ${e.message.split('\n')[0]}` };
        break;
      case 'skipped':
        state.end = { type: 'skip', reason: `${e.id}  skipped: ${e.reason}` };
        break;
    }
    this.apply(state);
  }

  private start(ids: readonly string[]): void {
    for (const id of ids) this.tasks.set(id, { title: `${id}  queued` });
    const listr = new Listr<unknown, 'default', 'simple'>(
      ids.map((id) => ({
        title: `${id}  queued`,
        task: (_ctx: unknown, wrapper: Wrapper) =>
          new Promise<void>((resolve, reject) => {
            const state = this.tasks.get(id)!;
            state.wrapper = wrapper;
            state.finish = (error) => (error ? reject(error) : resolve());
            this.apply(state);
          }),
      })),
      {
        concurrent: true,
        exitOnError: false,
        collectErrors: 'minimal',
        rendererOptions: { collapseErrors: false, collapseSkips: true, showSkipMessage: true },
      },
    );
    this.running = listr.run().catch(() => undefined);
  }

  private apply(state: TaskState): void {
    const wrapper = state.wrapper;
    if (!wrapper) return;
    wrapper.title = state.title;
    const output = [state.lastLog, state.progress].filter((line) => line !== undefined);
    if (output.length) wrapper.output = output.join('\n');
    const end = state.end;
    if (!end || !state.finish) return;
    const finish = state.finish;
    state.finish = undefined;
    if (end.type === 'ok') finish();
    else if (end.type === 'skip') {
      wrapper.skip(end.reason);
      finish();
    } else finish(new Error(end.message));
  }

  async close(): Promise<void> {
    await this.running;
    for (const f of this.failures) {
      this.out.write(`\n✗ ${f.id}: ${f.message}\n`);
      if (f.logTail) this.out.write(f.logTail.replace(/^/gm, '    | ') + '\n');
      if (f.logFile) this.out.write(`    log: ${f.logFile}\n`);
    }
  }
}
