import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { variantWords } from '../ml/figures/titles.js';
import { defineStage, StageError } from '../core/contract.js';

/**
 * Test-set codes coloured by digit: μ itself when d = 2 (an evaluate stage's output), or the
 * 2-D coordinates of a projection stage (pca, tsne, umap).
 */
export default defineStage({
  name: 'latent-scatter',
  description: 'Scatter of 2-D latents or projections, coloured by class (by digit for MNIST), with legend (PNG + Vega-Lite spec).',
  params: Type.Object(
    {
      title: Type.Optional(Type.String()),
      max_points: Type.Integer({
        minimum: 10,
        default: 5000,
        description: 'Plot at most this many points (the first ones; projections are already subsampled).',
      }),
      point_size: Type.Number({ exclusiveMinimum: 0, default: 8 }),
    },
    { additionalProperties: false },
  ),
  inputs: { points: { description: 'an evaluate stage (d = 2) or a pca/tsne/umap stage' } },
  outputs: () => ({ figure: 'scatter.png', spec: 'scatter.vl.json', svg: 'scatter.svg' }),
  async run(ctx) {
    const { readNpyAs } = await import('../ml/npy.js');
    const { renderChart } = await import('../ml/figures/chart.js');
    const dir = ctx.input('points');
    const projected = existsSync(join(dir, 'coords.npy'));
    const coords = readNpyAs(join(dir, projected ? 'coords.npy' : 'latent_mu.npy'), 'float32');
    const labels = readNpyAs(join(dir, 'labels.npy'), 'uint8');
    const [count, dims] = coords.shape as [number, number];
    if (dims !== 2)
      throw new StageError(`latent_mu.npy has ${dims} dimensions; project it to 2 first (a pca, tsne or umap stage) and scatter that`);
    const method = projected ? (JSON.parse(readFileSync(join(dir, 'projection.json'), 'utf8')) as { method: string }).method : 'latent';
    const axis = method === 'latent' ? ['z₁ (μ)', 'z₂ (μ)'] : [`${method} 1`, `${method} 2`];
    const n = Math.min(count, ctx.params.max_points);
    // Points are coloured by class name; MNIST's (and any IDX set's) names are its label values, its digits.
    const classesFile = join(dir, 'classes.json');
    const classes = existsSync(classesFile) ? (JSON.parse(readFileSync(classesFile, 'utf8')) as { classes: string[] }).classes : undefined;
    const noun = !classes || classes.every((name, i) => name === String(i)) ? 'digit' : 'class';
    const values = Array.from({ length: n }, (_, i) => ({
      x: coords.data[2 * i],
      y: coords.data[2 * i + 1],
      [noun]: classes?.[labels.data[i]!] ?? String(labels.data[i]),
    }));
    await renderChart(
      {
        title:
          ctx.params.title ??
          `${method === 'latent' ? 'Test-set latent means' : `Test-set latents (${method})`}, by ${noun}${variantWords(ctx.variant)
            .map((w, i) => (i ? `, ${w}` : ` · ${w}`))
            .join('')}`,
        width: 480,
        height: 420,
        data: { values },
        mark: { type: 'circle', size: ctx.params.point_size, opacity: 0.7 },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: axis[0], scale: { zero: false } },
          y: { field: 'y', type: 'quantitative', title: axis[1], scale: { zero: false } },
          color: {
            field: noun,
            type: 'nominal',
            title: noun,
            // Ten colours tell MNIST's classes apart; more classes need the twenty-colour scheme.
            scale: { scheme: (classes?.length ?? 10) > 10 ? 'tableau20' : 'category10' },
            sort: classes ?? 'ascending',
          },
        },
      },
      ctx.outDir,
      'scatter',
    );
  },
});
