import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { BackendParam, backendEnvironment } from '../ml/backend.js';
import { MODEL_INPUT, loadModel, ScaleParam } from '../ml/figures/inputs.js';
import { decode, normalDraws } from '../ml/figures/model-io.js';
import { modelTitle } from '../ml/figures/titles.js';
import { defineStage, StageError } from '../core/contract.js';

/**
 * Digits generated from the prior z ~ N(0, I): a rows × cols grid (seed 000's 64 digits). For a
 * conditional model, one row per digit class: the same z's decoded with each label.
 */
export default defineStage({
  name: 'prior-samples',
  description: 'Decode z ~ N(0, I) into a grid (PNG); a cvae gets one row per digit class.',
  params: Type.Object(
    {
      rows: Type.Integer({ minimum: 1, maximum: 32, default: 8 }),
      cols: Type.Integer({ minimum: 1, maximum: 32, default: 8 }),
      seed: Type.Integer({ default: 7 }),
      scale: ScaleParam,
      backend: BackendParam,
    },
    { additionalProperties: false },
  ),
  inputs: MODEL_INPUT,
  outputs: () => ({ figure: 'samples.png' }),
  environment: backendEnvironment,
  async run(ctx) {
    const { gridLayout, gridPng } = await import('../ml/figures/grid.js');
    const { annotateGrid } = await import('../ml/figures/annotate.js');
    const { tf, model } = await loadModel(ctx.input('model'), ctx.params.backend, ctx.threads);
    if (model.kind === 'ae') throw new StageError('an autoencoder has no prior to sample from: prior samples need a VAE');
    if (model.kind === 'vqvae')
      throw new StageError(
        "a VQ-VAE's prior over its codes is learned after it, by a separate autoregressive model (PixelCNN in the paper), which ablate does not train; N(0, I) draws are not codes: use reconstructions and interpolations for a vqvae",
      );
    const conditional = model.kind === 'cvae';
    const rows = conditional ? model.classes.length : ctx.params.rows;
    const cols = ctx.params.cols;
    const d = model.latentDim;
    // A cvae row shares its z's across classes, so rows differ only by the label.
    const codes = normalDraws((conditional ? cols : rows * cols) * d, ctx.random);
    const z = conditional ? new Float32Array(rows * cols * d).map((_, i) => codes[i % (cols * d)]!) : codes;
    const labels = conditional ? Array.from({ length: rows * cols }, (_, i) => Math.floor(i / cols)) : undefined;
    const images = decode(tf, model, z, labels);
    const grid = { tile: model.image, rows, cols, scale: ctx.params.scale };
    const layout = gridLayout(grid);
    const { png } = await annotateGrid(gridPng({ tiles: images, ...grid }), layout.width, layout.height, {
      title: `Samples, z ~ N(0, I) · ${modelTitle(model, ctx.variant)}`,
      ...(conditional ? { rows: model.classes.map((text, r) => ({ at: layout.rowY(r) + layout.cellHeight / 2, text })) } : {}),
    });
    writeFileSync(join(ctx.outDir, 'samples.png'), png);
  },
});
