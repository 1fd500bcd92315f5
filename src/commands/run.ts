import { displayPath } from '../runner/fsutil.js';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ParseCache } from '../runner/caching/parse-cache.js';
import { LocalProcessPool } from '../runner/executor/local-pool.js';
import type { Executor } from '../runner/executor/types.js';
import { formatDuration } from '../runner/logging/plain.js';
import { loadPipeline, type Plan } from '../runner/plan.js';
import { runPlan } from '../runner/scheduler.js';
import { pipelineStatus } from '../runner/status.js';
import { findWorkspaceRoot, workspaceAt } from '../runner/workspace.js';
import { printStatus } from './status.js';
import {
  allowOutsideOption,
  EXIT,
  flag,
  integerOption,
  listOption,
  load,
  makeReporter,
  setOption,
  stringOption,
  UsageError,
  workspaceFor,
  type Args,
  type Command,
} from './shared.js';

/** Stages queued or running at once with --executor bullmq unless -j says otherwise. */
const REMOTE_DEFAULT_SLOTS = 64;

export const runCommand: Command = {
  name: 'run',
  args: '[file] [stages...]',
  describe: 'run the pipeline, or STAGEs and what they need; only what changed executes',
  options: [
    setOption,
    { flags: '-j, --jobs <N>', description: 'stages at once (default: number of cores)' },
    { flags: '--force [STAGES]', description: 'rerun even if cached: every selected stage, or STAGE,... (repeatable)', repeatable: true },
    { flags: '--dry-run', description: 'say what would run and why; change nothing' },
    { flags: '-k, --keep-going', description: 'keep running independent stages after a failure' },
    { flags: '--all', description: 'every stage of the given pipelines (default: all in pipelines/)' },
    { flags: '--plain', description: 'line-per-event output even on a terminal' },
    { flags: '--executor <NAME>', description: 'where stages run (default: local worker processes)', choices: ['local', 'bullmq'] },
    { flags: '--redis <URL>', description: 'Redis for --executor bullmq (e.g. redis://127.0.0.1:6390)' },
    { flags: '--queue <NAME>', description: 'BullMQ queue (default: ablate)' },
    { flags: '--cache <DIR>', description: 'content-addressed store (default: .ablate/cache; also ABLATE_CACHE_DIR)' },
    allowOutsideOption,
  ],
  run: (args) => (flag(args, 'all') ? runAll(args) : runOne(args, args.positionals[0], false)),
};

/**
 * `--force` takes an optional value: `--force`, `--force=vae`, or `--force vae` when vae is not
 * a file; a bare `--force` before the pipeline file must not swallow it.
 */
export function normalizeForce(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (arg === '--force') {
      if (next !== undefined && !next.startsWith('-') && !/\.ya?ml$/.test(next)) {
        out.push(`--force=${next}`);
        i++;
      } else out.push('--force=*');
    } else out.push(arg);
  }
  return out;
}

async function runOne(args: Args, file: string | undefined, ignoreUnknownOverrides: boolean): Promise<number> {
  const cache = stringOption(args, 'cache');
  if (cache) process.env.ABLATE_CACHE_DIR = resolve(cache);
  const dryRun = flag(args, 'dryRun');
  const plan = await load(file, {
    overrides: listOption(args, 'set'),
    writeParseCache: !dryRun,
    ignoreUnknownOverrides,
    allowOutsideModules: flag(args, 'allowOutsideModules'),
  });
  const workspace = workspaceFor(plan);
  const targets = flag(args, 'all') ? [] : args.positionals.slice(1);
  const forceValues = listOption(args, 'force');
  const force: true | string[] | undefined =
    forceValues.includes('*') || forceValues.includes('true')
      ? true
      : forceValues.length
        ? forceValues.flatMap((f) => f.split(','))
        : undefined;
  const selection = { ...(targets.length ? { targets } : {}), ...(force ? { force } : {}) };
  if (dryRun) {
    printStatus(await pipelineStatus(plan, workspace, selection), 'dry-run');
    return EXIT.ok;
  }
  const executorName = stringOption(args, 'executor') ?? 'local';
  const redis = stringOption(args, 'redis');
  if (executorName === 'bullmq' && !redis) throw new UsageError('--executor bullmq needs --redis URL (e.g. redis://127.0.0.1:6390)');
  // With a queue, slots bound what is queued or running at once; the workers bound what runs.
  const jobs = integerOption(args.options.jobs, '--jobs', executorName === 'bullmq' ? REMOTE_DEFAULT_SLOTS : availableParallelism());
  const queue = stringOption(args, 'queue');
  const executor: Executor =
    executorName === 'bullmq'
      ? await (
          await import('../runner/executor/bullmq.js')
        ).BullmqExecutor.open(redis!, { slots: jobs, ...(queue ? { queue } : {}), cacheDir: workspace.cacheDir })
      : new LocalProcessPool(jobs);
  const reporter = await makeReporter(plan, flag(args, 'plain'));
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\nablate: interrupted; stopping running stages (Ctrl-C again to quit now)\n');
      controller.abort();
    } else process.exit(EXIT.interrupted);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = performance.now();
  try {
    const summary = await runPlan(plan, workspace, executor, reporter, {
      ...selection,
      keepGoing: flag(args, 'keepGoing'),
      signal: controller.signal,
    });
    await reporter.close();
    const parts = [
      `${summary.ran.length} ran`,
      `${summary.upToDate.length} up to date`,
      `${summary.restored.length} restored`,
      `${summary.failed.length} failed`,
      ...(summary.skipped.length ? [`${summary.skipped.length} skipped`] : []),
    ];
    console.log(`${plan.name}: ${parts.join(', ')} in ${formatDuration(Math.round(performance.now() - started))}`);
    if (summary.interrupted) return EXIT.interrupted;
    return summary.failed.length ? EXIT.failed : EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await executor.close();
  }
}

/**
 * `ablate run --all [FILE...]`: every stage of the given pipelines — by default every pipeline
 * in the workspace's pipelines/ folder — one pipeline after another, with the same options;
 * `--set NAME=VALUE` applies to the pipelines that define NAME. The exit code is the worst.
 */
async function runAll(args: Args): Promise<number> {
  const named = [...args.positionals];
  if (named.some((p) => !/\.ya?ml$/.test(p)))
    throw new UsageError('--all takes pipeline files, not stage names: it runs every stage of each');
  const root = findWorkspaceRoot(process.cwd());
  const dir = resolve(root, 'pipelines');
  const files = named.length
    ? named
    : readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => displayPath(resolve(dir, f)));
  if (!files.length) throw new UsageError(`no pipeline files in ${dir}`);
  const overrides = listOption(args, 'set');
  const workspace = workspaceAt(root);
  const plans: Plan[] = [];
  for (const file of files)
    plans.push(
      await loadPipeline(file, { overrides, ignoreUnknownOverrides: true, parseCache: new ParseCache(workspace.parsedDir, true) }),
    );
  for (const assignment of overrides) {
    const name = assignment.split('=')[0]!;
    if (!plans.some((plan) => Object.hasOwn(plan.params, name)))
      throw new UsageError(`--set ${assignment}: no pipeline in ${dir} has a param '${name}'`);
  }
  let worst: number = EXIT.ok;
  for (const file of files) {
    console.log(`\n== ${file}`);
    const status = await runOne(args, file, true);
    worst = Math.max(worst, status);
    if (status === EXIT.interrupted) break;
  }
  return worst;
}
