import { displayPath } from '../runner/fsutil.js';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ParseCache } from '../runner/caching/parse-cache.js';
import { LocalProcessPool } from '../runner/executor/local-pool.js';
import type { Executor } from '../runner/executor/types.js';
import { formatDuration } from '../runner/logging/plain.js';
import { loadPipeline, type Plan } from '../runner/plan.js';
import { runPlan } from '../runner/scheduler.js';
import { lockfilePathFor } from '../runner/lockfile.js';
import { lockfileMismatches, pipelineStatus } from '../runner/status.js';
import { findWorkspaceRoot, workspaceAt, type Workspace } from '../runner/workspace.js';
import { printMismatches, printStatus } from './status.js';
import {
  allowOutsideOption,
  EXIT,
  flag,
  integerOption,
  listOption,
  load,
  pipelineFiles,
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
    {
      flags: '--frozen',
      description: "never rewrite the lockfile: fail, naming the stage and why, if a run would change a committed entry (CI's npm ci)",
    },
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
  const executorName = stringOption(args, 'executor') ?? 'local';
  const redis = stringOption(args, 'redis');
  if (executorName === 'bullmq' && !redis) throw new UsageError('--executor bullmq needs --redis URL (e.g. redis://127.0.0.1:6390)');
  // With a queue, slots bound what is queued or running at once; the workers bound what runs.
  const jobs = integerOption(args.options.jobs, '--jobs', executorName === 'bullmq' ? REMOTE_DEFAULT_SLOTS : availableParallelism());
  // Made before the pipeline is read, so a first worker can start while it is parsed.
  const pool = executorName === 'local' && !dryRun ? new LocalProcessPool(jobs) : undefined;
  try {
    const plan = await load(file, {
      overrides: listOption(args, 'set'),
      writeParseCache: !dryRun,
      ignoreUnknownOverrides,
      allowOutsideModules: flag(args, 'allowOutsideModules'),
      onFullLoad: () => pool?.prewarm(),
    });
    return await runLoaded(args, plan, pool, { dryRun, redis, jobs });
  } finally {
    await pool?.close();
  }
}

async function runLoaded(
  args: Args,
  plan: Plan,
  pool: LocalProcessPool | undefined,
  { dryRun, redis, jobs }: { dryRun: boolean; redis: string | undefined; jobs: number },
): Promise<number> {
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
  const frozen = flag(args, 'frozen');
  if (frozen && !(await lockfileHolds(plan, workspace, targets))) return EXIT.failed;
  const queue = stringOption(args, 'queue');
  const executor: Executor =
    pool ??
    (await (
      await import('../runner/executor/bullmq.js')
    ).BullmqExecutor.open(redis!, { slots: jobs, ...(queue ? { queue } : {}), cacheDir: workspace.cacheDir }));
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
      frozen,
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
    // The local pool is runOne's: it outlives a failed load too.
    if (executor !== pool) await executor.close();
  }
}

/**
 * `run --frozen`, before anything runs: the committed lockfile must already match the pipeline
 * and code (as `status --check` says), or the run would rewrite it. What only running shows,
 * outputs that differ, the scheduler checks stage by stage.
 */
async function lockfileHolds(plan: Plan, workspace: Workspace, targets: readonly string[]): Promise<boolean> {
  const lockfile = lockfilePathFor(plan.file);
  if (!existsSync(lockfile)) {
    console.log(
      `${displayPath(plan.file)}: --frozen needs ${displayPath(lockfile)}, and there is none; nothing was run (run without --frozen and commit the lockfile)`,
    );
    return false;
  }
  const mismatches = await lockfileMismatches(plan, workspace, targets.length ? { targets } : {});
  if (!mismatches.length) return true;
  printMismatches(plan, mismatches);
  console.log(`--frozen: ${displayPath(lockfile)} would change; nothing was run (run without --frozen to update it, and commit it)`);
  return false;
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
  const files = pipelineFiles(named);
  const root = findWorkspaceRoot(process.cwd());
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
      throw new UsageError(`--set ${assignment}: no pipeline of ${files.join(', ')} has a param '${name}'`);
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
