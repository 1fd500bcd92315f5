import { displayPath } from '../runner/fsutil.js';
import type { Plan } from '../runner/plan.js';
import { lockfileMismatches, pipelineStatus, type LockfileMismatch, type StageStatus } from '../runner/status.js';
import { existsSync } from 'node:fs';
import { lockfilePathFor } from '../runner/lockfile.js';
import {
  allowOutsideOption,
  EXIT,
  flag,
  listOption,
  load,
  pipelineFiles,
  setOption,
  UsageError,
  workspaceFor,
  type Args,
  type Command,
} from './shared.js';

export const statusCommand: Command = {
  name: 'status',
  args: '[files-and-stages...]',
  describe: 'which stages are stale, and why (what `run` would do)',
  options: [
    setOption,
    { flags: '--json', description: 'every stage as JSON' },
    {
      flags: '--check',
      description:
        'CI gate over FILEs (default: every pipeline in pipelines/ that has a lockfile): exit 1, naming each stage and why, unless the committed lockfiles match the pipelines and code (no artifacts or cache needed)',
    },
    allowOutsideOption,
  ],
  async run(args) {
    if (flag(args, 'check')) return checkLockfiles(args);
    const [file, ...targets] = args.positionals;
    const plan = await load(file, { overrides: listOption(args, 'set'), allowOutsideModules: flag(args, 'allowOutsideModules') });
    const statuses = await pipelineStatus(plan, workspaceFor(plan), targets.length ? { targets } : {});
    if (flag(args, 'json')) console.log(JSON.stringify(statuses, null, 2));
    else printStatus(statuses, 'status');
    return EXIT.ok;
  },
};

/**
 * `status --check [FILE...] [STAGE...]`: each pipeline's lockfile against its pipeline and code.
 * Found by looking in pipelines/, a pipeline without a lockfile (its data is the user's own,
 * say) is only named; a file named on the command line must have one.
 */
async function checkLockfiles(args: Args): Promise<number> {
  const named = args.positionals.filter((p) => /\.ya?ml$/.test(p));
  const targets = args.positionals.filter((p) => !/\.ya?ml$/.test(p));
  if (targets.length && named.length !== 1) throw new UsageError('stage names go with exactly one pipeline file');
  let worst: number = EXIT.ok;
  for (const file of pipelineFiles(named)) {
    if (!named.length && !existsSync(lockfilePathFor(file))) {
      console.log(`${file}: no lockfile, not checked`);
      continue;
    }
    const plan = await load(file, { overrides: listOption(args, 'set'), allowOutsideModules: flag(args, 'allowOutsideModules') });
    const mismatches = await lockfileMismatches(plan, workspaceFor(plan), targets.length ? { targets } : {});
    printMismatches(plan, mismatches);
    if (mismatches.length) worst = EXIT.failed;
  }
  return worst;
}

/**
 * What `status --check` and `run --frozen` say about a lockfile: a line per stage, then the
 * count; and when every differing stage differs only in environment facts, a line saying so,
 * since that gate fails on CI runners of another CPU class whatever the change.
 */
export function printMismatches(plan: Plan, mismatches: readonly LockfileMismatch[]): void {
  const width = Math.min(48, Math.max(0, ...mismatches.map((m) => m.id.length)));
  const label = { differs: 'stale', waits: 'stale', removed: 'removed' };
  for (const m of mismatches) console.log(`${label[m.kind].padEnd(7)} ${m.id.padEnd(width)}  ${m.explanation.join('; ')}`);
  const where = displayPath(plan.file);
  const count = (kind: LockfileMismatch['kind']) => mismatches.filter((m) => m.kind === kind).length;
  const removed = count('removed');
  console.log(
    mismatches.length
      ? `${where}: ${count('differs')} of ${plan.instances.length} stages differ from the lockfile and would rerun; ${count('waits')} more wait for them` +
          (removed ? `; ${removed} lockfile entr${removed === 1 ? 'y is' : 'ies are'} no longer in the pipeline` : '')
      : `${where}: the lockfile matches the pipeline and code (${plan.instances.length} stages)`,
  );
  const environmentOnly = mismatches.filter((m) => m.environmentOnly);
  if (environmentOnly.length && environmentOnly.length === count('differs')) {
    const changes = [...new Set(environmentOnly.flatMap((m) => m.explanation))];
    console.log(
      `${where}: only environment facts differ (${changes.join('; ')}), not the pipeline or its stage modules: ` +
        'the lockfile was written where they were other (another class of CPU, Node.js or system library), and those stages give other bytes here. ' +
        'Commit lockfiles written on a machine like this one (a run without --frozen here writes them), or check on one like the machine that wrote them.',
    );
  }
}

export function printStatus(statuses: readonly StageStatus[], mode: 'status' | 'dry-run'): void {
  const width = Math.min(48, Math.max(0, ...statuses.map((s) => s.id.length)));
  const label = {
    'up-to-date': 'up to date',
    restore: mode === 'dry-run' ? 'would restore' : 'restore',
    stale: mode === 'dry-run' ? 'would run' : 'stale',
  };
  const lines = statuses.map(
    (s) => `${label[s.state].padEnd(13)} ${s.id.padEnd(width)}${s.explanation.length ? `  ${s.explanation.join('; ')}` : ''}`,
  );
  const stale = statuses.filter((s) => s.state === 'stale').length;
  const restore = statuses.filter((s) => s.state === 'restore').length;
  // One write: a line at a time cost more than computing the status of a big pipeline.
  process.stdout.write(`${lines.join('\n')}\n\n${stale} stale, ${restore} to restore, ${statuses.length - stale - restore} up to date\n`);
}
