import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { BackendParam, backendEnvironment } from '../ml/backend.js';
import { MODEL_INPUT, loadModel } from '../ml/figures/inputs.js';
import { decode } from '../ml/figures/model-io.js';
import { modelTitle } from '../ml/figures/titles.js';
import { defineStage, StageError } from '../core/contract.js';

/** The classic Keras figure: decodings of an n × n grid over z ∈ [−range, range]², z₂ decreasing downwards. */
export default defineStage({
  name: 'manifold',
  description: 'Decode a grid over the 2-D latent space (d = 2 only) into one image (PNG).',
  params: Type.Object(
    {
      n: Type.Integer({ minimum: 2, maximum: 40, default: 20 }),
      range: Type.Number({ exclusiveMinimum: 0, default: 3 }),
      label: Type.Integer({ minimum: 0, maximum: 255, default: 0, description: 'The class (label) to condition a cvae on.' }),
      scale: Type.Integer({ minimum: 1, maximum: 8, default: 1 }),
      backend: BackendParam,
    },
    { additionalProperties: false },
  ),
  inputs: MODEL_INPUT,
  outputs: () => ({ figure: 'manifold.png' }),
  environment: backendEnvironment,
  async run(ctx) {
    const { gridLayout, gridPng } = await import('../ml/figures/grid.js');
    const { annotateGrid, sweepTicks } = await import('../ml/figures/annotate.js');
    const { tf, model } = await loadModel(ctx.input('model'), ctx.params.backend, ctx.threads);
    if (model.kind === 'vqvae')
      throw new StageError("a VQ-VAE's codes are a grid of codebook entries, not a 2-D latent space to decode a grid over");
    if (model.latentDim !== 2)
      throw new StageError(`the manifold figure needs latent_dim 2; this model has ${model.latentDim} (use traversals instead)`);
    const { n, range } = ctx.params;
    const z = new Float32Array(n * n * 2);
    for (let row = 0; row < n; row++) {
      for (let col = 0; col < n; col++) {
        z[(row * n + col) * 2] = -range + (2 * range * col) / (n - 1);
        z[(row * n + col) * 2 + 1] = range - (2 * range * row) / (n - 1);
      }
    }
    if (model.kind === 'cvae' && ctx.params.label >= model.classes.length)
      throw new StageError(`label ${ctx.params.label}: the model knows ${model.classes.length} classes (0–${model.classes.length - 1})`);
    const labels = model.kind === 'cvae' ? new Array<number>(n * n).fill(ctx.params.label) : undefined;
    const images = decode(tf, model, z, labels);
    const grid = { tile: model.image, rows: n, cols: n, scale: ctx.params.scale, gap: 0 };
    const layout = gridLayout(grid);
    const centre = (i: number) => layout.colX(i) + layout.cellWidth / 2;
    const { png } = await annotateGrid(gridPng({ tiles: images, ...grid }), layout.width, layout.height, {
      title: `Latent space decoded · ${modelTitle(model, ctx.variant)}${model.kind === 'cvae' ? ` · class ${model.classes[ctx.params.label] ?? ctx.params.label}` : ''}`,
      xAxis: { title: 'z₁', ticks: sweepTicks(-range, range, centre(0), centre(n - 1)) },
      yAxis: {
        title: 'z₂',
        ticks: sweepTicks(range, -range, layout.rowY(0) + layout.cellHeight / 2, layout.rowY(n - 1) + layout.cellHeight / 2, 30),
      },
    });
    writeFileSync(join(ctx.outDir, 'manifold.png'), png);
  },
});
