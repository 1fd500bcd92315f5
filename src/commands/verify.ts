import { displayPath } from '../runner/fsutil.js';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { CacheStore } from '../runner/caching/store.js';
import { LocalProcessPool } from '../runner/executor/local-pool.js';
import { lockfilePathFor } from '../runner/lockfile.js';
import { findLockfiles, verifyLockfiles } from '../runner/maintenance.js';
import { findWorkspaceRoot, workspaceAt } from '../runner/workspace.js';
import {
  allowOutsideOption,
  EXIT,
  flag,
  integerOption,
  load,
  makeReporter,
  UsageError,
  workspaceFor,
  type Args,
  type Command,
} from './shared.js';

export const verifyCommand: Command = {
  name: 'verify',
  args: '[files...]',
  describe:
    'check artifacts, and their copies in the cache, against the lockfiles (default: every lockfile); --recompute FILE [STAGE...] executes stages again and compares',
  options: [
    {
      flags: '--recompute',
      description: 'execute the stages again in scratch space (cache, artifacts and lockfile untouched) and compare with the lockfile',
    },
    {
      flags: '--rtol <X>',
      description: "with --recompute: the metrics' relative tolerance where this machine's numeric class differs (default 0.01)",
    },
    { flags: '-j, --jobs <N>', description: 'with --recompute: stages at once (default: number of cores)' },
    allowOutsideOption,
  ],
  run: (args) => (flag(args, 'recompute') ? recompute(args) : verify(args.positionals)),
};

async function verify(files: readonly string[]): Promise<number> {
  const root = findWorkspaceRoot(files[0] ? dirname(resolve(files[0])) : process.cwd());
  const lockfiles = files.length ? files.map((f) => resolve(f.replace(/\.ya?ml$/, '.lock.json'))) : findLockfiles(root);
  const absent = files.filter((f, i) => !existsSync(f) && !existsSync(lockfiles[i]!));
  if (absent.length) throw new UsageError(`no such pipeline or lockfile: ${absent.join(', ')}`);
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
      if (p.problem === 'corrupt-object')
        console.error(
          `${p.lockfile}: ${p.stage}: cache object ${p.file} does not match its digest; it was removed (the next run that needs it recomputes it)`,
        );
      else if (p.problem === 'unsafe')
        console.error(`${p.lockfile}: ${p.stage}: the lockfile names '${p.file}', outside the workspace; not read`);
      else console.error(`${p.lockfile}: ${p.stage}: ${p.file} ${p.problem}${p.cached ? '' : ' (not in the cache)'}`);
    }
  }
  const where = lockfiles.map((l) => displayPath(l)).join(', ');
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
    console.error(
      `verify: ${artifacts.length} of ${count} artifact files do not match (${where})${artifacts.length ? `; ${remedy}` : ''}${objects ? `; ${objects} cache objects or lockfile paths were bad` : ''}`,
    );
    return EXIT.failed;
  }
  console.log(`verify: ${count} files of ${stages} stages match their lockfile digests, and so do their copies in the cache (${where})`);
  return EXIT.ok;
}

/**
 * `ablate verify --recompute [FILE] [STAGE...]`: executes the stages again in scratch space and
 * compares with the lockfile; nothing in the workspace changes.
 */
async function recompute(args: Args): Promise<number> {
  const rtol = args.options.rtol === undefined ? 1e-2 : Number(args.options.rtol);
  if (!(rtol >= 0)) throw new UsageError(`--rtol expects a number ≥ 0, got '${String(args.options.rtol)}'`);
  const [file, ...targets] = args.positionals;
  if (!file) throw new UsageError('verify --recompute needs a pipeline FILE');
  const plan = await load(file, { allowOutsideModules: flag(args, 'allowOutsideModules') });
  const workspace = workspaceFor(plan);
  const { recompute, recomputePassed } = await import('../runner/recompute.js');
  const executor = new LocalProcessPool(integerOption(args.options.jobs, '--jobs', availableParallelism()));
  const reporter = await makeReporter(plan, true);
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  try {
    const results = await recompute(plan, workspace, new CacheStore(workspace.cacheDir), executor, reporter, {
      ...(targets.length ? { targets } : {}),
      rtol,
      signal: controller.signal,
    });
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
        ...(r.verdict === 'identical'
          ? []
          : r.metrics
              .filter((m) => m.relativeDifference > 0)
              .map(
                (m) =>
                  `${m.name} ${formatNumber(m.recorded)} → ${formatNumber(m.recomputed)} (${m.relativeDifference === Infinity ? 'missing' : `rel ${m.relativeDifference.toExponential(1)}`})`,
              )),
        ...(r.differingFiles.length && r.verdict !== 'identical' ? [`files differ: ${r.differingFiles.join(', ')}`] : []),
      ];
      console.log(`${label[r.verdict]!.padEnd(width)}  ${r.id}${details.length ? `: ${details.join('; ')}` : ''}`);
    }
    const passed = recomputePassed(results);
    const counts = Object.entries(label).flatMap(([verdict, words]) => {
      const n = results.filter((r) => r.verdict === verdict).length;
      return n ? [`${n} ${words}`] : [];
    });
    console.log(`\nverify --recompute: ${counts.join(', ')} (${displayPath(lockfilePathFor(plan.file))}); ${passed ? 'passed' : 'FAILED'}`);
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
