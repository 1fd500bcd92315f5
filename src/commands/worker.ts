import { resolve } from 'node:path';
import { findWorkspaceRoot, workspaceAt } from '../runner/workspace.js';
import { EXIT, integerOption, stringOption, UsageError, type Command } from './shared.js';

export const workerCommand: Command = {
  name: 'worker',
  args: '',
  describe: 'run stages from the BullMQ queue in this checkout (see Scaling out in the README)',
  options: [
    { flags: '--redis <URL>', description: 'Redis, e.g. redis://127.0.0.1:6390 (required)' },
    { flags: '--concurrency <N>', description: "stages at once (default 1; a stage's threads come from its own params)" },
    { flags: '--queue <NAME>', description: 'BullMQ queue (default: ablate)' },
    { flags: '--cache <DIR>', description: 'the shared store as mounted here' },
    { flags: '--stalled-ms <MS>', description: 'a job whose worker stopped answering this long goes to another (default 30000)' },
  ],
  async run(args) {
    const redis = stringOption(args, 'redis');
    if (!redis) throw new UsageError('worker needs --redis URL (e.g. redis://127.0.0.1:6390)');
    const concurrency = integerOption(args.options.concurrency, '--concurrency', 1);
    const stalledMs = integerOption(args.options.stalledMs, '--stalled-ms', 30_000, 500);
    const queue = stringOption(args, 'queue');
    const cache = stringOption(args, 'cache');
    const { runWorker } = await import('../runner/executor/remote-worker.js');
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await runWorker(
      {
        redis,
        ...(queue ? { queue } : {}),
        concurrency,
        ...(cache ? { cacheDir: resolve(cache) } : {}),
        stalledMs,
        workspace: workspaceAt(findWorkspaceRoot(process.cwd())),
        say: (line) => console.log(line),
      },
      controller.signal,
    );
    return EXIT.ok;
  },
};
