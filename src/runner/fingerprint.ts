import { existsSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { listFiles, manifestDigest, subManifest, type Manifest } from './caching/manifest.js';
import type { StatCache } from './caching/stat-cache.js';
import { codeDigest, type CodeDigest } from './code-digest.js';
import { canonicalJson, hashBytes, hashJson, type Digest } from './hashing.js';
import type { StageKind } from '../core/contract.js';
import { variantLabel, type Plan, type StageInstance } from './plan.js';

/**
 * Bumped whenever the fields or their meaning change, so an old cache entry is never read as
 * a new one. 2: `environment`. 3: `deps` holds every file a `format: 'path'` param names;
 * threads are a param; the native route's `cpu` fact; shell values travel as variables.
 */
export const FINGERPRINT_FORMAT = 3;

/** Digest of a Fingerprint: the cache key of one stage execution. */
export type FingerprintDigest = Digest & { readonly __fingerprint: true };

/** Content digest of one input as the stage sees it. */
export type InputDigest =
  | Digest
  /** A gathered input: each variant's label and content digest, in matrix order. */
  | readonly (readonly [label: string, digest: Digest])[];

/**
 * Everything that can change what a stage produces. Two executions with equal
 * fingerprints must produce the same outputs, so one can be restored instead of run;
 * anything that would break that belongs here, and nothing else does (a field that
 * changes without changing the result only costs needless reruns). README.md, "What a
 * fingerprint promises", says for each kind of stage which facts decide its bytes.
 */
export interface Fingerprint {
  /** FINGERPRINT_FORMAT: an entry written under other rules is never mistaken for a current one. */
  readonly format: typeof FINGERPRINT_FORMAT;
  /** The stage kind as written in `uses:`: two kinds with identical params still do different work. */
  readonly kind: string;
  /**
   * The stage module, the local modules it imports and the npm package versions they use:
   * editing the code must rerun it. For built-in kinds these are the bytes the running bundle
   * was built from (code-digest.ts refuses a bundle older than its sources).
   */
  readonly code: CodeDigest;
  /**
   * Params after interpolation and schema defaults: what the stage actually receives, in
   * canonical JSON. This includes `threads` for multithreaded kinds (a thread count changes
   * the order of a parallel sum) and a shell command's `vars`.
   */
  readonly params: Readonly<Record<string, unknown>>;
  /** The seed of the stage's RNG: derived from the instance id when there is no `seed` param, so it is an input too. */
  readonly seed: number;
  /**
   * Content digest of each input artifact, by input name. Upstream fingerprints are deliberately
   * absent: when an upstream stage reruns and produces identical bytes, this stage stays cached
   * (early cutoff).
   */
  readonly inputs: Readonly<Record<string, InputDigest>>;
  /**
   * Content digests of the files and directories its params name (`format: 'path'`: a shell
   * stage's `deps`, a dataset's `path`), by path relative to the pipeline: the data behind a
   * path is an input like any other.
   */
  readonly deps: Readonly<Record<string, Digest>>;
  /**
   * The Node.js version (`node`), for every stage: its zlib writes the compressed bytes of every
   * PNG, and V8 computes JavaScript's Math functions. Then the machine facts the stage kind
   * says its result depends on: the TensorFlow.js route
   * (`backend`), and on the native route the oneDNN build (`kernels`) and the instruction set
   * it dispatches to (`cpu`), since AVX2 and AVX-512 kernels round differently. Kinds whose
   * bytes no CPU changes (data, figures drawn in JS, the wasm route) declare none, so machines
   * of every CPU class share their entries.
   */
  readonly environment: Readonly<Record<string, string>>;
}

/** What one run or status check reuses across its instances' fingerprints. */
export interface FingerprintCaches {
  readonly statCache: StatCache;
  /** Stage module file → its code digest; computed once per run, as many instances share a kind. */
  readonly codeDigests: Map<string, CodeDigest>;
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
  let code = codeDigests.get(instance.ref.sourceFile);
  if (!code) {
    code = deepFreeze(codeDigest(instance.ref.sourceFile, instance.ref.codeRoot));
    codeDigests.set(instance.ref.sourceFile, code);
  }
  return {
    format: FINGERPRINT_FORMAT,
    kind: instance.ref.name,
    code,
    params: instance.params,
    seed: seedOf(instance),
    inputs,
    deps,
    environment: await machineFacts(instance.kind, instance.params),
  };
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) if (child && typeof child === 'object') deepFreeze(child as object);
  return Object.freeze(value);
}

