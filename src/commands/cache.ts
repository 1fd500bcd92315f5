import { relative, resolve } from 'node:path';
import { CacheStore } from '../runner/caching/store.js';
import { lockfilePathFor, readLockfile } from '../runner/lockfile.js';
import { findLockfiles } from '../runner/maintenance.js';
import { findWorkspaceRoot, workspaceAt } from '../runner/workspace.js';
import { EXIT, stringOption, UsageError, type Command } from './shared.js';

/**
 * `ablate cache export FILE [PIPELINE...]` and `ablate cache import FILE`: the cache entries
 * that lockfiles reference, as one tar file a CI system can cache and restore (see
 * docs/ci/). The archive code (and tar) load only here: the CLI starts on every no-op run.
 */
export const cacheCommand: Command = {
  name: 'cache',
  args: '<action> <file> [pipelines...]',
  describe:
    'export FILE.tar [PIPELINE...]: the cache entries the lockfiles reference (default: every lockfile), as one file for a CI cache; import FILE.tar: put them back, each verified by digest (.tar.gz or .tgz: gzipped)',
  options: [{ flags: '--cache <DIR>', description: 'content-addressed store (default: .ablate/cache; also ABLATE_CACHE_DIR)' }],
  async run(args) {
    const [action, file, ...pipelines] = args.positionals;
    if (action !== 'export' && action !== 'import') throw new UsageError(`cache: export or import, not '${action ?? ''}'`);
    if (!file) throw new UsageError(`cache ${action}: missing FILE`);
    if (action === 'import' && pipelines.length) throw new UsageError('cache import takes one FILE');
    const root = findWorkspaceRoot(process.cwd());
    const cache = stringOption(args, 'cache');
    const store = new CacheStore(cache ? resolve(cache) : workspaceAt(root).cacheDir);
    const lockfilePaths = pipelines.length ? pipelines.map((p) => lockfilePathFor(resolve(p))) : findLockfiles(root);
    const lockfiles = lockfilePaths.flatMap((path) => {
      const lock = readLockfile(path);
      if (!lock && pipelines.length) throw new UsageError(`${relative(process.cwd(), path)}: no lockfile, so nothing to export for it`);
      return lock ? [{ path, lock }] : [];
    });
    const { exportArchive, importArchive } = await import('../runner/caching/archive.js');
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    if (action === 'export') {
      const result = await exportArchive(store, lockfiles, file);
      console.log(
        `exported ${result.stages} stage entries of ${lockfiles.length} lockfiles (${result.objects} objects, ${mb(result.bytes)}) to ${file}`,
      );
      if (result.missing.length)
        console.log(
          `not in this cache, so not exported (${result.missing.length}): ${result.missing.slice(0, 10).join(', ')}${result.missing.length > 10 ? ', …' : ''}`,
        );
      return EXIT.ok;
    }
    const result = await importArchive(store, file, lockfiles);
    console.log(
      `imported ${result.records} run records and ${result.objects} objects (${mb(result.bytes)}) from ${file}; ${result.present} objects were already here`,
    );
    for (const line of result.refused) console.log(`not imported: ${line}`);
    return EXIT.ok;
  },
};
