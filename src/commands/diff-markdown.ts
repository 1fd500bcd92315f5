/**
 * `ablate diff BASE --md`: what changed between two revisions as GitHub-flavoured Markdown, the
 * body of a pull-request comment (docs/ci/ post it). Per lockfile, a table of the instances
 * whose metrics or params changed; for a stage whose variants replicate a configuration over
 * seeds, one row per configuration and metric instead, with each side's mean ± 95 % CI and
 * whether the change of the mean is outside its 95 % interval (Welch's, as `compare-metrics`
 * and `show` use): a reviewer sees at once which moves are more than seed noise.
 */
import { summarize, welch, type Summary } from '../core/stats.js';
import type { InstanceDiff } from '../runner/results-diff.js';
import type { InstanceResult } from '../runner/results.js';
import { changeRows, type LockfileDiff, type Side } from './diff.js';
import { cellText, keyText } from './table.js';

/** A configuration of a replicated stage at both sides: the values of each metric over its replicates. */
interface ReplicateComparison {
  readonly stage: string;
  /** `beta=4`: the variant without the replicate keys. */
  readonly configuration: string;
  readonly metric: string;
  readonly before: readonly number[];
  readonly after: readonly number[];
}

/**
 * A change a reader can see: old and new differ at the four significant digits the table
 * prints. A retrained model's metrics move in the 8th digit whenever a kernel's summation
 * order does; listing those would bury the changes that matter, so they are only counted.
 */
function visible(old: number | null, next: number | null): boolean {
  return old === null || next === null ? old !== next : cellText(old) !== cellText(next);
}

/** Metric changes left out as invisible, and the largest of them relative to the old value. */
interface Hidden {
  count: number;
  largest: number;
}

export function diffMarkdown(
  a: Side,
  b: Side,
  diffs: readonly LockfileDiff[],
  replicatesOf: (lockfile: string) => readonly string[],
): string {
  const out = [`### ablate diff: ${a.label} → ${b.label}`];
  const hidden: Hidden = { count: 0, largest: 0 };
  const changedAnywhere = diffs.some((d) => d.instances.some((i) => i.status !== 'unchanged'));
  const quoted = (ds: readonly LockfileDiff[]) => ds.map((d) => `\`${d.lockfile}\``).join(', ');
  if (!changedAnywhere) out.push('', `No lockfile changed (${quoted(diffs) || 'none found'}).`);
  for (const d of diffs) {
    const changed = d.instances.filter((i) => i.status !== 'unchanged');
    if (!changed.length) continue;
    out.push('', `**\`${d.lockfile}\`**: ${changed.length} of ${d.instances.length} instances changed`);
    const replicated = replicatedStages(d, replicatesOf(d.lockfile));
    const single = changed.filter((i) => !replicated.has(i.stage));
    if (single.length)
      out.push(
        '',
        markdownTable(
          ['instance', 'what', a.label, b.label, 'change', 'relative'],
          single.flatMap((i) => visibleRows(i, hidden).map((row, n) => (n === 0 ? [`\`${row[0]}\``, ...row.slice(1)] : row))),
        ),
      );
    const comparisons = [...replicated]
      .flatMap((stage) => replicateComparisons(d, stage, replicatesOf(d.lockfile)))
      .filter((c) => {
        const [before, after] = [c.before, c.after].map((v) => (v.length ? summarize(v).mean : null));
        if (visible(before!, after!) || c.before.length !== c.after.length) return true;
        hide(hidden, before!, after!);
        return false;
      });
    const params = [
      ...new Set(
        changed
          .filter((i) => replicated.has(i.stage))
          .flatMap((i) => i.params.map((p) => `${i.stage}: param ${p.name} ${keyText(p.old)} → ${keyText(p.new)}`)),
      ),
    ];
    const quiet = [...replicated].filter((stage) => changed.some((i) => i.stage === stage) && !comparisons.some((c) => c.stage === stage));
    const notes = [
      ...params,
      ...quiet.map(
        (stage) => `${stage}: ${changed.filter((i) => i.stage === stage).length} instances changed; no mean moved at 4 significant digits`,
      ),
    ];
    if (notes.length) out.push('', ...notes.map((n) => `- ${n}`));
    if (comparisons.length) {
      const over = replicatesOf(d.lockfile).join(', ');
      out.push(
        '',
        `Replicated over ${over}: mean ± 95 % CI (n); the change is outside its 95 % CI (Welch) when the interval excludes 0.`,
        '',
        markdownTable(
          ['stage', 'configuration', 'metric', a.label, b.label, 'change', 'relative', '95 % CI of change', 'outside'],
          comparisons.map(comparisonRow),
        ),
      );
    }
  }
  const unchanged = diffs.filter((d) => d.instances.every((i) => i.status === 'unchanged'));
  if (changedAnywhere && unchanged.length) out.push('', `No change: ${quoted(unchanged)}.`);
  if (hidden.count)
    out.push(
      '',
      `_${hidden.count} metric change${hidden.count === 1 ? '' : 's'} too small to show at 4 significant digits left out (largest ${cellText(hidden.largest * 100)} %); \`ablate diff --json\` lists every one._`,
    );
  return out.join('\n') + '\n';
}

