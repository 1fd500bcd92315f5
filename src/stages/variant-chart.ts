import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { defineStage, StageError, type GatheredInput } from '../core/contract.js';
import { significant } from '../core/format.js';

/**
 * One chart across the variants of an ablation, from their metrics.json files:
 *   x: digit      per-class metrics (`<metric>_class_<c>`), e.g. seed 002's MSE and PSNR per digit
 *                 grouped by latent dim (color: latent_dim);
 *   x: <key>      a matrix key, e.g. test −ELBO vs latent_dim (mark: line), BCE and KL vs beta
 *                 (the β trade-off), or VAE vs AE (x: model).
 * Several metrics make one panel each.
 */
export default defineStage({
  name: 'variant-chart',
  description: 'Bar or line chart of metrics across gathered variants, optionally per digit (PNG + Vega-Lite spec).',
  params: Type.Object(
    {
      x: Type.String({ description: "'digit' for per-class metrics, or a matrix key of the gathered stage" }),
      metrics: Type.Array(Type.String(), { minItems: 1 }),
      color: Type.Optional(Type.String({ description: 'Matrix key that tells series apart (default: the variant id).' })),
      mark: Type.Union([Type.Literal('bar'), Type.Literal('line')], { default: 'bar' }),
      title: Type.Optional(Type.String()),
      file: Type.String({ default: 'metrics.json' }),
    },
    { additionalProperties: false },
  ),
  inputs: {
    runs: { description: 'every variant of a stage with a metrics file', gather: true, optional: true },
    table: {
      description: "a compare-metrics stage's output; aggregated over replicates (over: seed), bars and points get 95 % CI error bars",
      optional: true,
    },
  },
  outputs: () => ({ figure: 'chart.png', spec: 'chart.vl.json', svg: 'chart.svg' }),
  async run(ctx) {
    const { renderChart } = await import('../ml/figures/chart.js');
    const { x, metrics, color, mark } = ctx.params;
    if (ctx.hasInput('runs') === ctx.hasInput('table'))
      throw new StageError('bind exactly one input: runs (every variant, e.g. "eval[*]") or table (a compare-metrics stage)');
    const sources = ctx.hasInput('runs') ? gatheredRuns(ctx.gather('runs'), ctx.params.file) : tableRows(ctx.input('table'));
    const values: Point[] = [];
    for (const source of sources) {
      if (color !== undefined && !(color in source.variant))
        throw new StageError(`color: '${color}' is not a matrix key of ${source.id} (keys: ${Object.keys(source.variant).join(', ')})`);
      for (const metric of metrics) {
        // Without `color`: per digit each run is a series; a line joins all its points; bars are coloured by x.
        const series =
          color !== undefined
            ? String(source.variant[color])
            : x === 'digit'
              ? source.id
              : mark === 'line'
                ? metric
                : String(source.variant[x] ?? source.id);
        if (x === 'digit') {
          // As many classes as the evaluation had: evaluate writes <metric>_class_0, _1, … for each.
          for (let c = 0; ; c++) {
            const v = source.value(`${metric}_class_${c}`);
            if (v === undefined && c === 0) throw new StageError(`${source.id}: no per-class metric ${metric}_class_0 in ${source.file}`);
            if (v === undefined) break;
            values.push({ x: String(c), metric, series, ...v });
          }
        } else {
          if (!(x in source.variant))
            throw new StageError(
              `x: '${x}' is not a matrix key of ${source.id} (keys: ${Object.keys(source.variant).join(', ') || 'none'}); or use x: digit`,
            );
          const v = source.value(metric);
          if (v === undefined)
            throw new StageError(`${source.id}: no metric '${metric}' in ${source.file} (has: ${source.names().join(', ')})`);
          values.push({ x: source.variant[x]!, metric, series, ...v });
        }
      }
    }
    const numericX = x !== 'digit' && values.every((v) => typeof v.x === 'number');
    const withCi = values.some((v) => v.ci !== undefined);
    const data = values.map((v) => ({
      ...v,
      panel: metricLabel(v.metric),
      lo: v.ci === undefined ? v.value : v.value - v.ci,
      hi: v.ci === undefined ? v.value : v.value + v.ci,
      label: v.ci === undefined ? significant(v.value) : `${significant(v.value)} ± ${significant(v.ci)}`,
    }));
    const xTitle = x === 'digit' ? 'digit' : x;
    const xEncoding = {
      field: 'x',
      type: mark === 'line' && numericX ? 'quantitative' : 'ordinal',
      title: xTitle,
      sort: 'ascending',
      axis: { labelAngle: 0 },
    };
    const offset =
      mark === 'bar' && (color !== undefined || x === 'digit') ? { xOffset: { field: 'series', type: 'nominal', sort: 'ascending' } } : {};
    const colorEncoding = {
      field: 'series',
      type: 'nominal',
      title: color ?? (x === 'digit' ? 'run' : mark === 'line' ? 'metric' : x),
      sort: 'ascending',
    };
    // Bars start at zero (their length is the value), so close values look equal: each bar
    // carries its number, unless a bar per digit and series would make them unreadable.
    const labelBars = mark === 'bar' && x !== 'digit';
    const panel = {
      width: x === 'digit' ? 360 : 260,
      height: 220,
      encoding: { x: xEncoding, ...offset },
      layer: [
        {
          mark: mark === 'line' ? { type: 'line', point: true } : { type: 'bar' },
          encoding: {
            y: { field: 'value', type: 'quantitative', title: null, scale: { zero: mark === 'bar' } },
            color: colorEncoding,
            tooltip: [
              { field: 'series', title: colorEncoding.title },
              { field: 'x', title: xTitle },
              { field: 'label', title: withCi ? 'mean ± 95 % CI' : 'value' },
            ],
          },
        },
        ...(withCi
          ? [
              {
                mark: { type: 'errorbar', ticks: true, size: 14, thickness: 1.5, color: 'black' },
                encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
              },
            ]
          : []),
        ...(labelBars
          ? [
              {
                mark: { type: 'text', dy: -6, fontSize: 10 },
                encoding: { y: { field: 'hi', type: 'quantitative' }, text: { field: 'label' } },
              },
            ]
          : []),
      ],
    };
    await renderChart(
      {
        title: ctx.params.title ?? `${metrics.join(', ')} by ${xTitle}${withCi ? ' (mean ± 95 % CI)' : ''}`,
        data: { values: data },
        facet: { column: { field: 'panel', type: 'nominal', title: null, sort: metrics.map(metricLabel) } },
        spec: panel,
        resolve: { scale: { y: 'independent' } },
      },
      ctx.outDir,
      'chart',
    );
  },
});

