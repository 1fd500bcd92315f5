import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { defineStage, StageError } from '../core/contract.js';

/**
 * One table of every gathered variant's metrics: a row per variant, its matrix values
 * first, then the numeric metrics (all of them, or the `columns` asked for).
 */
export default defineStage({
  name: 'compare-metrics',
  description: "Gather every variant's metrics.json into one table (CSV and JSON), sorted by a metric if asked.",
  params: Type.Object(
    {
      columns: Type.Optional(
        Type.Array(Type.String(), { minItems: 1, description: 'Metrics to keep, in this order (default: every numeric one).' }),
      ),
      sort_by: Type.Optional(Type.String({ description: 'Metric to sort rows by, ascending.' })),
      file: Type.String({ default: 'metrics.json', description: "Metrics file in each gathered variant's output." }),
    },
    { additionalProperties: false },
  ),
  inputs: { runs: { description: 'every variant of a stage with a metrics file', gather: true } },
  outputs: () => ({ table: 'comparison.csv', json: 'comparison.json' }),
  async run(ctx) {
    const runs = ctx.gather('runs');
    const rows = runs.map((run) => {
      const file = join(run.path, ctx.params.file);
      if (!existsSync(file)) throw new StageError(`${run.id} has no ${ctx.params.file}`);
      const metrics = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      const numbers = Object.fromEntries(Object.entries(metrics).filter((e): e is [string, number] => typeof e[1] === 'number'));
      return { id: run.id, variant: run.variant, metrics: numbers };
    });
    const variantKeys = [...new Set(rows.flatMap((r) => Object.keys(r.variant)))];
    const metricKeys = ctx.params.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))];
    const missing = ctx.params.columns?.filter((c) => rows.every((r) => !(c in r.metrics)));
    if (missing?.length) throw new StageError(`no gathered run has the metric(s) ${missing.join(', ')}`);
    const sortBy = ctx.params.sort_by;
    if (sortBy) {
      if (!metricKeys.includes(sortBy)) throw new StageError(`sort_by '${sortBy}' is not one of the columns: ${metricKeys.join(', ')}`);
      rows.sort((a, b) => (a.metrics[sortBy] ?? Infinity) - (b.metrics[sortBy] ?? Infinity));
    }
    const header = ['id', ...variantKeys, ...metricKeys];
    const lines = rows.map((r) => [
      r.id,
      ...variantKeys.map((k) => String(r.variant[k] ?? '')),
      ...metricKeys.map((k) => (r.metrics[k] === undefined ? '' : String(r.metrics[k]))),
    ]);
    const quote = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
    writeFileSync(join(ctx.outDir, 'comparison.csv'), [header, ...lines].map((l) => l.map(quote).join(',')).join('\n') + '\n');
    writeFileSync(
      join(ctx.outDir, 'comparison.json'),
      JSON.stringify(
        {
          columns: header,
          rows: rows.map((r) => ({ id: r.id, ...r.variant, ...Object.fromEntries(metricKeys.map((k) => [k, r.metrics[k] ?? null])) })),
        },
        null,
        2,
      ) + '\n',
    );
  },
});
