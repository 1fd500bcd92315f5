import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { defineStage, StageError } from '../core/contract.js';
import { aggregateReplicates, type MetricRow, type ReplicateGroup } from '../core/stats.js';

const Params = Type.Object(
  {
    columns: Type.Optional(
      Type.Array(Type.String(), { minItems: 1, description: 'Metrics to keep, in this order (default: every numeric one).' }),
    ),
    sort_by: Type.Optional(Type.String({ description: 'Metric to sort rows by, ascending (its mean when aggregating).' })),
    file: Type.String({ default: 'metrics.json', description: "Metrics file in each gathered variant's output." }),
    over: Type.Optional(
      Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], {
        description:
          'Replicate matrix key(s), e.g. seed: one row per configuration of the other keys, with <metric>_mean, _std (sample), _ci95 (half-width, Student t) and n.',
      }),
    ),
    baseline: Type.Optional(
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), {
        description:
          "Matrix values of the configuration the others are compared with (needs over), e.g. { beta: 1 }: adds <metric>_diff, _diff_ci95 and Welch's t-test _p.",
      }),
    ),
  },
  { additionalProperties: false },
);
type Params = Static<typeof Params>;
type Cell = string | number | boolean | null;

/**
 * One table of every gathered variant's metrics: a row per variant, its matrix values first,
 * then the numeric metrics (all of them, or the `columns` asked for). With `over`, the rows
 * are configurations and the replicates (seeds) are summarized: the table a paper reports.
 */
export default defineStage({
  name: 'compare-metrics',
  description:
    "Gather every variant's metrics.json into one table (CSV and JSON); with `over: seed`, mean ± 95 % CI per configuration and the difference from a baseline.",
  params: Params,
  inputs: { runs: { description: 'every variant of a stage with a metrics file', gather: true } },
  outputs: (p) => ({ table: 'comparison.csv', json: 'comparison.json', ...(p.over === undefined ? {} : { runs: 'runs.csv' }) }),
  async run(ctx) {
    const rows: MetricRow[] = ctx.gather('runs').map((run) => {
      const file = join(run.path, ctx.params.file);
      if (!existsSync(file)) throw new StageError(`${run.id} has no ${ctx.params.file}`);
      const metrics = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      const numbers = Object.fromEntries(Object.entries(metrics).filter((e): e is [string, number] => typeof e[1] === 'number'));
      return { id: run.id, variant: run.variant, metrics: numbers };
    });
    const metricKeys = ctx.params.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))];
    const missing = ctx.params.columns?.filter((c) => rows.every((r) => !(c in r.metrics)));
    if (missing?.length) throw new StageError(`no gathered run has the metric(s) ${missing.join(', ')}`);
    const sortBy = ctx.params.sort_by;
    if (sortBy && !metricKeys.includes(sortBy))
      throw new StageError(`sort_by '${sortBy}' is not one of the columns: ${metricKeys.join(', ')}`);
    if (ctx.params.baseline !== undefined && ctx.params.over === undefined)
      throw new StageError('baseline needs over: the matrix key(s) whose values are replicates (e.g. over: seed)');

    const runsTable = perRunTable(rows, metricKeys, sortBy);
    const table = ctx.params.over === undefined ? runsTable : aggregatedTable(rows, metricKeys, ctx.params);
    writeFileSync(join(ctx.outDir, 'comparison.csv'), toCsv(table));
    if (ctx.params.over !== undefined) writeFileSync(join(ctx.outDir, 'runs.csv'), toCsv(runsTable));
    const json = {
      columns: table.columns,
      ...(ctx.params.over === undefined ? {} : { over: replicateKeys(ctx.params), baseline: ctx.params.baseline ?? null }),
      rows: table.rows.map((cells) => Object.fromEntries(table.columns.map((c, i) => [c, cells[i] ?? null]))),
    };
    writeFileSync(join(ctx.outDir, 'comparison.json'), JSON.stringify(json, null, 2) + '\n');
  },
});

interface Table {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
}

function replicateKeys(params: Params): string[] {
  return params.over === undefined ? [] : typeof params.over === 'string' ? [params.over] : params.over;
}

function perRunTable(rows: readonly MetricRow[], metricKeys: readonly string[], sortBy: string | undefined): Table {
  const variantKeys = [...new Set(rows.flatMap((r) => Object.keys(r.variant)))];
  const sorted = sortBy ? [...rows].sort((a, b) => (a.metrics[sortBy] ?? Infinity) - (b.metrics[sortBy] ?? Infinity)) : rows;
  return {
    columns: ['id', ...variantKeys, ...metricKeys],
    rows: sorted.map((r) => [r.id, ...variantKeys.map((k) => r.variant[k] ?? null), ...metricKeys.map((k) => r.metrics[k] ?? null)]),
  };
}

/** Per configuration: n, then per metric mean, std, ci95 (and diff, diff_ci95, p against the baseline). */
function aggregatedTable(rows: readonly MetricRow[], metricKeys: readonly string[], params: Params): Table {
  let groups: ReplicateGroup[];
  try {
    groups = aggregateReplicates(rows, replicateKeys(params), metricKeys, params.baseline);
  } catch (error) {
    throw new StageError((error as Error).message);
  }
  if (params.sort_by) {
    const by = params.sort_by;
    groups.sort((a, b) => (a.summaries[by]?.mean ?? Infinity) - (b.summaries[by]?.mean ?? Infinity));
  }
  const groupKeys = [...new Set(groups.flatMap((g) => Object.keys(g.variant)))];
  const withBaseline = params.baseline !== undefined;
  const stats = (m: string) => [`${m}_mean`, `${m}_std`, `${m}_ci95`, ...(withBaseline ? [`${m}_diff`, `${m}_diff_ci95`, `${m}_p`] : [])];
  return {
    columns: [...groupKeys, 'n', ...metricKeys.flatMap(stats)],
    rows: groups.map((g) => [
      ...groupKeys.map((k) => g.variant[k] ?? null),
      g.runs.length,
      ...metricKeys.flatMap((m) => {
        const s = g.summaries[m];
        const d = g.vsBaseline?.[m];
        return [
          s?.mean ?? null,
          s?.std ?? null,
          s?.ci95 ?? null,
          ...(withBaseline ? [d?.diff ?? null, d?.ci95 ?? null, d?.p ?? null] : []),
        ];
      }),
    ]),
  };
}

function toCsv(table: Table): string {
  const quote = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const cell = (v: Cell) => (v === null ? '' : String(v));
  return [table.columns.map(quote).join(','), ...table.rows.map((r) => r.map((v) => quote(cell(v))).join(','))].join('\n') + '\n';
}