/** Fingerprint.environment here: the Node.js version and the facts the kind declares. */
export async function machineFacts(kind: StageKind, params: Readonly<Record<string, unknown>>): Promise<Record<string, string>> {
  return { node: process.version, ...(await kind.environment?.(params)) };
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

/**
 * The canonical JSON of each frozen CodeDigest met so far. A run's instances of one kind share
 * that object (computeFingerprint makes it once per kind, frozen), and it is about a third of
 * a fingerprint's text; frozen, it cannot change after it was serialized.
 */
const codeJson = new WeakMap<object, string>();

export function fingerprintDigest(fingerprint: Fingerprint): FingerprintDigest {
  const { code } = fingerprint;
  if (Object.isFrozen(code) && !codeJson.has(code)) codeJson.set(code, canonicalJson(code));
  return hashBytes(canonicalJson(fingerprint, codeJson)) as FingerprintDigest;
}

/** Why a stage's fingerprint differs from the one it last ran with, as data. */
export type StaleReason =
  | { readonly type: 'new' }
  | { readonly type: 'kind'; readonly from: string; readonly to: string }
  | { readonly type: 'format' }
  | { readonly type: 'code'; readonly file: string; readonly change: 'modified' | 'added' | 'removed' }
  | { readonly type: 'package'; readonly name: string; readonly from: string | undefined; readonly to: string | undefined }
  | { readonly type: 'param'; readonly name: string; readonly from: unknown; readonly to: unknown }
  | { readonly type: 'seed'; readonly from: number; readonly to: number }
  | { readonly type: 'input'; readonly name: string; readonly change: 'modified' | 'added' | 'removed' }
  | { readonly type: 'dep'; readonly file: string; readonly change: 'modified' | 'added' | 'removed' }
  | { readonly type: 'environment'; readonly name: string; readonly from: string | undefined; readonly to: string | undefined }
  | { readonly type: 'not-cached' }
  | { readonly type: 'upstream'; readonly id: string }
  | { readonly type: 'forced' };

/** Field-by-field comparison of the fingerprint a stage last ran with and its current one. */
export function diffFingerprints(before: Fingerprint | undefined, after: Fingerprint): StaleReason[] {
  if (!before) return [{ type: 'new' }];
  if (before.format !== after.format) return [{ type: 'format' }];
  const reasons: StaleReason[] = [];
  if (before.kind !== after.kind) reasons.push({ type: 'kind', from: before.kind, to: after.kind });
  for (const [file, change] of recordChanges(before.code.files, after.code.files)) reasons.push({ type: 'code', file, change });
  for (const [name] of recordChanges(before.code.packages, after.code.packages)) {
    reasons.push({ type: 'package', name, from: before.code.packages[name], to: after.code.packages[name] });
  }
  for (const [name] of recordChanges(before.params, after.params)) {
    reasons.push({ type: 'param', name, from: before.params[name], to: after.params[name] });
  }
  if (before.seed !== after.seed) reasons.push({ type: 'seed', from: before.seed, to: after.seed });
  for (const [name, change] of recordChanges(before.inputs, after.inputs)) reasons.push({ type: 'input', name, change });
  for (const [file, change] of recordChanges(before.deps, after.deps)) reasons.push({ type: 'dep', file, change });
  for (const [name] of recordChanges(before.environment, after.environment)) {
    reasons.push({ type: 'environment', name, from: before.environment[name], to: after.environment[name] });
  }
  return reasons;
}

function recordChanges(
  before: Readonly<Record<string, unknown>>,
  after: Readonly<Record<string, unknown>>,
): [string, 'modified' | 'added' | 'removed'][] {
  const changes: [string, 'modified' | 'added' | 'removed'][] = [];
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (!Object.hasOwn(before, key)) changes.push([key, 'added']);
    else if (!Object.hasOwn(after, key)) changes.push([key, 'removed']);
    else if (hashJson(before[key]) !== hashJson(after[key])) changes.push([key, 'modified']);
  }
  return changes;
}

/** Every reason in words, with code changes folded into one: `train-vae code changed: a.ts, b.ts modified`. */
export function describeReasons(reasons: readonly StaleReason[], kind: string): string[] {
  const code = reasons.filter((r): r is Extract<StaleReason, { type: 'code' }> => r.type === 'code');
  const words = reasons.filter((r) => r.type !== 'code').map((r) => describeReason(r, kind));
  if (code.length > 1) {
    const byChange = ['modified', 'added', 'removed'].flatMap((change) => {
      const files = code.filter((r) => r.change === change).map((r) => r.file);
      return files.length ? [`${files.join(', ')} ${change}`] : [];
    });
    words.unshift(`${kind} code changed: ${byChange.join('; ')}`);
  } else if (code.length === 1) words.unshift(describeReason(code[0]!, kind));
  return words;
}

/** `param beta 1 → 4`, `input data changed`, `code changed: src/stages/train-vae.ts`. */
export function describeReason(reason: StaleReason, kind: string): string {
  switch (reason.type) {
    case 'new':
      return 'never ran';
    case 'format':
      return 'fingerprint format changed (new ablate version)';
    case 'kind':
      return `kind ${reason.from} → ${reason.to}`;
    case 'code':
      return `${kind} code changed: ${reason.file} ${reason.change}`;
    case 'package':
      return `package ${reason.name} ${reason.from ?? '(none)'} → ${reason.to ?? '(none)'}`;
    case 'param':
      return `param ${reason.name} ${show(reason.from)} → ${show(reason.to)}`;
    case 'seed':
      return `seed ${reason.from} → ${reason.to}`;
    case 'input':
      return reason.change === 'modified' ? `input ${reason.name} changed` : `input ${reason.name} ${reason.change}`;
    case 'dep':
      return `dep ${reason.file} ${reason.change === 'modified' ? 'changed' : reason.change}`;
    case 'environment':
      return `${reason.name} ${reason.from ?? '(none)'} → ${reason.to ?? '(none)'}`;
    case 'not-cached':
      return 'unchanged, but its outputs are not in the cache';
    case 'upstream':
      return `waits for ${reason.id}, which will run`;
    case 'forced':
      return 'forced';
  }
}

function show(value: unknown): string {
  return value === undefined ? '(unset)' : JSON.stringify(value);
}
