import { Type } from '@sinclair/typebox';
import { LATENTS_INPUT, latentRows, PROJECTION_OUTPUTS, projectLatents, SubsampleParam } from '../ml/projection.js';
import { defineStage } from '../core/contract.js';

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
  inputs: LATENTS_INPUT,
  outputs: () => PROJECTION_OUTPUTS,
  metrics: () => 'projection.json',
  async run(ctx) {
    const { UMAP } = await import('umap-js');
    await projectLatents(ctx, 'umap', async (latents) => {
      const umap = new UMAP({
        nComponents: 2,
        nNeighbors: Math.min(ctx.params.n_neighbors, latents.count - 1),
        minDist: ctx.params.min_dist,
        random: ctx.random,
      });
      return {
        coords: Float32Array.from(umap.fit(latentRows(latents)).flat()),
        extra: { n_neighbors: ctx.params.n_neighbors, min_dist: ctx.params.min_dist },
      };
    });
  },
});
