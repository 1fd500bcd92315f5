// Bundles the CLI and the two worker entries (stage processes, t-SNE threads) into dist/ with esbuild. One file per entry instead
// of ~400 modules halves start-up (measured: 146 → 76 ms to import the CLI), which is most
// of a no-op run. Packages loaded only on some paths stay external and load lazily:
// listr2 (live display), tsx (TypeScript user stages), and TensorFlow.js (loaded by ML
// stages inside `run`; its wasm backend finds its .wasm files next to its own modules),
// resvg (a native addon), vega / vega-lite (large, for charts only), and the CommonJS
// projection packages (dynamically imported, their named exports survive only Node's loader),
// and bullmq / ioredis (only `--executor bullmq` and `ablate worker` load them).
// yaml and ajv, which a run needs only when its plan is not cached, are each bundled into one
// CommonJS file, dist/vendor/<name>.cjs, that src/runner/lazy-packages.ts requires on first
// use: one file instead of about 60 and 80 made requiring them 45 → 16 ms and 54 → 26 ms.
//
// It also writes dist/build-inputs.json: the digest and stat identity of every source file
// the bundle was built from. Fingerprints hash the sources, so the bundle that runs must be
// built from exactly those bytes: bin/ablate.js rebuilds a bundle whose sources changed
// (scripts/fresh-bundle.mjs), and code-digest.ts refuses one that changed during a run.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// Built beside dist/ and swapped in by rename, so a process starting meanwhile never sees half a bundle.
const staging = `${root}dist.tmp-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli.ts', 'src/runner/executor/worker-main.ts', 'src/ml/tsne-worker.ts'],
  outdir: staging,
  entryNames: '[name]',
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  metafile: true,
  external: ['listr2', 'tsx', 'tsx/*', '@tensorflow/*', '@resvg/*', 'vega', 'vega-lite', 'ml-pca', 'umap-js', 'bullmq', 'ioredis'],
  // CommonJS dependencies inside an ES module bundle still call require().
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
for (const name of ['yaml', 'ajv']) {
  await build({
    absWorkingDir: root,
    stdin: { contents: `module.exports = require(${JSON.stringify(name)});`, resolveDir: root, sourcefile: `vendor-${name}.cjs` },
    outfile: `${staging}/vendor/${name}.cjs`,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
  });
}
const files = {};
for (const path of Object.keys(result.metafile.inputs).sort()) {
  if (!path.startsWith('src/')) continue;
  const abs = `${root}${path}`;
  const stats = statSync(abs);
  files[path] = {
    digest: createHash('sha256').update(readFileSync(abs)).digest('hex'),
    identity: { ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs },
  };
}
writeFileSync(`${staging}/build-inputs.json`, JSON.stringify({ files }, null, 1) + '\n');
const old = `${root}dist.old-${process.pid}`;
try {
  renameSync(`${root}dist`, old);
} catch (error) {
  if (error.code !== 'ENOENT') throw error;
}
renameSync(staging, `${root}dist`);
rmSync(old, { recursive: true, force: true });