/** One value to draw: a metric of one run, or a configuration's mean with its 95 % CI half-width. */
interface Point {
  readonly x: string | number | boolean;
  readonly metric: string;
  readonly series: string;
  readonly value: number;
  readonly ci?: number;
}

/** What a chart reads per run or per aggregated row: its matrix values and its numbers by name. */
interface Source {
  readonly id: string;
  readonly variant: Readonly<Record<string, string | number | boolean>>;
  /** Where its numbers come from, for messages. */
  readonly file: string;
  value(name: string): { value: number; ci?: number } | undefined;
  names(): string[];
}

function gatheredRuns(runs: readonly GatheredInput[], fileName: string): Source[] {
  return runs.map((run) => {
    const file = join(run.path, fileName);
    if (!existsSync(file)) throw new StageError(`${run.id} has no ${fileName}`);
    const m = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    return {
      id: run.id,
      variant: run.variant,
      file: fileName,
      value: (name) => (typeof m[name] === 'number' ? { value: m[name] } : undefined),
      names: () => Object.keys(m).filter((k) => !k.includes('_class_')),
    };
  });
}

/**
 * Rows of a compare-metrics table. An aggregated one (it names `over`) has `<m>_mean` and
 * `<m>_ci95` per metric; a plain one has `<m>`.
 */
function tableRows(dir: string): Source[] {
  const file = join(dir, 'comparison.json');
  if (!existsSync(file)) throw new StageError(`the table input has no comparison.json: bind a compare-metrics stage`);
  const table = JSON.parse(readFileSync(file, 'utf8')) as { columns: string[]; over?: string[]; rows: Record<string, unknown>[] };
  const aggregated = Array.isArray(table.over);
  const metricColumns = table.columns.filter((c) => (aggregated ? c.endsWith('_mean') : typeof table.rows[0]?.[c] === 'number'));
  const keyColumns = aggregated
    ? table.columns.slice(0, table.columns.indexOf('n'))
    : table.columns.filter((c) => c !== 'id' && !metricColumns.includes(c));
  return table.rows.map((row, i) => {
    const variant = Object.fromEntries(
      keyColumns.filter((k) => row[k] !== null && row[k] !== undefined).map((k) => [k, row[k] as string | number | boolean]),
    );
    const number = (name: string) => (typeof row[name] === 'number' ? (row[name] as number) : undefined);
    return {
      id:
        typeof row.id === 'string'
          ? row.id
          : `row ${i + 1} {${Object.entries(variant)
              .map(([k, v]) => `${k}=${String(v)}`)
              .join(', ')}}`,
      variant,
      file: 'comparison.json',
      value: (name) => {
        if (!aggregated) {
          const v = number(name);
          return v === undefined ? undefined : { value: v };
        }
        const mean = number(`${name}_mean`);
        const ci = number(`${name}_ci95`);
        return mean === undefined ? undefined : ci === undefined ? { value: mean } : { value: mean, ci };
      },
      names: () => metricColumns.map((c) => (aggregated ? c.slice(0, -'_mean'.length) : c)),
    };
  });
}

/** Units of the metrics evaluate writes, so a panel's header says what its axis counts. */
const UNITS: Readonly<Record<string, string>> = {
  psnr: 'dB',
  psnr_mu: 'dB',
  bce: 'nats/image',
  bce_mu: 'nats/image',
  kl: 'nats/image',
  kl_mu: 'nats/image',
  neg_elbo: 'nats/image',
  neg_elbo_mu: 'nats/image',
  mse: 'per pixel',
  mse_mu: 'per pixel',
};

function metricLabel(metric: string): string {
  const unit = UNITS[metric];
  return unit ? `${metric} (${unit})` : metric;
}
