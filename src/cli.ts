import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ParseCache } from './runner/caching/parse-cache.js';
import { CacheStore } from './runner/caching/store.js';
import { formatDiagnostic, PipelineError } from './runner/diagnostics.js';
import { renderDot, renderMermaid, renderTextTree } from './runner/dag-render.js';
import { LocalProcessPool } from './runner/executor/local-pool.js';
import type { Executor } from './runner/executor/types.js';
import type { Reporter } from './runner/logging/events.js';
import { formatDuration, PlainReporter } from './runner/logging/plain.js';
import { collectGarbage, findLockfiles, verifyLockfiles, WorkspaceBusyError } from './runner/maintenance.js';
import { lockfilePathFor } from './runner/lockfile.js';
import { loadPipeline, type Plan } from './runner/plan.js';
import { runPlan, UnknownTargetError } from './runner/scheduler.js';
import { pipelineStatus, type StageStatus } from './runner/status.js';
import { findWorkspaceRoot, workspaceAt } from './runner/workspace.js';

/** Exit codes, as documented in the README. */
export const EXIT = { ok: 0, failed: 1, invalid: 2, interrupted: 130 } as const;

const USAGE = `ablate — YAML pipelines of ML stages, run incrementally with a content-addressed cache

Usage:
  ablate run FILE [STAGE...]      run the pipeline (or STAGEs and what they need)
      --set NAME=VALUE            override a pipeline param (repeatable)
      -j, --jobs N                stages run at once (default: number of cores)
      --force[=STAGE,...]         rerun even if cached (all selected stages, or the named ones)
      --dry-run                   say what would run and why; change nothing
      -k, --keep-going            keep running independent stages after a failure
      --all [FILE...]             every stage of these pipelines (default: all in pipelines/)
      --plain                     line-per-event output even on a terminal
      --executor local|bullmq     where stages run (default: local worker processes)
      --redis URL                 Redis for --executor bullmq (e.g. redis://127.0.0.1:6390)
      --queue NAME                BullMQ queue (default: ablate)
      --cache DIR                 content-addressed store (default: .ablate/cache; also ABLATE_CACHE_DIR)
      --allow-outside-modules     import stage modules from outside the workspace (also status, validate)
  ablate status FILE [STAGE...]   which stages are stale and why   [--json] [--set ...]
  ablate dag FILE                 the stage graph   [--format text|mermaid|dot] [--set ...]
  ablate validate FILE...         check pipeline files; print every error at file:line:col
  ablate verify [FILE...]         check artifacts and their cache copies against the lockfiles (default: all)
  ablate verify --recompute FILE [STAGE...]   run the stages again in scratch space and compare
      --rtol X                    tolerance for metrics where this machine's numeric class differs (default 0.01)
  ablate gc [--dry-run]           drop cache entries no lockfile references
  ablate worker --redis URL       run stages from the BullMQ queue in this checkout
      --concurrency N (default 1; a stage's threads come from its own params)
      --queue NAME  --cache DIR  --stalled-ms MS (default 30000)
  ablate doctor                   the TensorFlow.js route, its kernels and a 3-second training probe
      --backend auto|native|wasm|cpu   --threads N (default: all cores)   --seconds S

Exit codes: 0 ok, 1 a stage failed or verify found a mismatch, 2 invalid pipeline or usage, 130 interrupted.`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest);
      case 'status':
        return await statusCommand(rest);
      case 'dag':
        return await dagCommand(rest);
      case 'validate':
        return await validateCommand(rest);
      case 'verify':
        return await verifyCommand(rest);
      case 'gc':
        return gcCommand(rest);
      case 'doctor':
        return await doctorCommand(rest);
      case 'worker':
        return await workerCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command === undefined ? EXIT.invalid : EXIT.ok;
      default:
        console.error(`ablate: unknown command '${command}'\n\n${USAGE}`);
        return EXIT.invalid;
    }
  } catch (error) {
    if (error instanceof PipelineError) {
      printDiagnostics(error);
      return EXIT.invalid;
    }
    if (error instanceof UsageError || error instanceof UnknownTargetError || (error instanceof Error && error.name === 'LockfileError')) {
      console.error(`ablate: ${error.message}`);
      return EXIT.invalid;
    }
    if (error instanceof WorkspaceBusyError) {
      console.error(`ablate ${command}: ${error.message}`);
      return EXIT.failed;
    }
    if (error instanceof Error && (error.name === 'UnsafePathError' || error.name === 'StaleBundleError')) {
      console.error(`ablate ${command}: ${error.message}`);
      return EXIT.failed;
    }
    if (error instanceof Error && error.name === 'RedisUnreachableError') {
      console.error(`ablate: ${error.message}; nothing was run`);
      return EXIT.failed;
    }
    // Anything else is ablate's own fault: one line, and the stack on request.
    if (process.env.ABLATE_DEBUG === '1') throw error;
    console.error(`ablate ${command ?? ''}: ${error instanceof Error ? error.message : String(error)} (ABLATE_DEBUG=1 shows where)`);
    return EXIT.failed;
  }
}