function hide(hidden: Hidden, old: number, next: number): void {
  hidden.count++;
  if (old !== 0) hidden.largest = Math.max(hidden.largest, Math.abs((next - old) / old));
}

/** changeRows of the instance without its invisible metric changes (counted in `hidden`). */
function visibleRows(i: InstanceDiff, hidden: Hidden): string[][] {
  if (i.status !== 'changed') return changeRows(i);
  const invisible = i.metrics.filter((m) => m.change !== 0 && !visible(m.old, m.new));
  for (const m of invisible) hide(hidden, m.old!, m.new!);
  const rows = changeRows({ ...i, metrics: i.metrics.filter((m) => !invisible.includes(m)) });
  if (invisible.length && !i.params.length && rows.length === 1 && !i.metrics.some((m) => m.change !== 0 && visible(m.old, m.new)))
    return [[i.id, 'metrics moved beyond 4 significant digits only', '', '', '', '']];
  return rows;
}

/** Stages of this lockfile whose every instance, on both sides, carries every replicate key. */
function replicatedStages(d: LockfileDiff, replicates: readonly string[]): Set<string> {
  if (!replicates.length) return new Set();
  const stages = new Map<string, InstanceResult[]>();
  for (const r of [...d.before, ...d.after]) stages.set(r.stage, [...(stages.get(r.stage) ?? []), r]);
  return new Set(
    [...stages].filter(([, rs]) => rs.every((r) => replicates.every((k) => Object.hasOwn(r.variant, k)))).map(([stage]) => stage),
  );
}

/** Each configuration of `stage` with a changed instance, and each metric of it whose values moved. */
function replicateComparisons(d: LockfileDiff, stage: string, replicates: readonly string[]): ReplicateComparison[] {
  const changed = new Set(d.instances.filter((i: InstanceDiff) => i.stage === stage && i.status !== 'unchanged').map((i) => i.id));
  const configuration = (r: InstanceResult) =>
    Object.entries(r.variant)
      .filter(([k]) => !replicates.includes(k))
      .map(([k, v]) => `${k}=${keyText(v)}`)
      .join(',');
  const groups = new Map<string, { before: InstanceResult[]; after: InstanceResult[]; changed: boolean }>();
  const add = (side: 'before' | 'after', r: InstanceResult) => {
    if (r.stage !== stage) return;
    const key = configuration(r);
    const group = groups.get(key) ?? { before: [], after: [], changed: false };
    group[side].push(r);
    group.changed ||= changed.has(r.id);
    groups.set(key, group);
  };
  for (const r of d.before) add('before', r);
  for (const r of d.after) add('after', r);
  return [...groups].flatMap(([key, g]) => {
    if (!g.changed) return [];
    const metrics = [...new Set([...g.after, ...g.before].flatMap((r) => Object.keys(r.metrics)))];
    const values = (rs: readonly InstanceResult[], m: string) => rs.map((r) => r.metrics[m]).filter((v): v is number => v !== undefined);
    return metrics
      .map((metric) => ({ stage, configuration: key || '(all)', metric, before: values(g.before, metric), after: values(g.after, metric) }))
      .filter((c) => c.before.join() !== c.after.join());
  });
}

function comparisonRow(c: ReplicateComparison): string[] {
  const before = c.before.length ? summarize(c.before) : undefined;
  const after = c.after.length ? summarize(c.after) : undefined;
  const change = before && after ? after.mean - before.mean : undefined;
  const relative = change !== undefined && before!.mean !== 0 ? change / Math.abs(before!.mean) : undefined;
  const difference = welch(c.after, c.before);
  const outside = difference ? (Math.abs(difference.diff) > difference.ci95 ? '**yes**' : 'no') : 'n/a (needs 2 per side)';
  return [
    c.stage,
    c.configuration,
    c.metric,
    summaryText(before),
    summaryText(after),
    change === undefined ? '' : signed(change),
    relative === undefined ? '' : `${signed(relative * 100)} %`,
    difference ? `${signed(difference.diff)} ± ${cellText(difference.ci95)}` : '',
    outside,
  ];
}

function summaryText(s: Summary | undefined): string {
  if (!s) return '';
  return `${cellText(s.mean)}${s.ci95 === null ? '' : ` ± ${cellText(s.ci95)}`} (${s.n})`;
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${cellText(value)}`;
}

/** A GitHub-flavoured Markdown table; `|` and newlines in cells escaped so a value cannot break a row. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const numeric = header.map((_, c) => rows.length > 0 && rows.every((r) => r[c] === '' || /^[-+]?[\d.]/.test(r[c] ?? '')));
  return [line(header), `|${numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`, ...rows.map(line)].join('\n');
}
