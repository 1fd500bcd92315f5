import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * vega, vega-lite and vega-embed (with vega-tooltip) from their own minified builds, inlined so
 * a page needs no network. The report stage that inlines them has their versions in its
 * fingerprint (the code digest records every package a stage resolves).
 */
export function chartLibraries(): string {
  const require = createRequire(import.meta.url);
  return [
    packageFile(require.resolve('vega'), 'vega', 'build/vega.min.js'),
    packageFile(require.resolve('vega-lite'), 'vega-lite', 'build/vega-lite.min.js'),
    packageFile(require.resolve('vega-embed'), 'vega-embed', 'build/vega-embed.min.js'),
  ]
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n;\n');
}

/** A file of an installed package that its `exports` do not list: found from the package's entry point. */
function packageFile(entry: string, name: string, file: string): string {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return join(dir, file);
  }
  throw new Error(`cannot find the folder of package ${name} above ${entry}`);
}
