import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { BackendParam, backendEnvironment } from '../ml/backend.js';
import { MODEL_AND_DATA_INPUTS, firstOfEachClass, gatherImages, loadModel, loadSplit, ScaleParam } from '../ml/figures/inputs.js';
import { decode, encodeDistributions, normalDraws } from '../ml/figures/model-io.js';
import { modelTitle } from '../ml/figures/titles.js';
import { hasDeterministicEncoder } from '../ml/vae/model.js';
import { defineStage } from '../core/contract.js';

/**
 * Seed 002's figure 5: per digit (one row each), `per_digit` originals | reconstructions from a
 * sampled z | reconstructions from z = μ (the "decoder-only" ones).
 */
export default defineStage({
  name: 'reconstructions',
  description: 'Originals, sampled-z and z = μ reconstructions, one row per digit (PNG).',
  params: Type.Object(
    {
      per_digit: Type.Integer({ minimum: 1, maximum: 20, default: 4 }),
      split: Type.Union([Type.Literal('test'), Type.Literal('val'), Type.Literal('train')], { default: 'test' }),
      seed: Type.Integer({ default: 7 }),
      scale: ScaleParam,
      backend: BackendParam,
    },
    { additionalProperties: false },
  ),
  inputs: MODEL_AND_DATA_INPUTS,
  outputs: () => ({ figure: 'reconstructions.png' }),
  environment: backendEnvironment,
  async run(ctx) {
    const { gridLayout, gridPng } = await import('../ml/figures/grid.js');
    const { annotateGrid } = await import('../ml/figures/annotate.js');
    const { tf, model } = await loadModel(ctx.input('model'), ctx.params.backend, ctx.threads);
    const set = loadSplit(ctx.input('data'), ctx.params.split, model);
    const k = ctx.params.per_digit;
    const classes = model.classes;
    const indices = firstOfEachClass(set.labels, k, classes);
    const originals = gatherImages(set, indices);
    const labels = indices.map((i) => set.labels[i]!);
    const { mu, logVar } = encodeDistributions(tf, model, originals, labels, indices.length);
    const eps = normalDraws(mu.length, ctx.random);
    // A deterministic encoder (ae, wae, vqvae) has one code per image: nothing to sample.
    const deterministic = hasDeterministicEncoder(model.kind);
    const sampled = mu.map((m, i) => (deterministic ? m : m + Math.exp(0.5 * logVar[i]!) * eps[i]!));
    const fromSample = decode(tf, model, sampled, labels);
    const fromMean = decode(tf, model, mu, labels);
    const pixels = set.shape.rows * set.shape.cols * set.shape.channels;
    // Row r (class r): k originals, k sampled, k mean reconstructions.
    const tiles = new Float32Array(classes.length * 3 * k * pixels);
    for (let r = 0; r < classes.length; r++) {
      [originals, fromSample, fromMean].forEach((band, b) => {
        for (let c = 0; c < k; c++)
          tiles.set(band.subarray((r * k + c) * pixels, (r * k + c + 1) * pixels), ((r * 3 + b) * k + c) * pixels);
      });
    }
    const grid = { tile: set.shape, rows: classes.length, cols: 3 * k, scale: ctx.params.scale, groupEvery: k };
    const layout = gridLayout(grid);
    const bandCentre = (b: number) => (layout.colX(b * k) + layout.colX(b * k + k - 1) + layout.cellWidth) / 2;
    // An autoencoder has one code per image: its two reconstruction bands are the same decoding.
    const headers = deterministic ? ['original', 'reconstruction', 'same (not sampled)'] : ['original', 'sampled z', 'z = μ'];
    const { png } = await annotateGrid(gridPng({ tiles, ...grid }), layout.width, layout.height, {
      title: `Reconstructions · ${modelTitle(model, ctx.variant)}`,
      columns: headers.map((text, b) => ({ at: bandCentre(b), text })),
      rows: classes.map((text, r) => ({ at: layout.rowY(r) + layout.cellHeight / 2, text })),
    });
    writeFileSync(join(ctx.outDir, 'reconstructions.png'), png);
  },
});