class UsageError extends Error {}

function printDiagnostics(error: PipelineError): void {
  const n = error.diagnostics.length;
  for (const d of error.diagnostics) console.error(formatDiagnostic(d, error.sourceText));
  console.error(`\n${n} error${n === 1 ? '' : 's'}; nothing was run.`);
}

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** An integer option's value, `fallback` when it is absent; a usage error below `min`. */
function integerOption(value: unknown, flag: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} expects an integer ≥ ${min}, got '${String(value)}'`);
  return n;
}

/** `--force` takes an optional value: `--force`, `--force=vae`, or `--force vae` when vae is not a file. */
function normalizeForce(args: readonly string[]): string[] {
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

/** Loads a pipeline; `writeParseCache` only for commands that may write into the workspace. */
async function load(file: string | undefined, overrides: readonly string[] = [], writeParseCache = false, ignoreUnknownOverrides = false, allowOutsideModules = false): Promise<Plan> {
  if (!file) throw new UsageError('missing pipeline FILE');
  const workspace = workspaceAt(findWorkspaceRoot(dirname(resolve(file))));
  return loadPipeline(file, { overrides, ignoreUnknownOverrides, allowOutsideModules, parseCache: new ParseCache(workspace.parsedDir, writeParseCache) });
}

function workspaceFor(plan: Plan) {
  return workspaceAt(findWorkspaceRoot(dirname(plan.file)));
}

const RUN_OPTIONS = {
  set: { type: 'string', multiple: true },
  jobs: { type: 'string', short: 'j' },
  force: { type: 'string', multiple: true },
  'dry-run': { type: 'boolean' },
  'keep-going': { type: 'boolean', short: 'k' },
  plain: { type: 'boolean' },
  all: { type: 'boolean' },
  executor: { type: 'string' },
  redis: { type: 'string' },
  queue: { type: 'string' },
  cache: { type: 'string' },
  'allow-outside-modules': { type: 'boolean' },
} as const;

async function runCommand(args: readonly string[], ignoreUnknownOverrides = false): Promise<number> {
  const { values, positionals } = parse(normalizeForce(args), RUN_OPTIONS);
  if (values.all) return runAll(args.filter((a) => a !== '--all'), positionals, (values.set as string[] | undefined) ?? []);
  const [file, ...targets] = positionals;
  if (values.cache) process.env.ABLATE_CACHE_DIR = resolve(String(values.cache));
  const plan = await load(file, values.set as string[] | undefined, !values['dry-run'], ignoreUnknownOverrides, Boolean(values['allow-outside-modules']));
  const workspace = workspaceFor(plan);
  const forceValues = (values.force as string[] | undefined) ?? [];
  const force: true | string[] | undefined = forceValues.includes('*') ? true : forceValues.length ? forceValues.flatMap((f) => f.split(',')) : undefined;
  const selection = { ...(targets.length ? { targets } : {}), ...(force ? { force } : {}) };
  if (values['dry-run']) {
    printStatus(await pipelineStatus(plan, workspace, selection), 'dry-run');
    return EXIT.ok;
  }
  const executorName = String(values.executor ?? 'local');
  if (executorName !== 'local' && executorName !== 'bullmq') throw new UsageError(`--executor expects local or bullmq, got '${executorName}'`);
  if (executorName === 'bullmq' && !values.redis) throw new UsageError('--executor bullmq needs --redis URL (e.g. redis://127.0.0.1:6390)');
  // With a queue, slots bound what is queued or running at once; the workers bound what runs.
  const jobs = integerOption(values.jobs, '--jobs', executorName === 'bullmq' ? REMOTE_DEFAULT_SLOTS : availableParallelism());

  const executor: Executor =
    executorName === 'bullmq'
      ? await (await import('./runner/executor/bullmq.js')).BullmqExecutor.open(String(values.redis), { slots: jobs, ...(values.queue ? { queue: String(values.queue) } : {}), cacheDir: workspace.cacheDir })
      : new LocalProcessPool(jobs);
  const reporter = await makeReporter(plan, Boolean(values.plain));
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
    const summary = await runPlan(plan, workspace, executor, reporter, { ...selection, keepGoing: Boolean(values['keep-going']), signal: controller.signal });
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
async function runAll(args: readonly string[], positionals: readonly string[], overrides: readonly string[]): Promise<number> {
  const root = findWorkspaceRoot(process.cwd());
  const dir = resolve(root, 'pipelines');
  const files = positionals.length ? [...positionals] : (await import('node:fs')).readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => relative(process.cwd(), resolve(dir, f)));
  if (positionals.some((p) => !/\.ya?ml$/.test(p))) throw new UsageError('--all takes pipeline files, not stage names: it runs every stage of each');
  if (!files.length) throw new UsageError(`no pipeline files in ${dir}`);
  const workspace = workspaceAt(root);
  const plans: Plan[] = [];
  for (const file of files) plans.push(await loadPipeline(file, { overrides, ignoreUnknownOverrides: true, parseCache: new ParseCache(workspace.parsedDir, true) }));
  for (const assignment of overrides) {
    const name = assignment.split('=')[0]!;
    if (!plans.some((plan) => Object.hasOwn(plan.params, name))) throw new UsageError(`--set ${assignment}: no pipeline in ${dir} has a param '${name}'`);
  }
  let worst: number = EXIT.ok;
  for (const file of files) {
    console.log(`\n== ${file}`);
    const status = await runCommand([file, ...args.filter((a) => !positionals.includes(a))], true);
    worst = Math.max(worst, status);
    if (status === EXIT.interrupted) break;
  }
  return worst;
}

/** Most stages a live display shows; bigger runs get the line-per-event log, which scales. */
const LIVE_DISPLAY_MAX_STAGES = 100;

async function makeReporter(plan: Plan, plain: boolean): Promise<Reporter> {
  const live = !plain && process.stdout.isTTY && !process.env.CI && plan.instances.length <= LIVE_DISPLAY_MAX_STAGES;
  if (!live) return new PlainReporter(process.stdout);
  const { ListrReporter } = await import('./runner/logging/listr.js');
  return new ListrReporter(process.stdout);
}

async function statusCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { set: { type: 'string', multiple: true }, json: { type: 'boolean' }, 'allow-outside-modules': { type: 'boolean' } });
  const [file, ...targets] = positionals;
  const plan = await load(file, values.set as string[] | undefined, false, false, Boolean(values['allow-outside-modules']));
  const statuses = await pipelineStatus(plan, workspaceFor(plan), targets.length ? { targets } : {});
  if (values.json) console.log(JSON.stringify(statuses, null, 2));
  else printStatus(statuses, 'status');
  return EXIT.ok;
}

function printStatus(statuses: readonly StageStatus[], mode: 'status' | 'dry-run'): void {
  const width = Math.min(48, Math.max(0, ...statuses.map((s) => s.id.length)));
  const label = { 'up-to-date': 'up to date', restore: mode === 'dry-run' ? 'would restore' : 'restore', stale: mode === 'dry-run' ? 'would run' : 'stale' };
  const lines = statuses.map((s) => `${label[s.state].padEnd(13)} ${s.id.padEnd(width)}${s.explanation.length ? `  ${s.explanation.join('; ')}` : ''}`);
  const stale = statuses.filter((s) => s.state === 'stale').length;
  const restore = statuses.filter((s) => s.state === 'restore').length;
  // One write: a line at a time cost more than computing the status of a big pipeline.
  process.stdout.write(`${lines.join('\n')}\n\n${stale} stale, ${restore} to restore, ${statuses.length - stale - restore} up to date\n`);
}

async function dagCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { set: { type: 'string', multiple: true }, format: { type: 'string' } });
  const plan = await load(positionals[0], values.set as string[] | undefined);
  const format = (values.format as string | undefined) ?? 'text';
  const renderers: Record<string, typeof renderTextTree> = { text: renderTextTree, mermaid: renderMermaid, dot: renderDot };
  const render = renderers[format];
  if (!render) throw new UsageError(`--format expects text, mermaid or dot, got '${format}'`);
  process.stdout.write(render(plan.graph));
  return EXIT.ok;
}

async function validateCommand(args: readonly string[]): Promise<number> {
  const { values, positionals: files } = parse(args, { 'allow-outside-modules': { type: 'boolean' } });
  if (!files.length) throw new UsageError('validate: give at least one pipeline FILE');
  let status: number = EXIT.ok;
  for (const file of files) {
    try {
      const plan = await loadPipeline(file, { allowOutsideModules: Boolean(values['allow-outside-modules']) });
      console.log(`${file}: ok (${plan.stageNames.length} stages, ${plan.instances.length} instances)`);
      // Importing a module runs its top level: say which user code that was.
      const modules = [...new Set(plan.instances.filter((i) => i.ref.type === 'module').map((i) => i.ref.sourceFile))];
      for (const module of modules) console.log(`  imported stage module ${relative(process.cwd(), module)}`);
    } catch (error) {
      if (!(error instanceof PipelineError)) throw error;
      for (const d of error.diagnostics) console.error(formatDiagnostic(d, error.sourceText));
      status = EXIT.invalid;
    }
  }
  return status;
}

async function verifyCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { recompute: { type: 'boolean' }, rtol: { type: 'string' }, jobs: { type: 'string', short: 'j' }, 'allow-outside-modules': { type: 'boolean' } });
  if (values.recompute) return recomputeCommand(positionals, values);
  const files = positionals;
  const root = findWorkspaceRoot(files[0] ? dirname(resolve(files[0])) : process.cwd());
  const lockfiles = files.length ? files.map((f) => resolve(f.replace(/\.ya?ml$/, '.lock.json'))) : findLockfiles(root);
  const absent = files.filter((f, i) => !existsSync(f) && !existsSync(lockfiles[i]!));
  if (absent.length) throw new UsageError(`verify: no such pipeline or lockfile: ${absent.join(', ')}`);
  if (!lockfiles.length) {
    console.error('ablate verify: no lockfiles found (run a pipeline first)');
    return EXIT.failed;
  }
  const verdicts = verifyLockfiles(root, lockfiles, new CacheStore(workspaceAt(root).cacheDir));
  const count = verdicts.reduce((n, v) => n + v.files, 0);
  const stages = verdicts.reduce((n, v) => n + v.stages, 0);
  const problems = verdicts.flatMap((v) => v.problems);
  for (const v of verdicts) {
    // A pipeline never run in this workspace (a fresh clone) is one line, not one per file.
    if (v.problems.length === v.files && v.problems.every((p) => p.problem === 'missing' && !p.cached)) {
      console.error(`${v.lockfile}: none of its ${v.files} artifact files are here, nor in the cache (not run in this workspace)`);
      continue;
    }
    for (const p of v.problems) {
      if (p.problem === 'corrupt-object') console.error(`${p.lockfile}: ${p.stage}: cache object ${p.file} does not match its digest; it was removed (the next run that needs it recomputes it)`);
      else if (p.problem === 'unsafe') console.error(`${p.lockfile}: ${p.stage}: the lockfile names '${p.file}', outside the workspace; not read`);
      else console.error(`${p.lockfile}: ${p.stage}: ${p.file} ${p.problem}${p.cached ? '' : ' (not in the cache)'}`);
    }
  }
  const where = lockfiles.map((l) => relative(process.cwd(), l)).join(', ');
  if (problems.length) {
    const artifacts = problems.filter((p) => p.problem === 'missing' || p.problem === 'modified');
    const cached = artifacts.filter((p) => p.cached).length;
    const remedy =
      cached === artifacts.length
        ? '`ablate run` restores them from the cache'
        : cached
          ? `\`ablate run\` restores the ${cached} held in the cache and runs the stages of the other ${artifacts.length - cached}`
          : '`ablate run` runs their stages again';
    const objects = problems.length - artifacts.length;
    console.error(`verify: ${artifacts.length} of ${count} artifact files do not match (${where})${artifacts.length ? `; ${remedy}` : ''}${objects ? `; ${objects} cache objects or lockfile paths were bad` : ''}`);
    return EXIT.failed;
  }
  console.log(`verify: ${count} files of ${stages} stages match their lockfile digests, and so do their copies in the cache (${where})`);
  return EXIT.ok;
}

