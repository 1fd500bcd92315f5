import { canonicalJson } from './hashing.js';
import type { InstanceResult } from './results.js';

/** One metric of one instance at two revisions; `change` is new − old, `relative` that over |old|. */
export interface MetricChange {
  readonly metric: string;
  readonly old: number | null;
  readonly new: number | null;
  readonly change: number | null;
  readonly relative: number | null;
}

export interface ParamChange {
  readonly name: string;
  readonly old: unknown;
  readonly new: unknown;
}

/**
 * An instance between two lockfiles. `changed` covers a new fingerprint (code, params, inputs,
 * machine) as well as new output bytes; `metrics` lists every metric either side has, so a
 * script sees the unchanged ones too.
 */
export interface InstanceDiff {
  readonly id: string;
  readonly stage: string;
  readonly status: 'added' | 'removed' | 'changed' | 'unchanged';
  readonly params: readonly ParamChange[];
  readonly metrics: readonly MetricChange[];
  /** Same fingerprint or not: a changed one ran under other code, params, inputs or machine. */
  readonly fingerprintChanged: boolean;
  /** Same output bytes or not. */
  readonly outputsChanged: boolean;
}

/** Every instance of either side: the new side's order, then what only the old side had. */
export function diffResults(before: readonly InstanceResult[], after: readonly InstanceResult[]): InstanceDiff[] {
  const old = new Map(before.map((r) => [r.id, r]));
  const now = new Map(after.map((r) => [r.id, r]));
  const ids = [...now.keys(), ...[...old.keys()].filter((id) => !now.has(id))];
  return ids.map((id) => {
    const a = old.get(id);
    const b = now.get(id);
    const stage = (b ?? a)!.stage;
    const metrics = metricChanges(a?.metrics ?? {}, b?.metrics ?? {});
    if (!a || !b) {
      return { id, stage, status: a ? 'removed' : 'added', params: [], metrics, fingerprintChanged: true, outputsChanged: true };
    }
    const names = [...new Set([...Object.keys(a.allParams), ...Object.keys(b.allParams)])];
    const params = names
      .filter((n) => canonicalJson(a.allParams[n] ?? null) !== canonicalJson(b.allParams[n] ?? null))
      .map((name) => ({ name, old: a.allParams[name], new: b.allParams[name] }));
    const fingerprintChanged = a.digest !== b.digest;
    const outputsChanged = a.outputDigest !== b.outputDigest;
    const status = fingerprintChanged || outputsChanged || metrics.some((m) => m.change !== 0) ? 'changed' : 'unchanged';
    return { id, stage, status, params, metrics, fingerprintChanged, outputsChanged };
  });
}

function metricChanges(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): MetricChange[] {
  const names = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  return names.map((metric) => {
    const old = a[metric] ?? null;
    const next = b[metric] ?? null;
    const change = old === null || next === null ? null : next - old;
    const relative = change === null || old === 0 ? null : change / Math.abs(old!);
    return { metric, old, new: next, change, relative };
  });
}
