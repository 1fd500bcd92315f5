import type { CodeDigest } from './code-digest.js';
import { hashJson, type Digest } from './hashing.js';

export const FINGERPRINT_FORMAT = 2;

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
 * changes without changing the result only costs needless reruns).
 */
export interface Fingerprint {
  /**
   * Bumped whenever the fields or their meaning change, so an old cache entry is never read as
   * a new one (2: `environment` added).
   */
  readonly format: typeof FINGERPRINT_FORMAT;
  /** The stage kind as written in `uses:`: two kinds with identical params still do different work. */
  readonly kind: string;
  /** The stage module, the local modules it imports and the npm package versions they use: editing the code must rerun it. */
  readonly code: CodeDigest;
  /** Params after interpolation of ${params.*}/${matrix.*} and schema defaults: what the stage actually receives, in canonical JSON. */
  readonly params: Readonly<Record<string, unknown>>;
  /** The seed of the stage's RNG: derived from the instance id when there is no `seed` param, so it is an input too. */
  readonly seed: number;
  /**
   * Content digest of each input artifact, by input name. Upstream fingerprints are deliberately
   * absent: when an upstream stage reruns and produces identical bytes, this stage stays cached
   * (early cutoff).
   */
  readonly inputs: Readonly<Record<string, InputDigest>>;
  /** Content digests of workspace files declared as dependencies (shell `deps`), by path relative to the pipeline. */
  readonly deps: Readonly<Record<string, Digest>>;
  /** Machine facts the stage kind says its result depends on (e.g. `backend: wasm`): native and wasm training differ in the last bits. */
  readonly environment: Readonly<Record<string, string>>;
}

export function fingerprintDigest(fingerprint: Fingerprint): FingerprintDigest {
  return hashJson(fingerprint) as FingerprintDigest;
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

function recordChanges(before: Readonly<Record<string, unknown>>, after: Readonly<Record<string, unknown>>): [string, 'modified' | 'added' | 'removed'][] {
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
