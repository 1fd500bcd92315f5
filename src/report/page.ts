/**
 * The report page: one self-contained HTML file (images inlined as data URIs, the chart
 * libraries inlined as scripts), so it opens from file:// with no network. Pure: data in,
 * text out, the same bytes for the same data — which is why the run's commit, date and
 * machine are not written into it but read, when the page opens, from the `run-info.js` the
 * runner writes beside the pipeline's artifacts after every run.
 */
import type { ProvenanceEntry, Variant } from '../core/contract.js';
import { significant } from '../core/format.js';
import { aggregateReplicates } from '../core/stats.js';
import { variantWords } from '../ml/figures/titles.js';
import { EMBED_CHARTS_SCRIPT, escapeHtml, inlineScript, specScript } from './html.js';

export interface MetricsRow {
  /** The report input it came from: one table per input. */
  readonly section: string;
  readonly id: string;
  readonly variant: Variant;
  readonly metrics: Readonly<Record<string, number>>;
}

export interface Figure {
  readonly section: string;
  readonly id: string;
  readonly variant: Variant;
  readonly file: string;
  /** What it shows, in a sentence (its caption, before the variant). */
  readonly caption: string;
  readonly png: Buffer;
  /** The Vega-Lite spec the PNG was drawn from, when there is one: drawn live, with tooltips. */
  readonly spec?: unknown;
}

export interface TrainingRun {
  readonly id: string;
  /** The stage's params as it ran (train-vae's run.json). */
  readonly params: Readonly<Record<string, unknown>>;
  readonly backend: string;
  readonly versions: Readonly<Record<string, string>>;
  readonly images: number;
  readonly bestEpoch: number;
}

export interface ReportData {
  readonly title: string;
  readonly metrics: readonly MetricsRow[];
  readonly figures: readonly Figure[];
  readonly training: readonly TrainingRun[];
  readonly provenance: readonly ProvenanceEntry[];
  /** The upstream DAG as text (StageContext.provenanceTree). */
  readonly provenanceTree: string;
  /** Matrix keys whose values are replicates: each metrics table gets a mean ± 95 % CI table. */
  readonly replicates: readonly string[];
  /** Where the runner's run-info.js is, relative to the page. */
  readonly runInfoSrc: string;
  /** vega, vega-lite and vega-embed, as one script. */
  readonly chartScripts: string;
  /** Warnings a reader must see first (a collapsed posterior, say). */
  readonly warnings: readonly string[];
}

/** An id attribute from any text: what TOC links point at. */
const anchor = (text: string) => text.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-|-$/g, '');

type Cell = string | number | undefined;

