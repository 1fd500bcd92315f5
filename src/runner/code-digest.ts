import { existsSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { packageRoot } from '../package-root.js';
import { hashBytes, type Digest } from './hashing.js';

/** The code a stage runs, as far as it can change the stage's result. */
export interface CodeDigest {
  /** Every local source file reachable by imports from the stage module → its digest. */
  readonly files: Readonly<Record<string, Digest>>;
  /** Every npm package those files import → its installed version. */
  readonly packages: Readonly<Record<string, string>>;
}

const SPECIFIER_PATTERNS = [
  /\bimport\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"\n]+)['"]/g,
  /\bexport\s+(?:type\s+)?[\w*{}\s,$]*?\s+from\s+['"]([^'"\n]+)['"]/g,
  /\bimport\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g,
  /\brequire\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g,
  // A package file a stage reads (the report inlines vega's builds) is a package it depends on.
  /\brequire\.resolve\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g,
];

/** Import specifiers in a JS/TS source, static and dynamic (heavy libraries are imported lazily). */
export function importSpecifiers(source: string): string[] {
  const found = new Set<string>();
  for (const pattern of SPECIFIER_PATTERNS) for (const m of source.matchAll(pattern)) found.add(m[1]!);
  return [...found];
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`; undefined for relative and node: builtins. */
export function packageNameOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return builtinModules.includes(name) ? undefined : name;
}

const EXTENSIONS = ['', '.ts', '.tsx', '.mts', '.js', '.mjs', '.cjs', '/index.ts', '/index.js'];

/** A relative import to a file, trying TypeScript's `.js` → `.ts` convention. */
function resolveLocal(fromFile: string, specifier: string): string | undefined {
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [...EXTENSIONS.map((ext) => base + ext), base.replace(/\.(m|c)?js$/, '.$1ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

const versionCache = new Map<string, string>();

function installedVersion(fromFile: string, name: string): string {
  let dir = dirname(fromFile);
  for (;;) {
    const manifest = join(dir, 'node_modules', name, 'package.json');
    const cached = versionCache.get(manifest);
    if (cached) return cached;
    if (existsSync(manifest)) {
      const version = (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version ?? 'unknown';
      versionCache.set(manifest, version);
      return version;
    }
    const parent = dirname(dir);
    if (parent === dir) return 'not installed';
    dir = parent;
  }
}

/** A built-in stage's sources changed after the bundle that runs them was built. */
export class StaleBundleError extends Error {
  override readonly name = 'StaleBundleError';
}

/**
 * When this code runs from the dist/ bundle: each source file the bundle was built from (by
 * absolute path) → the digest of the bytes it was built from (scripts/build.mjs). Undefined
 * when running from src/ itself (tests, tsx), where the hashed bytes are the running ones.
 */
let bundledSources: ReadonlyMap<string, Digest> | undefined | null = null;

function bundleInputs(): ReadonlyMap<string, Digest> | undefined {
  if (bundledSources !== null) return bundledSources;
  const infoFile = join(packageRoot, 'dist', 'build-inputs.json');
  if (import.meta.url.endsWith('.ts') || !existsSync(infoFile)) return (bundledSources = undefined);
  const { files } = JSON.parse(readFileSync(infoFile, 'utf8')) as { files: Record<string, { digest: Digest }> };
  return (bundledSources = new Map(Object.entries(files).map(([path, entry]) => [join(packageRoot, path), entry.digest])));
}

let runnerIdentity: Digest | undefined;

/**
 * Names the runner's own code, for what it computes from it alone (the plan cache): running
 * from the bundle, the list of source digests it was built from (one small file, checked
 * against src/ at start); running from src/, the code digest of the planner and everything
 * it imports, built-in stage kinds included.
 */
export function runnerCodeIdentity(): Digest {
  if (runnerIdentity) return runnerIdentity;
  const infoFile = join(packageRoot, 'dist', 'build-inputs.json');
  runnerIdentity = bundleInputs()
    ? hashBytes(readFileSync(infoFile))
    : hashBytes(JSON.stringify(codeDigest(join(packageRoot, 'src', 'runner', 'plan.ts'), packageRoot)));
  return runnerIdentity;
}

/** Per file: its digest and imports, valid while its stat identity (size, mtime, ctime) is unchanged. */
const fileCache = new Map<string, { identity: string; digest: Digest; specifiers: string[] }>();

/**
 * Digest of a stage module and the local modules it imports, transitively, plus the versions
 * of the packages they import. Files are named relative to `labelRoot`. Raw bytes are hashed,
 * so an edit to a comment also counts as a change: predictable beats clever here.
 * Each file is read once per process while its stat is unchanged. Running from the bundle, a
 * file whose bytes differ from the ones the bundle was built from throws StaleBundleError:
 * the digest must describe the code that actually executes.
 */
export function codeDigest(entryFile: string, labelRoot: string): CodeDigest {
  const files: Record<string, Digest> = {};
  const packages: Record<string, string> = {};
  const stack = [entryFile];
  const seen = new Set<string>();
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const stats = statSync(file);
    const identity = `${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
    let info = fileCache.get(file);
    if (info?.identity !== identity) {
      const text = readFileSync(file);
      info = { identity, digest: hashBytes(text), specifiers: importSpecifiers(text.toString('utf8')) };
      fileCache.set(file, info);
    }
    const built = bundleInputs()?.get(file);
    if (built !== undefined && built !== info.digest) {
      throw new StaleBundleError(
        `${relative(labelRoot, file)} changed after dist/ was built (during this run?); run the command again, which rebuilds dist/ first`,
      );
    }
    files[relative(labelRoot, file)] = info.digest;
    for (const specifier of info.specifiers) {
      const pkg = packageNameOf(specifier);
      if (pkg) packages[pkg] = installedVersion(file, pkg);
      else if (specifier.startsWith('.')) {
        const local = resolveLocal(file, specifier);
        if (local) stack.push(local);
      }
    }
  }
  return { files: sortKeys(files), packages: sortKeys(packages) };
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : 1)));
}
