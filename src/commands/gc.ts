import { recentDigests, trimHistory } from '../runner/history.js';
import { collectGarbage, findLockfiles } from '../runner/maintenance.js';
import { findWorkspaceRoot, workspaceAt } from '../runner/workspace.js';
import { EXIT, flag, integerOption, UsageError, type Command } from './shared.js';

/** Runs per pipeline whose results stay restorable by default: last week's work, not last year's. */
const DEFAULT_KEEP_RUNS = 10;
/** History entries per pipeline that `ablate log` keeps listing: a few KB each, years of runs. */
const DEFAULT_KEEP_HISTORY = 1000;

export const gcCommand: Command = {
  name: 'gc',
  args: '',
  describe: 'drop cache entries that neither a lockfile nor the last runs of each pipeline reference, and temp dirs of killed runs',
  options: [
    { flags: '--dry-run', description: 'say what would go; remove nothing' },
    {
      flags: '--keep-runs <N>',
      description: `also keep what the last N runs of each pipeline produced (default ${DEFAULT_KEEP_RUNS}; 0: lockfiles only)`,
    },
    {
      flags: '--keep-history <N>',
      description: `keep the last N entries of each pipeline's run history, which \`ablate log\` lists (default ${DEFAULT_KEEP_HISTORY})`,
    },
  ],
  async run(args) {
    const root = findWorkspaceRoot(process.cwd());
    const workspace = workspaceAt(root);
    const lockfiles = findLockfiles(root);
    const dryRun = flag(args, 'dryRun');
    const keepRuns = integerOption(args.options.keepRuns, '--keep-runs', DEFAULT_KEEP_RUNS, 0);
    const keepHistory = integerOption(args.options.keepHistory, '--keep-history', DEFAULT_KEEP_HISTORY, 1);
    if (keepHistory < keepRuns)
      throw new UsageError(`--keep-history ${keepHistory} is below --keep-runs ${keepRuns}: the runs kept must stay in the history`);
    const alsoKeep = recentDigests(workspace.historyDir, keepRuns);
    const result = collectGarbage(workspace, lockfiles, { dryRun, alsoKeep });
    const droppedHistory = trimHistory(workspace.historyDir, keepHistory, { dryRun });
    const verb = dryRun ? 'would remove' : 'removed';
    console.log(
      `gc: kept ${result.keptRuns} cache entries referenced by ${lockfiles.length} lockfiles and the last ${keepRuns} runs of each pipeline; ${verb} ${result.removedRuns} entries, ${result.removedObjects} objects (${(result.freedBytes / 1e6).toFixed(1)} MB), ${result.removedTemp} temp dirs, ${result.removedParsed} parsed pipelines and plans, ${result.removedStatEntries} stat-cache entries of files no longer there, ${droppedHistory} history entries beyond the last ${keepHistory}`,
    );
    return EXIT.ok;
  },
};
