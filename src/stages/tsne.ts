import { Type } from '@sinclair/typebox';
import { PROJECTION_OUTPUTS, SubsampleParam } from '../ml/projection.js';
import { defineStage } from './contract.js';

/** Barnes-Hut t-SNE of the test-set μ (src/ml/tsne.ts), seeded. */
export default defineStage({
  name: 'tsne',
  description: 'Barnes-Hut t-SNE of test-set latents to 2-D.',
  params: Type.Object(
    {
      subsample: SubsampleParam,
      perplexity: Type.Number({ minimum: 2, default: 30 }),
      iterations: Type.Integer({ minimum: 250, default: 1000 }),
      theta: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'Barnes-Hut accuracy: 0 is exact, larger is faster.' }),
      seed: Type.Integer({ default: 0 }),
    },
    { additionalProperties: false },
  ),
  inputs: { latents: { description: 'an evaluate stage' } },
  outputs: () => PROJECTION_OUTPUTS,
  metrics: () => 'projection.json',
  async run(ctx) {
    const { readLatents, writeProjection } = await import('../ml/projection.js');
    const { tsne } = await import('../ml/tsne.js');
    const latents = readLatents(ctx.input('latents'), ctx.params.subsample, ctx.random);
    const started = performance.now();
    const coords = tsne(latents.data, latents.count, latents.dims, {
      perplexity: ctx.params.perplexity,
      iterations: ctx.params.iterations,
      theta: ctx.params.theta,
      random: ctx.random,
      onProgress: (iteration, total) => {
        ctx.signal.throwIfAborted();
        ctx.progress(`iteration ${iteration}/${total}`, iteration / total);
      },
    });
    const { perplexity, iterations, theta } = ctx.params;
    writeProjection(ctx.outDir, latents, coords, 'tsne', { perplexity, iterations, theta }, (performance.now() - started) / 1000);
  },
});
