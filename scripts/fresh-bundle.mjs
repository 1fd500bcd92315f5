// Called by bin/ablate.js before it loads dist/: is the bundle built from the sources in src/
// as they are now? Fingerprints hash src/ (code-digest.ts), so running a bundle built from
// other bytes would file old code's results under the new code's fingerprint. A stale bundle
// is rebuilt when esbuild is installed (a checkout), and refused otherwise. Cheap when fresh:
// one stat per source file (about 120), hashing only files whose stat changed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Source files whose bytes differ from the ones dist/ was built from; ['dist/'] when there is no bundle. */
export function staleSources() {
  const infoFile = `${root}dist/build-inputs.json`;
  if (!existsSync(infoFile) || !existsSync(`${root}dist/cli.js`)) return ['dist/ (not built)'];
  const { files } = JSON.parse(readFileSync(infoFile, 'utf8'));
  const stale = [];
  for (const [path, { digest, identity }] of Object.entries(files)) {
    let stats;
    try {
      stats = statSync(`${root}${path}`);
    } catch {
      stale.push(`${path} (removed)`);
      continue;
    }
    if (
      stats.ino === identity.ino &&
      stats.size === identity.size &&
      stats.mtimeMs === identity.mtimeMs &&
      stats.ctimeMs === identity.ctimeMs
    )
      continue;
    if (
      createHash('sha256')
        .update(readFileSync(`${root}${path}`))
        .digest('hex') !== digest
    )
      stale.push(path);
  }
  return stale;
}

/** Rebuilds a stale bundle (saying so on stderr) or exits 2 saying why it cannot. */
export function ensureFreshBundle() {
  const stale = staleSources();
  if (!stale.length) return;
  const shown = stale.length > 3 ? `${stale.slice(0, 3).join(', ')} and ${stale.length - 3} more` : stale.join(', ');
  let hasEsbuild = true;
  try {
    createRequire(import.meta.url).resolve('esbuild');
  } catch {
    hasEsbuild = false;
  }
  if (!hasEsbuild) {
    process.stderr.write(
      `ablate: dist/ was not built from the sources in src/ (${shown} changed) and esbuild is not installed to rebuild it; run \`npm ci\` or \`npm run build\`\n`,
    );
    process.exit(2);
  }
  const started = performance.now();
  const build = spawnSync(process.execPath, [`${root}scripts/build.mjs`], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (build.status !== 0) {
    process.stderr.write('ablate: rebuilding dist/ failed (output above); fix the sources, then run again\n');
    process.exit(2);
  }
  process.stderr.write(
    `ablate: rebuilt dist/ in ${((performance.now() - started) / 1000).toFixed(1)} s (${shown} changed since the last build)\n`,
  );
}
