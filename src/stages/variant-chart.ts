import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { defineStage, StageError } from '../core/contract.js';

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
  inputs: { runs: { description: 'every variant of a stage with a metrics file', gather: true } },
  outputs: () => ({ figure: 'chart.png', spec: 'chart.vl.json', svg: 'chart.svg' }),
  async run(ctx) {
    const { renderChart } = await import('../ml/figures/chart.js');
    const { x, metrics, color, mark } = ctx.params;
    const values: Record<string, unknown>[] = [];
    for (const run of ctx.gather('runs')) {
      const file = join(run.path, ctx.params.file);
      if (!existsSync(file)) throw new StageError(`${run.id} has no ${ctx.params.file}`);
      const m = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      if (color !== undefined && !(color in run.variant))
        throw new StageError(`color: '${color}' is not a matrix key of ${run.id} (keys: ${Object.keys(run.variant).join(', ')})`);
      for (const metric of metrics) {
        // Without `color`: per digit each run is a series; a line joins all its points; bars are coloured by x.
        const series =
          color !== undefined
            ? String(run.variant[color])
            : x === 'digit'
              ? run.id
              : mark === 'line'
                ? metric
                : String(run.variant[x] ?? run.id);
        if (x === 'digit') {
          for (let c = 0; c < 10; c++) {
            const v = m[`${metric}_class_${c}`];
            if (typeof v !== 'number') throw new StageError(`${run.id}: no per-class metric ${metric}_class_${c} in ${ctx.params.file}`);
            values.push({ x: String(c), metric, series, value: v });
          }
        } else {
          if (!(x in run.variant))
            throw new StageError(
              `x: '${x}' is not a matrix key of ${run.id} (keys: ${Object.keys(run.variant).join(', ') || 'none'}); or use x: digit`,
            );
          const v = m[metric];
          if (typeof v !== 'number')
            throw new StageError(
              `${run.id}: no metric '${metric}' in ${ctx.params.file} (has: ${Object.keys(m)
                .filter((k) => !k.includes('_class_'))
                .join(', ')})`,
            );
          values.push({ x: run.variant[x], metric, series, value: v });
        }
      }
    }
    const numericX = x !== 'digit' && values.every((v) => typeof v.x === 'number');
    const xTitle = x === 'digit' ? 'digit' : x;
    const panel = {
      width: x === 'digit' ? 360 : 260,
      height: 220,
      mark: mark === 'line' ? { type: 'line', point: true } : { type: 'bar' },
      encoding: {
        x: { field: 'x', type: mark === 'line' && numericX ? 'quantitative' : 'ordinal', title: xTitle, sort: 'ascending' },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: mark === 'bar' } },
        color: {
          field: 'series',
          type: 'nominal',
          title: color ?? (x === 'digit' ? 'run' : mark === 'line' ? 'metric' : x),
          sort: 'ascending',
        },
        ...(mark === 'bar' && (color !== undefined || x === 'digit')
          ? { xOffset: { field: 'series', type: 'nominal', sort: 'ascending' } }
          : {}),
      },
    };
    await renderChart(
      {
        title: ctx.params.title ?? `${metrics.join(', ')} by ${xTitle}`,
        data: { values },
        facet: { column: { field: 'metric', type: 'nominal', title: null, sort: metrics } },
        spec: panel,
        resolve: { scale: { y: 'independent' } },
      },
      ctx.outDir,
      'chart',
    );
  },
});
