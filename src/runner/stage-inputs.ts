import { existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { GatheredInput } from '../stages/contract.js';
import { listFiles, manifestDigest, subManifest, type Manifest } from './caching/manifest.js';
import type { StatCache } from './caching/stat-cache.js';
import type { CacheStore, RunRecord } from './caching/store.js';
import type { LockEntry } from './lockfile.js';
import { codeDigest, type CodeDigest } from './code-digest.js';
import { FINGERPRINT_FORMAT, type Fingerprint, type FingerprintDigest, type InputDigest } from './fingerprint.js';
import { hashBytes, hashJson, type Digest } from './hashing.js';
import { variantLabel, type Plan, type StageInstance } from './plan.js';

/** What one run or status check reuses across its instances' fingerprints. */
export interface FingerprintCaches {
  readonly statCache: StatCache;
  /** Stage module file → its code digest; computed once per run, as many instances share a kind. */
  readonly codeDigests: Map<string, CodeDigest>;
}

function memoCodeDigest(memo: Map<string, CodeDigest>, instance: StageInstance): CodeDigest {
  let digest = memo.get(instance.ref.sourceFile);
  if (!digest) {
    digest = codeDigest(instance.ref.sourceFile, instance.ref.codeRoot);
    memo.set(instance.ref.sourceFile, digest);
  }
  return digest;
}

/** Outputs of a completed upstream instance, as recorded in the cache. */
export type UpstreamOutputs = (id: string) => Manifest | undefined;

/** The seed a stage's RNG gets: its `seed` param if it has a numeric one, else one derived from its id. */
export function seedOf(instance: StageInstance): number {
  const param = instance.params.seed;
  if (typeof param === 'number' && Number.isInteger(param)) return param;
  return Number.parseInt(hashBytes(instance.id).slice(0, 8), 16);
}

/**
 * The fingerprint of an instance, or the id of an upstream instance whose outputs are not
 * known yet. Missing dependency files are fingerprinted as absent ('missing'), so the stage
 * is stale and its own run reports the missing file.
 */
export async function computeFingerprint(
  instance: StageInstance,
  plan: Plan,
  upstream: UpstreamOutputs,
  { statCache, codeDigests }: FingerprintCaches,
): Promise<Fingerprint | { readonly missing: string }> {
  const inputs: Record<string, InputDigest> = {};
  for (const [name, binding] of Object.entries(instance.inputs)) {
    const pick = (id: string): Digest | undefined => {
      const manifest = upstream(id);
      if (!manifest) return undefined;
      const path = binding.output === undefined ? undefined : plan.byId.get(id)!.outputs[binding.output];
      return manifestDigest(path === undefined ? manifest : subManifest(manifest, path));
    };
    if (binding.type === 'single') {
      const digest = pick(binding.from);
      if (!digest) return { missing: binding.from };
      inputs[name] = digest;
    } else {
      const digests: (readonly [string, Digest])[] = [];
      for (const from of binding.from) {
        const digest = pick(from.id);
        if (!digest) return { missing: from.id };
        digests.push([variantLabel(from.variant), digest]);
      }
      inputs[name] = digests;
    }
  }
  const deps: Record<string, Digest> = {};
  for (const file of instance.fileDeps) deps[relative(plan.dir, file)] = await pathDigest(file, statCache);
  return {
    format: FINGERPRINT_FORMAT,
    kind: instance.ref.name,
    code: memoCodeDigest(codeDigests, instance),
    params: instance.params,
    seed: seedOf(instance),
    inputs,
    deps,
    environment: (await instance.kind.environment?.(instance.params)) ?? {},
  };
}

/** A file's content digest, a directory's tree digest, or a marker digest for a missing path. */
async function pathDigest(path: string, statCache: StatCache): Promise<Digest> {
  if (!existsSync(path)) return hashJson({ missing: true });
  const stats = statSync(path);
  if (!stats.isDirectory()) return statCache.digestOf(path, stats);
  const entries: [string, Digest][] = [];
  for (const file of listFiles(path)) entries.push([file.path, await statCache.digestOf(file.abs, file.stats)]);
  return hashJson(entries);
}

/** Paths the job sees for its inputs: upstream artifact directories (or named outputs in them). */
export function inputPaths(instance: StageInstance, plan: Plan, workspaceRoot: string): Record<string, string | GatheredInput[]> {
  const pathOf = (id: string, output: string | undefined) => {
    const up = plan.byId.get(id)!;
    const base = join(workspaceRoot, up.artifactDir);
    return output === undefined ? base : join(base, up.outputs[output]!.replace(/\/$/, ''));
  };
  return Object.fromEntries(
    Object.entries(instance.inputs).map(([name, b]) => [
      name,
      b.type === 'single' ? pathOf(b.from, b.output) : b.from.map((f) => ({ id: f.id, variant: f.variant, path: pathOf(f.id, b.output) })),
    ]),
  );
}

/**
 * Files of the manifest that are missing or differ in the materialized artifact directory,
 * checked by stat against the stat cache (rehashing only files whose stat changed).
 */
export async function driftedArtifacts(manifest: Manifest, artifactDir: string, statCache: StatCache): Promise<string[]> {
  const drifted: string[] = [];
  for (const [path, entry] of Object.entries(manifest)) {
    const abs = join(artifactDir, path);
    let stats;
    try {
      stats = statSync(abs);
    } catch {
      drifted.push(path);
      continue;
    }
    if (stats.size !== entry.size || (await statCache.digestOf(abs, stats)) !== entry.digest) drifted.push(path);
  }
  return drifted;
}

/** What the lockfile and the cache already hold for an instance's current fingerprint. */
export type CachedState =
  /** Nothing to do: artifacts/ matches the lockfile's entry (`record` absent) or a cache record. */
  | { readonly state: 'up-to-date'; readonly outputs: Manifest; readonly durationMs: number; readonly record?: RunRecord }
  /** Cached, but files in artifacts/ are missing or modified: copy them back. */
  | { readonly state: 'restore'; readonly record: RunRecord; readonly drifted: readonly string[] }
  | { readonly state: 'absent' };

/**
 * Reads only. First the lockfile: an entry with this very fingerprint whose artifacts still
 * match needs no cache read at all (as DVC compares dvc.lock); then the cache record. `run`
 * acts on the answer and `status` reports it, so status predicts exactly what run will do.
 */
export async function cachedState(
  instance: StageInstance,
  digest: FingerprintDigest,
  lockEntry: LockEntry | undefined,
  store: CacheStore,
  statCache: StatCache,
  workspaceRoot: string,
): Promise<CachedState> {
  const artifactDir = join(workspaceRoot, instance.artifactDir);
  if (lockEntry?.digest === digest && lockEntry.artifactDir === instance.artifactDir && !(await driftedArtifacts(lockEntry.outputs, artifactDir, statCache)).length) {
    return { state: 'up-to-date', outputs: lockEntry.outputs, durationMs: lockEntry.durationMs };
  }
  const record = store.readRun(digest);
  if (!record) return { state: 'absent' };
  const drifted = await driftedArtifacts(record.outputs, artifactDir, statCache);
  return drifted.length ? { state: 'restore', record, drifted } : { state: 'up-to-date', outputs: record.outputs, durationMs: record.durationMs, record };
}
