import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { BackendParam, backendEnvironment } from '../ml/backend.js';
import { MODEL_AND_DATA_INPUTS, gatherImages, loadModel, loadSplit, ScaleParam } from '../ml/figures/inputs.js';
import { decode, encodeMeans } from '../ml/figures/model-io.js';
import { modelTitle } from '../ml/figures/titles.js';
import { defineStage, StageError } from '../core/contract.js';

/**
 * β-VAE disentanglement (seed 003): starting from μ of one test image, one row per latent
 * dimension, that dimension swept over [−range, range] with the others held fixed.
 */
export default defineStage({
  name: 'traversals',
  description: 'Latent traversals: one row per dimension, the others fixed (PNG).',
  params: Type.Object(
    {
      steps: Type.Integer({ minimum: 2, maximum: 30, default: 11 }),
      range: Type.Number({ exclusiveMinimum: 0, default: 3 }),
      image: Type.Integer({ minimum: 0, default: 0, description: 'Index of the test image whose code is the starting point.' }),
      scale: ScaleParam,
      backend: BackendParam,
    },
    { additionalProperties: false },
  ),
  inputs: MODEL_AND_DATA_INPUTS,
  outputs: () => ({ figure: 'traversals.png' }),
  environment: backendEnvironment,
  async run(ctx) {
    const { gridLayout, gridPng } = await import('../ml/figures/grid.js');
    const { annotateGrid, sweepTicks } = await import('../ml/figures/annotate.js');
    const { tf, model } = await loadModel(ctx.input('model'), ctx.params.backend, ctx.threads);
    if (model.kind === 'vqvae')
      throw new StageError(
        `a VQ-VAE's code is a grid of ${model.latentDim} numbers snapped to codebook entries: sweeping one of them does not move along anything it learned; use interpolations`,
      );
    const set = loadSplit(ctx.input('data'), 'test', model);
    const index = ctx.params.image;
    if (index >= set.count) throw new StageError(`image ${index} is beyond the ${set.count} test images`);
    const label = set.labels[index]!;
    const base = encodeMeans(tf, model, gatherImages(set, [index]), [label], 1);
    const d = model.latentDim;
    const { steps, range } = ctx.params;
    const z = new Float32Array(d * steps * d);
    for (let dim = 0; dim < d; dim++) {
      for (let s = 0; s < steps; s++) {
        const row = z.subarray((dim * steps + s) * d, (dim * steps + s + 1) * d);
        row.set(base);
        row[dim] = -range + (2 * range * s) / (steps - 1);
      }
    }
    const images = decode(tf, model, z, model.kind === 'cvae' ? new Array<number>(d * steps).fill(label) : undefined);
    const grid = { tile: model.image, rows: d, cols: steps, scale: ctx.params.scale };
    const layout = gridLayout(grid);
    const { png } = await annotateGrid(gridPng({ tiles: images, ...grid }), layout.width, layout.height, {
      title: `Latent traversals · ${modelTitle(model, ctx.variant)} · from test image ${index} (a ${label})`,
      rows: Array.from({ length: d }, (_, r) => ({ at: layout.rowY(r) + layout.cellHeight / 2, text: `z${r + 1}` })),
      xAxis: {
        title: 'value of the swept dimension (the others at the image’s μ)',
        ticks: sweepTicks(-range, range, layout.colX(0) + layout.cellWidth / 2, layout.colX(steps - 1) + layout.cellWidth / 2),
      },
    });
    writeFileSync(join(ctx.outDir, 'traversals.png'), png);
  },
});
