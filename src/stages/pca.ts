import { Type } from '@sinclair/typebox';
import { PROJECTION_OUTPUTS, SubsampleParam } from '../ml/projection.js';
import { defineStage } from './contract.js';

/** Principal components of the test-set μ (ml-pca, covariance method): the first two as coordinates. */
export default defineStage({
  name: 'pca',
  description: 'PCA of test-set latents to 2-D, with explained variance.',
  params: Type.Object({ subsample: SubsampleParam, seed: Type.Integer({ default: 0 }) }, { additionalProperties: false }),
  inputs: { latents: { description: 'an evaluate stage' } },
  outputs: () => PROJECTION_OUTPUTS,
  metrics: () => 'projection.json',
  async run(ctx) {
    const { readLatents, writeProjection } = await import('../ml/projection.js');
    const { PCA } = await import('ml-pca');
    const latents = readLatents(ctx.input('latents'), ctx.params.subsample, ctx.random);
    const started = performance.now();
    const rows = Array.from({ length: latents.count }, (_, i) => Array.from(latents.data.subarray(i * latents.dims, (i + 1) * latents.dims)));
    const pca = new PCA(rows, { method: 'covarianceMatrix' });
    const projected = pca.predict(rows, { nComponents: 2 }).to2DArray();
    const coords = Float32Array.from(projected.flat());
    writeProjection(ctx.outDir, latents, coords, 'pca', { explained_variance: pca.getExplainedVariance().slice(0, 2) }, (performance.now() - started) / 1000);
  },
});
