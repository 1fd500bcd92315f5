/**
 * The report page: one self-contained HTML file (images inlined as data URIs, no scripts or
 * styles from elsewhere), so it opens from file:// with no network. Pure: data in, text out.
 */
import type { ProvenanceEntry, Variant } from '../core/contract.js';

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
  readonly file: string;
  readonly png: Buffer;
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
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function formatNumber(value: number | undefined): string {
  if (value === undefined) return '';
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(4);
}

function table(headers: readonly string[], rows: readonly (readonly (string | number | undefined)[])[], id: string): string {
  const head = headers.map((h, i) => `<th data-column="${i}" title="sort">${escape(h)}</th>`).join('');
  const body = rows
    .map(
      (row) =>
        `<tr>${row.map((cell) => (typeof cell === 'number' ? `<td class="num" data-value="${cell}">${formatNumber(cell)}</td>` : `<td>${escape(cell ?? '')}</td>`)).join('')}</tr>`,
    )
    .join('\n');
  return `<table class="sortable" id="${id}"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const STYLE = `body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2.2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f4f4f4;cursor:pointer;user-select:none}th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}figure img{max-width:100%;border:1px solid #eee;image-rendering:pixelated}
figcaption{font-size:.8rem;color:#555}pre{background:#f8f8f8;padding:.8rem;overflow:auto;font-size:.8rem}.scroll{overflow-x:auto}`;

/** Sorting for every table: click a header; numbers by value, text alphabetically. */
const SCRIPT = `for(const t of document.querySelectorAll('table.sortable')){for(const th of t.querySelectorAll('th')){th.addEventListener('click',()=>{const i=+th.dataset.column;const asc=!th.classList.contains('asc');t.querySelectorAll('th').forEach(h=>h.classList.remove('asc','desc'));th.classList.add(asc?'asc':'desc');const body=t.tBodies[0];const rows=[...body.rows];const key=r=>{const c=r.cells[i];return c&&c.dataset.value!==undefined?+c.dataset.value:(c?c.textContent:'')};rows.sort((a,b)=>{const x=key(a),y=key(b);const o=typeof x==='number'&&typeof y==='number'?x-y:String(x).localeCompare(String(y));return asc?o:-o});rows.forEach(r=>body.appendChild(r));});}}`;

export function renderReport(data: ReportData): string {
  const metricSections = [...new Set(data.metrics.map((r) => r.section))];
  const metricsTables = metricSections
    .map((section) => {
      const rows = data.metrics.filter((r) => r.section === section);
      const variantKeys = [...new Set(rows.flatMap((r) => Object.keys(r.variant)))];
      const metricKeys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].filter((k) => !k.includes('_class_'));
      const cells = rows.map((r) => [
        r.id,
        ...variantKeys.map((k) => (r.variant[k] === undefined ? '' : String(r.variant[k]))),
        ...metricKeys.map((k) => r.metrics[k]),
      ]);
      return `<h3>${escape(section)}</h3>\n<div class="scroll">${table(['run', ...variantKeys, ...metricKeys], cells, `metrics-${section}`)}</div>`;
    })
    .join('\n');
  const sections = [...new Set(data.figures.map((f) => f.section))];
  const figures = sections
    .map((section) => {
      const items = data.figures
        .filter((f) => f.section === section)
        .map(
          (f) =>
            `<figure><img alt="${escape(`${f.id} ${f.file}`)}" src="data:image/png;base64,${f.png.toString('base64')}"><figcaption>${escape(f.id)} · ${escape(f.file)}</figcaption></figure>`,
        )
        .join('\n');
      return `<h3>${escape(section)}</h3>\n${items}`;
    })
    .join('\n');
  const paramKeys = [...new Set(data.training.flatMap((t) => Object.keys(t.params)))].filter((k) => k !== 'backend');
  const cell = (v: unknown) => (typeof v === 'number' ? v : v === undefined ? '' : String(v));
  const training = data.training.length
    ? `<div class="scroll">${table(
        ['run', ...paramKeys, 'backend', 'tfjs', 'node', 'images', 'best epoch'],
        data.training.map((t) => [
          t.id,
          ...paramKeys.map((k) => cell(t.params[k])),
          t.backend,
          t.versions['@tensorflow/tfjs-core'] ?? '',
          t.versions.node ?? '',
          t.images,
          t.bestEpoch,
        ]),
        'training',
      )}</div>`
    : '<p>No training runs among the inputs.</p>';
  const stages = table(
    ['stage', 'kind', 'depends on'],
    data.provenance.map((p) => [p.id, p.kind, p.dependsOn.join(', ')]),
    'stages',
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escape(data.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escape(data.title)}</h1>
<p>Made from ${data.provenance.length} upstream stages. Every number and figure here is a function of the pipeline, its code and its data: rerunning it gives this page byte for byte (timings are in <code>.ablate/logs/</code> and the lockfile).</p>
<h2>Metrics</h2>
${metricsTables || '<p>No metrics among the inputs.</p>'}
<h2>Figures</h2>
${figures || '<p>No figures among the inputs.</p>'}
<h2>Training runs: parameters, backend, time</h2>
${training}
<h2>Stages</h2>
${stages}
<h2>Pipeline</h2>
<pre>${escape(data.provenanceTree)}</pre>
<script>${SCRIPT}</script>
</body></html>
`;
}
