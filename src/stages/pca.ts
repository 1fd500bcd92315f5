import { Type } from '@sinclair/typebox';
import { LATENTS_INPUT, latentRows, PROJECTION_OUTPUTS, projectLatents, SubsampleParam } from '../ml/projection.js';
import { defineStage } from '../core/contract.js';

/** Principal components of the test-set μ (ml-pca, covariance method): the first two as coordinates. */
export default defineStage({
  name: 'pca',
  description: 'PCA of test-set latents to 2-D, with explained variance.',
  params: Type.Object({ subsample: SubsampleParam, seed: Type.Integer({ default: 0 }) }, { additionalProperties: false }),
  inputs: LATENTS_INPUT,
  outputs: () => PROJECTION_OUTPUTS,
  metrics: () => 'projection.json',
  async run(ctx) {
    const { PCA } = await import('ml-pca');
    await projectLatents(ctx, 'pca', async (latents) => {
      const rows = latentRows(latents);
      const pca = new PCA(rows, { method: 'covarianceMatrix' });
      return {
        coords: Float32Array.from(pca.predict(rows, { nComponents: 2 }).to2DArray().flat()),
        extra: { explained_variance: pca.getExplainedVariance().slice(0, 2) },
      };
    });
  },
});
