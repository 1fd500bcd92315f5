import { createRequire } from 'node:module';
import type * as AjvPackage from 'ajv';
import type * as YamlPackage from 'yaml';

/**
 * Packages that a no-op run never needs, loaded on the first call instead of at start: with
 * the plan cache, a rerun reads no YAML and checks no schema, and importing yaml and ajv was a
 * tenth of that run (about 40 ms of 0.45 s, measured on the 1000-stage tree). Loaded with
 * require, which is synchronous like the code that needs them. The bundle requires each from
 * its one-file copy in dist/vendor/ (scripts/build.mjs says why); from source, the package.
 */
const requirePackage = createRequire(import.meta.url);
const fromSource = import.meta.url.endsWith('.ts');
const load = (name: 'yaml' | 'ajv'): unknown => requirePackage(fromSource ? name : `./vendor/${name}.cjs`);

let yamlPackage: typeof YamlPackage | undefined;
export function yaml(): typeof YamlPackage {
  return (yamlPackage ??= load('yaml') as typeof YamlPackage);
}

let ajvPackage: typeof AjvPackage | undefined;
export function ajv(): typeof AjvPackage {
  return (ajvPackage ??= load('ajv') as typeof AjvPackage);
}
