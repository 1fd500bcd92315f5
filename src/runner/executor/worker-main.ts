/**
 * Entry point of a worker process in the local pool: runs the jobs its parent sends, one
 * at a time, and exits when the parent goes away (even if the parent was killed -9).
 */
import { appendFileSync } from 'node:fs';
import { runStageJob } from './run-stage.js';
import type { FromWorker, ToWorker } from './types.js';

let current: AbortController | undefined;

const send = (message: FromWorker) => process.send?.(message);

process.on('message', (message: ToWorker) => {
  if (message.type === 'abort') {
    current?.abort();
    return;
  }
  current = new AbortController();
  const { signal } = current;
  const { job } = message;
  runStageJob(
    job,
    {
      progress: (text, fraction) => send({ type: 'progress', message: text, ...(fraction === undefined ? {} : { fraction }) }),
      log: (line) => send({ type: 'log', line }),
    },
    signal,
  ).then(
    () => send({ type: 'done' }),
    (error: unknown) => {
      // The stack is for the log (unless the stage said all there is to say); the message is what the user sees.
      if (error instanceof Error && error.name !== 'StageError' && error.stack) appendFileSync(job.logFile, `${error.stack}\n`);
      send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    },
  );
});

// The parent is gone (it exited, or was killed -9): stop the stage first, so what it started
// (a shell stage's process group) dies with it instead of writing into .ablate/tmp later.
process.on('disconnect', () => {
  current?.abort();
  process.exit(0);
});
// The parent handles Ctrl-C (it aborts our job); the terminal sends SIGINT to us too.
process.on('SIGINT', () => undefined);
