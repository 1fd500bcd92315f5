import { collectGarbage, findLockfiles } from '../runner/maintenance.js';
import { findWorkspaceRoot, workspaceAt } from '../runner/workspace.js';
import { EXIT, flag, type Command } from './shared.js';

export const gcCommand: Command = {
  name: 'gc',
  args: '',
  describe: 'drop cache entries no lockfile references, and temp dirs of killed runs',
  options: [{ flags: '--dry-run', description: 'say what would go; remove nothing' }],
  async run(args) {
    const root = findWorkspaceRoot(process.cwd());
    const lockfiles = findLockfiles(root);
    const dryRun = flag(args, 'dryRun');
    const result = collectGarbage(workspaceAt(root), lockfiles, { dryRun });
    const verb = dryRun ? 'would remove' : 'removed';
    console.log(
      `gc: kept ${result.keptRuns} cache entries referenced by ${lockfiles.length} lockfiles; ${verb} ${result.removedRuns} entries, ${result.removedObjects} objects (${(result.freedBytes / 1e6).toFixed(1)} MB), ${result.removedTemp} temp dirs, ${result.removedParsed} parsed pipeline texts`,
    );
    return EXIT.ok;
  },
};
