import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { hashJson, type Digest } from '../hashing.js';

/** One file of a stage's outputs. */
export interface ManifestEntry {
  readonly digest: Digest;
  readonly size: number;
  /** Executable bit: a restored script must still run. */
  readonly executable: boolean;
}

/** A stage's outputs: path relative to its output directory (always '/'-separated) → content. */
export type Manifest = Readonly<Record<string, ManifestEntry>>;

const digests = new WeakMap<Manifest, Digest>();

/** Identity of a set of outputs: what downstream fingerprints record as their input digest. Memoized per manifest object. */
export function manifestDigest(manifest: Manifest): Digest {
  let digest = digests.get(manifest);
  if (!digest) {
    digest = hashJson(Object.entries(manifest).map(([path, e]) => [path, e.digest, e.executable]));
    digests.set(manifest, digest);
  }
  return digest;
}

/**
 * The part of a manifest under one declared output (`model/` → every file in it; `x.json` →
 * that file), re-rooted so a downstream stage's digest does not depend on sibling outputs.
 */
export function subManifest(manifest: Manifest, outputPath: string): Manifest {
  const dir = outputPath.endsWith('/') ? outputPath : undefined;
  const picked: Record<string, ManifestEntry> = {};
  for (const [path, entry] of Object.entries(manifest)) {
    if (dir ? path.startsWith(dir) : path === outputPath) picked[dir ? path.slice(dir.length) : path] = entry;
  }
  return picked;
}

/** Every regular file under `dir` with its stats, sorted by path. Symlinks and special files are refused: the cache stores content. */
export function listFiles(dir: string): { path: string; abs: string; stats: Stats }[] {
  const out: { path: string; abs: string; stats: Stats }[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(dir, path);
      const stats = lstatSync(abs);
      if (stats.isDirectory()) walk(path);
      else if (stats.isFile()) out.push({ path, abs, stats });
      else throw new Error(`output ${path} is not a regular file (symlinks and special files cannot be cached)`);
    }
  };
  walk('');
  return out;
}
