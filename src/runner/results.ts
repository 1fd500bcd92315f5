import type { Variant } from '../core/contract.js';
import { yaml } from './lazy-packages.js';
import { aggregateReplicates, type ReplicateGroup } from '../core/stats.js';
import type { Manifest } from './caching/manifest.js';
import { canonicalJson } from './hashing.js';
import type { Lockfile } from './lockfile.js';
import { parseShellVariableName } from './interpolate.js';
import { parseInstanceId } from './plan.js';

/**
 * What a lockfile says each stage instance produced, as rows for people and scripts
 * (`ablate show`, `ablate diff`). Read from the lockfile alone: nothing runs, and a lockfile
 * from another git revision reads the same way.
 */
export interface InstanceResult {
  readonly id: string;
  readonly stage: string;
  readonly kind: string;
  readonly variant: Variant;
  /** Params that differ between this stage's instances and are not already its matrix values. */
  readonly params: Readonly<Record<string, unknown>>;
  /** Every resolved param, for a diff between revisions. */
  readonly allParams: Readonly<Record<string, unknown>>;
  readonly metrics: Readonly<Record<string, number>>;
  /** Digest of all its outputs: a diff can say "outputs changed" where no metric did. */
  readonly outputDigest: string;
  /** Fingerprint digest: what the cache files its run under. */
  readonly digest: string;
  /** What the stage warned of (a collapsed posterior, say). */
  readonly warnings: readonly string[];
  /** Its output files by path, with their digests: where a view finds them in the cache. */
  readonly outputs: Manifest;
}

/**
 * Params as a reader names them: nested objects flattened to `a.b`; in the `vars` the runner
 * makes for shell commands, `${matrix.KEY}` values left out (the variant shows them) and
 * `${params.NAME}` values shown as `params.NAME`.
 */
export function readableParams(params: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  const walk = (prefix: string, value: unknown) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    } else flat[prefix] = value;
  };
  for (const [key, value] of Object.entries(params)) {
    if (key === 'vars' && value !== null && typeof value === 'object') {
      for (const [variable, v] of Object.entries(value)) {
        const ref = parseShellVariableName(variable);
        if (ref?.namespace === 'matrix') continue;
        flat[ref ? `params.${ref.name}` : `vars.${variable}`] = v;
      }
    } else walk(key, value);
  }
  return flat;
}

export function lockfileResults(lockfile: Lockfile): InstanceResult[] {
  const entries = Object.entries(lockfile.stages).map(([id, entry]) => ({
    id,
    entry,
    params: readableParams(entry.fingerprint.params as Record<string, unknown>),
    ...parseInstanceId(id),
  }));
  const byStage = new Map<string, typeof entries>();
  for (const e of entries) byStage.set(e.stage, [...(byStage.get(e.stage) ?? []), e]);
  return entries.map(({ id, entry, stage, variant, params }) => {
    const siblings = byStage.get(stage)!;
    const varying = Object.entries(params).filter(
      ([k, v]) =>
        !(Object.hasOwn(variant, k) && canonicalJson(variant[k]) === canonicalJson(v)) &&
        siblings.some((s) => canonicalJson(s.params[k]) !== canonicalJson(v)),
    );
    return {
      id,
      stage,
      kind: entry.fingerprint.kind,
      variant,
      params: Object.fromEntries(varying),
      allParams: params,
      metrics: entry.metrics ?? {},
      outputDigest: entry.outputDigest,
      digest: entry.digest,
      warnings: entry.warnings ?? [],
      outputs: entry.outputs,
    };
  });
}

/** The stages of a result list, in lockfile order, with their instances. */
export function byStage(results: readonly InstanceResult[]): Map<string, InstanceResult[]> {
  const stages = new Map<string, InstanceResult[]>();
  for (const r of results) stages.set(r.stage, [...(stages.get(r.stage) ?? []), r]);
  return stages;
}

/** A stage's replicate groups, for stages whose variants carry every replicate key. */
export function replicateGroups(results: readonly InstanceResult[], replicates: readonly string[]): ReplicateGroup[] | undefined {
  if (replicates.length === 0 || results.length === 0) return undefined;
  if (!results.every((r) => replicates.every((k) => Object.hasOwn(r.variant, k)))) return undefined;
  const metrics = [...new Set(results.flatMap((r) => Object.keys(r.metrics)))];
  return aggregateReplicates(results, replicates, metrics);
}

/**
 * A pipeline's name and `replicates:`, read without validating the rest: a pipeline at
 * another git revision, or one with an error today, need not load with today's stage kinds.
 */
export function pipelineHeader(pipelineText: string): { name?: string; replicates: string[] } {
  try {
    const doc = yaml().parse(pipelineText) as { pipeline?: unknown; replicates?: unknown } | null;
    const replicates = Array.isArray(doc?.replicates) ? doc.replicates.filter((k): k is string => typeof k === 'string') : [];
    return typeof doc?.pipeline === 'string' ? { name: doc.pipeline, replicates } : { replicates };
  } catch {
    return { replicates: [] };
  }
}
