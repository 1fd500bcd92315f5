import { displayPath } from '../runner/fsutil.js';
import { lockfileMismatches, pipelineStatus, type StageStatus } from '../runner/status.js';
import { allowOutsideOption, EXIT, flag, listOption, load, setOption, workspaceFor, type Command } from './shared.js';

export const statusCommand: Command = {
  name: 'status',
  args: '<file> [stages...]',
  describe: 'which stages are stale, and why (what `run` would do)',
  options: [
    setOption,
    { flags: '--json', description: 'every stage as JSON' },
    {
      flags: '--check',
      description:
        'CI gate: exit 1, naming each stage and why, unless the committed lockfile matches the pipeline and code (no artifacts or cache needed)',
    },
    allowOutsideOption,
  ],
  async run(args) {
    const [file, ...targets] = args.positionals;
    const plan = await load(file, { overrides: listOption(args, 'set'), allowOutsideModules: flag(args, 'allowOutsideModules') });
    if (flag(args, 'check')) {
      const mismatches = await lockfileMismatches(plan, workspaceFor(plan));
      const width = Math.min(48, Math.max(0, ...mismatches.map((m) => m.id.length)));
      for (const m of mismatches) console.log(`stale  ${m.id.padEnd(width)}  ${m.explanation.join('; ')}`);
      const where = displayPath(plan.file);
      const differ = mismatches.filter((m) => m.kind === 'differs').length;
      console.log(
        mismatches.length
          ? `${where}: ${differ} of ${plan.instances.length} stages differ from the lockfile and would rerun; ${mismatches.length - differ} more wait for them`
          : `${where}: the lockfile matches the pipeline and code (${plan.instances.length} stages)`,
      );
      return mismatches.length ? EXIT.failed : EXIT.ok;
    }
    const statuses = await pipelineStatus(plan, workspaceFor(plan), targets.length ? { targets } : {});
    if (flag(args, 'json')) console.log(JSON.stringify(statuses, null, 2));
    else printStatus(statuses, 'status');
    return EXIT.ok;
  },
};

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