/**
 * `ablate verify --recompute [FILE] [STAGE...]`: executes the stages again in scratch space and
 * compares with the lockfile; nothing in the workspace changes.
 */
async function recomputeCommand(positionals: readonly string[], values: { rtol?: string | boolean; jobs?: string | boolean; 'allow-outside-modules'?: string | boolean }): Promise<number> {
  const rtol = values.rtol === undefined ? 1e-2 : Number(values.rtol);
  if (!(rtol >= 0)) throw new UsageError(`--rtol expects a number ≥ 0, got '${String(values.rtol)}'`);
  const [file, ...targets] = positionals;
  const plan = await load(file, [], false, false, Boolean(values['allow-outside-modules']));
  const workspace = workspaceFor(plan);
  const { recompute, recomputePassed } = await import('./runner/recompute.js');
  const executor = new LocalProcessPool(integerOption(values.jobs, '--jobs', availableParallelism()));
  const reporter = await makeReporter(plan, true);
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  try {
    const results = await recompute(plan, workspace, new CacheStore(workspace.cacheDir), executor, reporter, { ...(targets.length ? { targets } : {}), rtol, signal: controller.signal });
    await reporter.close();
    const label: Record<string, string> = {
      identical: 'identical bytes',
      'within-tolerance': `within rtol ${rtol}`,
      'outside-tolerance': `OUTSIDE rtol ${rtol}`,
      differs: 'DIFFERS (same fingerprint)',
      stale: 'stale lockfile',
      'not-in-lockfile': 'not in lockfile',
      failed: 'FAILED',
    };
    const width = Math.max(...Object.values(label).map((l) => l.length));
    for (const r of results) {
      const details = [
        ...r.reasons,
        ...(r.verdict === 'identical' ? [] : r.metrics.filter((m) => m.relativeDifference > 0).map((m) => `${m.name} ${formatNumber(m.recorded)} → ${formatNumber(m.recomputed)} (${m.relativeDifference === Infinity ? 'missing' : `rel ${m.relativeDifference.toExponential(1)}`})`)),
        ...(r.differingFiles.length && r.verdict !== 'identical' ? [`files differ: ${r.differingFiles.join(', ')}`] : []),
      ];
      console.log(`${label[r.verdict]!.padEnd(width)}  ${r.id}${details.length ? `: ${details.join('; ')}` : ''}`);
    }
    const passed = recomputePassed(results);
    const counts = Object.entries(label).flatMap(([verdict, words]) => {
      const n = results.filter((r) => r.verdict === verdict).length;
      return n ? [`${n} ${words}`] : [];
    });
    console.log(`\nverify --recompute: ${counts.join(', ')} (${relative(process.cwd(), lockfilePathFor(plan.file))}); ${passed ? 'passed' : 'FAILED'}`);
    return passed ? EXIT.ok : EXIT.failed;
  } finally {
    process.off('SIGINT', onSignal);
    await executor.close();
  }
}

