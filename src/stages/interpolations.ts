import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { BackendParam, backendEnvironment } from '../ml/backend.js';
import { MODEL_AND_DATA_INPUTS, gatherImages, loadModel, loadSplit, ScaleParam } from '../ml/figures/inputs.js';
import { decode, encodeMeans } from '../ml/figures/model-io.js';
import { modelTitle } from '../ml/figures/titles.js';
import { defineStage, StageError } from '../core/contract.js';

/**
 * Strips between pairs of test images of different digits: original A, the decodings of
 * z = (1−t)·μ_A + t·μ_B for `steps` evenly spaced t in [0, 1], original B.
 */
export default defineStage({
  name: 'interpolations',
  description: 'Linear interpolation in z between test pairs, one strip per pair (PNG).',
  params: Type.Object(
    {
      pairs: Type.Integer({ minimum: 1, maximum: 20, default: 6 }),
      steps: Type.Integer({ minimum: 2, maximum: 30, default: 10 }),
      seed: Type.Integer({ default: 7 }),
      scale: ScaleParam,
      backend: BackendParam,
    },
    { additionalProperties: false },
  ),
  inputs: MODEL_AND_DATA_INPUTS,
  outputs: () => ({ figure: 'interpolations.png' }),
  environment: backendEnvironment,
  async run(ctx) {
    const { gridLayout, gridPng } = await import('../ml/figures/grid.js');
    const { annotateGrid } = await import('../ml/figures/annotate.js');
    const { tf, model } = await loadModel(ctx.input('model'), ctx.params.backend, ctx.threads);
    if (model.kind === 'cvae')
      throw new StageError('interpolating a conditional model needs a label per step; use prior-samples for a cvae');
    const set = loadSplit(ctx.input('data'), 'test', model);
    const { pairs, steps } = ctx.params;
    const chosen: [number, number][] = [];
    for (let guard = 0; chosen.length < pairs && guard < 10_000; guard++) {
      const a = Math.floor(ctx.random() * set.count);
      const b = Math.floor(ctx.random() * set.count);
      // Ends of different classes, so the strip crosses between them; an unlabelled set has one class, so any two images.
      if (model.classes.length === 1 ? a !== b : set.labels[a] !== set.labels[b]) chosen.push([a, b]);
    }
    if (chosen.length < pairs) throw new StageError('the test split has too few distinct classes (or images) to pair');
    const ends = chosen.flat();
    const mu = encodeMeans(
      tf,
      model,
      gatherImages(set, ends),
      ends.map((i) => set.labels[i]!),
      ends.length,
    );
    const d = model.latentDim;
    const z = new Float32Array(pairs * steps * d);
    for (let p = 0; p < pairs; p++) {
      for (let s = 0; s < steps; s++) {
        const t = s / (steps - 1);
        for (let j = 0; j < d; j++) z[(p * steps + s) * d + j] = (1 - t) * mu[2 * p * d + j]! + t * mu[(2 * p + 1) * d + j]!;
      }
    }
    const decoded = decode(tf, model, z);
    const pixels = set.shape.rows * set.shape.cols * set.shape.channels;
    const cols = steps + 2;
    const tiles = new Float32Array(pairs * cols * pixels);
    const originals = gatherImages(set, ends);
    for (let p = 0; p < pairs; p++) {
      tiles.set(originals.subarray(2 * p * pixels, (2 * p + 1) * pixels), p * cols * pixels);
      tiles.set(decoded.subarray(p * steps * pixels, (p + 1) * steps * pixels), (p * cols + 1) * pixels);
      tiles.set(originals.subarray((2 * p + 1) * pixels, (2 * p + 2) * pixels), (p * cols + cols - 1) * pixels);
    }
    const grid = { tile: set.shape, rows: pairs, cols, scale: ctx.params.scale };
    const layout = gridLayout(grid);
    const centre = (c: number) => layout.colX(c) + layout.cellWidth / 2;
    const { png } = await annotateGrid(gridPng({ tiles, ...grid }), layout.width, layout.height, {
      title: `Interpolations in latent space · ${modelTitle(model, ctx.variant)}`,
      columns: [
        { at: centre(0), text: 'start' },
        { at: (centre(1) + centre(steps)) / 2, text: 'decoded along μ(start) → μ(end)' },
        { at: centre(cols - 1), text: 'end' },
      ],
    });
    writeFileSync(join(ctx.outDir, 'interpolations.png'), png);
  },
});
