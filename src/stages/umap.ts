import { Type } from '@sinclair/typebox';
import { PROJECTION_OUTPUTS, SubsampleParam } from '../ml/projection.js';
import { defineStage } from './contract.js';

/** UMAP of the test-set μ (umap-js), seeded through its `random` option. */
export default defineStage({
  name: 'umap',
  description: 'UMAP of test-set latents to 2-D (umap-js).',
  params: Type.Object(
    {
      subsample: SubsampleParam,
      n_neighbors: Type.Integer({ minimum: 2, default: 15 }),
      min_dist: Type.Number({ minimum: 0, default: 0.1 }),
      seed: Type.Integer({ default: 0 }),
    },
    { additionalProperties: false },
  ),
  inputs: { latents: { description: 'an evaluate stage' } },
  outputs: () => PROJECTION_OUTPUTS,
  metrics: () => 'projection.json',
  async run(ctx) {
    const { readLatents, writeProjection } = await import('../ml/projection.js');
    const { UMAP } = await import('umap-js');
    const latents = readLatents(ctx.input('latents'), ctx.params.subsample, ctx.random);
    const started = performance.now();
    const rows = Array.from({ length: latents.count }, (_, i) => Array.from(latents.data.subarray(i * latents.dims, (i + 1) * latents.dims)));
    const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(ctx.params.n_neighbors, latents.count - 1), minDist: ctx.params.min_dist, random: ctx.random });
    const coords = Float32Array.from(umap.fit(rows).flat());
    writeProjection(ctx.outDir, latents, coords, 'umap', { n_neighbors: ctx.params.n_neighbors, min_dist: ctx.params.min_dist }, (performance.now() - started) / 1000);
  },
});