/** A metric for the eye: 4 significant digits. */
function formatNumber(value: number | undefined): string {
  return value === undefined ? '(none)' : Number(value.toPrecision(4)).toString();
}

/** Stages queued or running at once with --executor bullmq unless -j says otherwise. */
const REMOTE_DEFAULT_SLOTS = 64;

async function workerCommand(args: readonly string[]): Promise<number> {
  const { values } = parse(args, { redis: { type: 'string' }, queue: { type: 'string' }, concurrency: { type: 'string' }, cache: { type: 'string' }, 'stalled-ms': { type: 'string' } });
  if (!values.redis) throw new UsageError('worker needs --redis URL (e.g. redis://127.0.0.1:6390)');
  const concurrency = integerOption(values.concurrency, '--concurrency', 1);
  const stalledMs = integerOption(values['stalled-ms'], '--stalled-ms', 30_000, 500);
  const { runWorker } = await import('./runner/executor/remote-worker.js');
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await runWorker(
    {
      redis: String(values.redis),
      ...(values.queue ? { queue: String(values.queue) } : {}),
      concurrency,
      ...(values.cache ? { cacheDir: resolve(String(values.cache)) } : {}),
      stalledMs,
      workspace: workspaceAt(findWorkspaceRoot(process.cwd())),
      say: (line) => console.log(line),
    },
    controller.signal,
  );
  return EXIT.ok;
}

