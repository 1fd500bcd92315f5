import { Type } from '@sinclair/typebox';
import { LATENTS_INPUT, PROJECTION_OUTPUTS, projectLatents, SubsampleParam } from '../ml/projection.js';
import { defineStage } from '../core/contract.js';

/** Barnes-Hut t-SNE of the test-set μ (src/ml/tsne.ts), seeded. */
export default defineStage({
  name: 'tsne',
  description: 'Barnes-Hut t-SNE of test-set latents to 2-D.',
  params: Type.Object(
    {
      subsample: SubsampleParam,
      perplexity: Type.Number({ minimum: 2, default: 30 }),
      iterations: Type.Integer({ minimum: 250, maximum: 100_000, default: 1000 }),
      theta: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'Barnes-Hut accuracy: 0 is exact, larger is faster.' }),
      seed: Type.Integer({ default: 0 }),
      threads: Type.Integer({
        minimum: 1,
        maximum: 64,
        default: 1,
        description:
          'Threads for the repulsive forces: speed only, the coordinates are the same bytes on any count. The runner holds this many -j slots.',
      }),
    },
    { additionalProperties: false },
  ),
  threads: (p) => p.threads,
  inputs: LATENTS_INPUT,
  outputs: () => PROJECTION_OUTPUTS,
  metrics: () => 'projection.json',
  async run(ctx) {
    const { tsne } = await import('../ml/tsne.js');
    const { perplexity, iterations, theta, threads } = ctx.params;
    await projectLatents(ctx, 'tsne', async (latents) => {
      const coords = await tsne(latents.data, latents.count, latents.dims, {
        perplexity,
        iterations,
        theta,
        threads,
        random: ctx.random,
        onProgress: (iteration, total) => {
          ctx.signal.throwIfAborted();
          ctx.progress(`iteration ${iteration}/${total}`, iteration / total);
        },
      });
      return { coords, extra: { perplexity, iterations, theta } };
    });
  },
});