function table(headers: readonly string[], rows: readonly (readonly Cell[])[], id: string): string {
  const head = headers.map((h, i) => `<th data-column="${i}" title="sort">${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map(
      (row) =>
        `<tr>${row.map((cell) => (typeof cell === 'number' ? `<td class="num" data-value="${cell}">${significant(cell)}</td>` : `<td>${escapeHtml(cell ?? '')}</td>`)).join('')}</tr>`,
    )
    .join('\n');
  return `<div class="scroll"><table class="sortable" id="${id}"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

const STYLE = `body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:0;color:#222;display:grid;grid-template-columns:15rem minmax(0,1fr)}
nav{position:sticky;top:0;align-self:start;height:100vh;overflow:auto;padding:1.2rem 1rem;border-right:1px solid #e4e4e4;font-size:.85rem;box-sizing:border-box}
nav a{display:block;color:#235;text-decoration:none;padding:.12rem 0}nav a.sub{padding-left:.9rem;color:#456}nav a:hover{text-decoration:underline}
main{padding:1rem 2rem 3rem;max-width:1150px}h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2.2rem}
#run-info{color:#444;font-size:.9rem}.warning{background:#fff4d6;border:1px solid #e6c65c;padding:.5rem .8rem;margin:.6rem 0}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.2rem .45rem;white-space:nowrap}
th{background:#f4f4f4;cursor:pointer;user-select:none}th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto;max-width:100%}.shared{font-size:.85rem;color:#444}
figure{display:inline-block;margin:.5rem 1.2rem .8rem 0;vertical-align:top;max-width:100%}figure img{max-width:100%;border:1px solid #eee;image-rendering:pixelated}
figure .chart img{image-rendering:auto}figcaption{font-size:.8rem;color:#444;max-width:36rem}pre{background:#f8f8f8;padding:.8rem;overflow:auto;font-size:.8rem}`;

/** Sorting for every table: click a header; numbers by value, text alphabetically. */
const SORT_SCRIPT = `for(const t of document.querySelectorAll('table.sortable')){for(const th of t.querySelectorAll('th')){th.addEventListener('click',()=>{const i=+th.dataset.column;const asc=!th.classList.contains('asc');t.querySelectorAll('th').forEach(h=>h.classList.remove('asc','desc'));th.classList.add(asc?'asc':'desc');const body=t.tBodies[0];const rows=[...body.rows];const key=r=>{const c=r.cells[i];return c&&c.dataset.value!==undefined?+c.dataset.value:(c?c.textContent:'')};rows.sort((a,b)=>{const x=key(a),y=key(b);const o=typeof x==='number'&&typeof y==='number'?x-y:String(x).localeCompare(String(y));return asc?o:-o});rows.forEach(r=>body.appendChild(r));});}}`;

/** The run's facts, when run-info.js is beside the artifacts (it is not part of this page's bytes). */
const RUN_INFO_SCRIPT = `(function(){const el=document.getElementById('run-info');const r=window.ablateRunInfo;if(!r){el.textContent='Run facts (commit, date, machine) are in run-info.js beside the artifacts, which is not here: this page was opened on its own.';return;}const env=Object.entries(r.environment||{}).map(([k,v])=>k+' '+v.join(' / ')).join(' · ');el.textContent='Last run '+r.time.replace('T',' ').replace(/\\.\\d+Z$/,' UTC')+' at commit '+(r.commit?r.commit.slice(0,10)+(r.dirty?' with uncommitted edits':''):'(not in git)')+' on '+r.machine.cpu+' ('+r.machine.cores+' cores)'+(env?' · '+env:'')+' · '+r.ran.length+' stages ran, '+r.restored.length+' restored from the cache, '+r.upToDate+' up to date.';})();`;

export function renderReport(data: ReportData): string {
  const toc: string[] = [];
  const sections: string[] = [];
  // The body is built after the section's own link, so its subsections' links follow it.
  const section = (id: string, title: string, body: () => string) => {
    toc.push(`<a href="#${id}">${escapeHtml(title)}</a>`);
    sections.push(`<h2 id="${id}">${escapeHtml(title)}</h2>\n${body()}`);
  };
  const sub = (id: string, title: string) => {
    toc.push(`<a class="sub" href="#${id}">${escapeHtml(title)}</a>`);
    return `<h3 id="${id}">${escapeHtml(title)}</h3>`;
  };

  const metricSections = [...new Set(data.metrics.map((r) => r.section))];
  section(
    'metrics',
    'Metrics',
    () =>
      metricSections
        .map((name) =>
          metricsSection(
            name,
            data.metrics.filter((r) => r.section === name),
            data.replicates,
            sub,
          ),
        )
        .join('\n') || '<p>No metrics among the inputs.</p>',
  );

  const figureSections = [...new Set(data.figures.map((f) => f.section))];
  const specs: string[] = [];
  section(
    'figures',
    'Figures',
    () =>
      figureSections
        .map((name) => {
          const items = data.figures
            .filter((f) => f.section === name)
            .map((f) => {
              const id = anchor(`fig-${f.section}-${f.id}-${f.file}`);
              const img = `<img alt="${escapeHtml(`${f.caption} (${f.id})`)}" src="data:image/png;base64,${f.png.toString('base64')}">`;
              if (f.spec !== undefined) specs.push(specScript(`${id}-spec`, f.spec));
              const body = f.spec === undefined ? img : `<div class="chart" data-spec="${id}-spec">${img}</div>`;
              const which = Object.keys(f.variant).length ? `${variantWords(f.variant).join(', ')} (${f.id})` : f.id;
              return `<figure id="${id}">${body}<figcaption>${escapeHtml(f.caption)} — ${escapeHtml(which)}</figcaption></figure>`;
            })
            .join('\n');
          return `${sub(anchor(`figures-${name}`), name)}\n${items}`;
        })
        .join('\n') || '<p>No figures among the inputs.</p>',
  );

  section('training', 'Training runs', () => trainingSection(data.training));
  section('stages', 'Stages', () =>
    table(
      ['stage', 'kind', 'depends on'],
      data.provenance.map((p) => [p.id, p.kind, p.dependsOn.join(', ')]),
      'stages-table',
    ),
  );
  section('pipeline', 'Pipeline', () => `<pre>${escapeHtml(data.provenanceTree)}</pre>`);

  const warnings = data.warnings.map((w) => `<p class="warning">⚠ ${escapeHtml(w)}</p>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(data.title)}</title><style>${STYLE}</style></head>
<body>
<nav><strong>Contents</strong>${toc.join('')}</nav>
<main>
<h1>${escapeHtml(data.title)}</h1>
<p id="run-info"></p>
${warnings}
<p>Made from ${data.provenance.length} upstream stages. Every number and figure here is a function of the pipeline, its code and its data: rerunning it gives this page byte for byte (timings are in <code>.ablate/logs/</code> and the lockfile).</p>
${sections.join('\n')}
</main>
${specs.join('\n')}
<script src="${escapeHtml(data.runInfoSrc)}"></script>
<script>${RUN_INFO_SCRIPT}</script>
<script>${inlineScript(data.chartScripts)}</script>
<script>${SORT_SCRIPT}</script>
<script>${EMBED_CHARTS_SCRIPT}</script>
</body></html>
`;
}

/** A table of an input's runs (per-class columns left out: the per-digit chart shows them), and its replicate summary. */
function metricsSection(
  name: string,
  rows: readonly MetricsRow[],
  replicates: readonly string[],
  sub: (id: string, title: string) => string,
): string {
  const variantKeys = [...new Set(rows.flatMap((r) => Object.keys(r.variant)))];
  const metricKeys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].filter((k) => !k.includes('_class_'));
  const cells = rows.map((r) => [
    r.id,
    ...variantKeys.map((k) => (r.variant[k] === undefined ? '' : String(r.variant[k]))),
    ...metricKeys.map((k) => r.metrics[k]),
  ]);
  let out = `${sub(anchor(`metrics-${name}`), name)}\n${table(['run', ...variantKeys, ...metricKeys], cells, anchor(`metrics-${name}`) + '-table')}`;
  const over = replicates.filter((k) => rows.every((r) => Object.hasOwn(r.variant, k)));
  if (over.length && over.length === replicates.length) {
    const groups = aggregateReplicates(rows, over, metricKeys);
    const keys = variantKeys.filter((k) => !over.includes(k));
    const aggregated = groups.map((g) => [
      ...keys.map((k) => (g.variant[k] === undefined ? '' : String(g.variant[k]))),
      g.runs.length,
      ...metricKeys.map((m) => {
        const s = g.summaries[m];
        return s === null || s === undefined
          ? ''
          : s.ci95 === null
            ? significant(s.mean)
            : `${significant(s.mean)} ± ${significant(s.ci95)}`;
      }),
    ]);
    out += `\n<p class="shared">Mean ± 95 % confidence interval (Student t) over ${escapeHtml(over.join(', '))}:</p>\n${table([...keys, 'n', ...metricKeys], aggregated, anchor(`aggregate-${name}`))}`;
  }
  return out;
}

/** Params every run shares are listed once; the table keeps what differs, so it fits the page. */
function trainingSection(training: readonly TrainingRun[]): string {
  if (training.length === 0) return '<p>No training runs among the inputs.</p>';
  const keys = [...new Set(training.flatMap((t) => Object.keys(t.params)))];
  const same = (k: string) => training.every((t) => JSON.stringify(t.params[k]) === JSON.stringify(training[0]!.params[k]));
  const shared = keys.filter((k) => training.length > 1 && same(k));
  const varying = keys.filter((k) => !shared.includes(k));
  const show = (v: unknown): Cell =>
    typeof v === 'number' ? v : v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const sharedText = shared.length
    ? `<p class="shared">Shared by every run: ${shared.map((k) => `${escapeHtml(k)} ${escapeHtml(String(show(training[0]!.params[k])))}`).join(' · ')}</p>`
    : '';
  return `${sharedText}\n${table(
    ['run', ...varying, 'backend', 'tfjs', 'node', 'images', 'best epoch'],
    training.map((t) => [
      t.id,
      ...varying.map((k) => show(t.params[k])),
      t.backend,
      t.versions['@tensorflow/tfjs-core'] ?? '',
      t.versions.node ?? '',
      t.images,
      t.bestEpoch,
    ]),
    'training-table',
  )}`;
}
