import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { CacheStore } from '../runner/caching/store.js';
import type { InstanceResult } from '../runner/results.js';
import { workspaceAt } from '../runner/workspace.js';
import { chartLibraries } from '../report/chart-scripts.js';
import { EMBED_CHARTS_SCRIPT, escapeHtml, inlineScript, specScript } from '../report/html.js';
import { changeRows, type LockfileDiff, type Side } from './diff.js';

/** Metric panels per lockfile: enough to see what moved, few enough to read. */
const MOST_METRIC_PANELS = 8;

/**
 * `ablate diff --html OUT`: one offline page with, per lockfile, the changes as a table, the
 * changed metrics of both revisions side by side, and the training curves of both overlaid.
 * Curves come from the cache (a lockfile holds digests, not files): a revision whose objects
 * this cache does not have is listed, not drawn. Returns those missing `instance (revision)`s.
 */
export async function writeDiffPage(out: string, root: string, a: Side, b: Side, diffs: readonly LockfileDiff[]): Promise<string[]> {
  const store = new CacheStore(workspaceAt(root).cacheDir);
  const missing: string[] = [];
  const specs: { id: string; spec: unknown }[] = [];
  const sections = diffs.map((d, n) => {
    const changed = d.instances.filter((i) => i.status !== 'unchanged');
    if (changed.length === 0) return `<h2>${escapeHtml(d.lockfile)}</h2><p>No change (${d.instances.length} instances).</p>`;
    const rows = changed.flatMap(changeRows);
    const table = `<table><tr>${['instance', 'what', a.label, b.label, 'change', 'relative'].map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>${rows
      .map((r) => `<tr>${r.map((c, k) => `<td${k >= 2 ? ' class="num"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`)
      .join('')}</table>`;
    const metricsSpec = metricsChart(
      changed.map((i) => i.id),
      d,
      a,
      b,
    );
    if (metricsSpec) specs.push({ id: `metrics-${n}`, spec: metricsSpec });
    const curves = curvesChart(store, d, a, b, missing);
    if (curves) specs.push({ id: `curves-${n}`, spec: curves });
    return `<h2>${escapeHtml(d.lockfile)}</h2>${table}${metricsSpec ? `<div class="chart" id="metrics-${n}" data-spec="metrics-${n}-spec"></div>` : ''}${curves ? `<div class="chart" id="curves-${n}" data-spec="curves-${n}-spec"></div>` : ''}`;
  });
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ablate diff ${escapeHtml(a.label)} → ${escapeHtml(b.label)}</title>
<style>body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}table{border-collapse:collapse;font-size:.8rem}th,td{border:1px solid #ddd;padding:.2rem .45rem}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}.chart{margin:1rem 0}.missing{color:#8a5a00}</style></head><body>
<h1>ablate diff: ${escapeHtml(a.label)} → ${escapeHtml(b.label)}</h1>
${missing.length ? `<p class="missing">Not in this cache, so not drawn: ${escapeHtml(missing.join(', '))}.</p>` : ''}
${sections.join('\n')}
${specs.map((s) => specScript(`${s.id}-spec`, s.spec)).join('\n')}
<script>${inlineScript(chartLibraries())}</script>
<script>${EMBED_CHARTS_SCRIPT}</script>
</body></html>
`;
  writeFileSync(out, html);
  return missing;
}

/** Each changed metric of each changed instance, one bar per revision, a panel per metric. */
function metricsChart(ids: readonly string[], d: LockfileDiff, a: Side, b: Side): unknown {
  const byId = (results: readonly InstanceResult[]) => new Map(results.map((r) => [r.id, r]));
  const [before, after] = [byId(d.before), byId(d.after)];
  const metrics = [
    ...new Set(d.instances.filter((i) => ids.includes(i.id)).flatMap((i) => i.metrics.filter((m) => m.change !== 0).map((m) => m.metric))),
  ].slice(0, MOST_METRIC_PANELS);
  const values = ids.flatMap((id) =>
    metrics.flatMap((metric) =>
      [
        [a.label, before.get(id)?.metrics[metric]],
        [b.label, after.get(id)?.metrics[metric]],
      ]
        .filter((e): e is [string, number] => typeof e[1] === 'number')
        .map(([revision, value]) => ({ instance: id, metric, revision, value })),
    ),
  );
  if (values.length === 0) return undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Changed metrics',
    data: { values },
    facet: { column: { field: 'metric', title: null, sort: metrics } },
    spec: {
      width: 220,
      height: 180,
      // Points on an axis that need not start at zero: a 0.2 % change stays visible.
      mark: { type: 'point', filled: true, size: 90, tooltip: true },
      encoding: {
        x: { field: 'instance', type: 'nominal', title: null, axis: { labelAngle: -30 } },
        xOffset: { field: 'revision', sort: [a.label, b.label] },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'revision', title: null, sort: [a.label, b.label] },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
}

/** Loss per epoch of every instance with a history.json output, both revisions overlaid. */
function curvesChart(store: CacheStore, d: LockfileDiff, a: Side, b: Side, missing: string[]): unknown {
  const values: Record<string, unknown>[] = [];
  for (const [side, results] of [
    [a, d.before],
    [b, d.after],
  ] as const) {
    for (const r of results) {
      const entry = r.outputs['history.json'];
      if (!entry) continue;
      const file = store.objectPath(entry.digest);
      if (!existsSync(file)) {
        missing.push(`${r.id} (${side.label})`);
        continue;
      }
      const history = JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>[];
      for (const e of history) {
        for (const [split, key] of [
          ['train', 'loss'],
          ['validation', 'val_loss'],
        ] as const) {
          if (typeof e[key] === 'number') values.push({ instance: r.id, revision: side.label, split, epoch: e.epoch, loss: e[key] });
        }
      }
    }
  }
  if (values.length === 0) return undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Training curves, both revisions',
    data: { values },
    facet: { column: { field: 'instance', title: null } },
    spec: {
      width: 240,
      height: 180,
      mark: { type: 'line', point: true, tooltip: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1 } },
        y: { field: 'loss', type: 'quantitative', title: 'loss per image', scale: { zero: false } },
        color: { field: 'revision', title: null, sort: [a.label, b.label] },
        strokeDash: { field: 'split', title: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}