async function doctorCommand(args: readonly string[]): Promise<number> {
  const { values } = parse(args, { backend: { type: 'string' }, threads: { type: 'string' }, seconds: { type: 'string' } });
  const backend = String(values.backend ?? 'auto');
  if (!['auto', 'tensorflow', 'native', 'wasm', 'cpu'].includes(backend)) throw new UsageError(`--backend expects auto, tensorflow, native, wasm or cpu, got '${backend}'`);
  const threads = integerOption(values.threads, '--threads', availableParallelism());
  const seconds = values.seconds === undefined ? 3 : Number(values.seconds);
  if (!(seconds > 0)) throw new UsageError(`--seconds expects a positive number, got '${String(values.seconds)}'`);
  const { doctor } = await import('./ml/doctor.js');
  await doctor({ backend: backend as 'auto', threads, seconds }, (line) => console.log(line));
  return EXIT.ok;
}

function gcCommand(args: readonly string[]): number {
  const { values } = parse(args, { 'dry-run': { type: 'boolean' } });
  const root = findWorkspaceRoot(process.cwd());
  const lockfiles = findLockfiles(root);
  const result = collectGarbage(workspaceAt(root), lockfiles, { dryRun: Boolean(values['dry-run']) });
  const verb = values['dry-run'] ? 'would remove' : 'removed';
  console.log(
    `gc: kept ${result.keptRuns} cache entries referenced by ${lockfiles.length} lockfiles; ${verb} ${result.removedRuns} entries, ${result.removedObjects} objects (${(result.freedBytes / 1e6).toFixed(1)} MB), ${result.removedTemp} temp dirs, ${result.removedParsed} parsed pipeline texts`,
  );
  return EXIT.ok;
}
