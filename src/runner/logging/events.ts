/** What happens to stages during a run, as the scheduler reports it to a display. */
export type RunEvent =
  | { readonly type: 'plan'; readonly ids: readonly string[] }
  /** Up to date: outputs already materialized (`restored: false`) or copied back from the cache. */
  | { readonly type: 'cached'; readonly id: string; readonly restored: boolean }
  | { readonly type: 'waiting'; readonly id: string; readonly holderPid: number }
  | { readonly type: 'start'; readonly id: string; readonly reasons: readonly string[] }
  | { readonly type: 'progress'; readonly id: string; readonly message: string; readonly fraction?: number }
  /** A line the stage logged (JobObserver.log): shown as it comes, never throttled like progress. */
  | { readonly type: 'log'; readonly id: string; readonly line: string }
  | {
      readonly type: 'done';
      readonly id: string;
      readonly durationMs: number;
      readonly metrics?: Readonly<Record<string, number>>;
      readonly warnings?: readonly string[];
    }
  | { readonly type: 'failed'; readonly id: string; readonly message: string; readonly logFile: string; readonly logTail: string }
  | { readonly type: 'skipped'; readonly id: string; readonly reason: string };

export interface Reporter {
  event(event: RunEvent): void;
  /** Called once at the end; flushes and restores the terminal. */
  close(): Promise<void>;
}
