/**
 * Throughput probes of the seed conv VAE (d=2, 28×28) on random data, shared by
 * `ablate doctor` and `npm run bench`: one Adam step at batch 128, and the encoder over
 * batches of 500.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import { adamOptimizer } from '../adam.js';
import type { Tf } from '../backend.js';
import { buildModels } from './model.js';
import { forward } from './train.js';

export const TRAIN_BATCH = 128;
export const INFER_BATCH = 500;

function seedModel(tf: Tf) {
  return buildModels(tf, {
    kind: 'conv',
    image: { rows: 28, cols: 28, channels: 1 },
    depth: 2,
    latentDim: 2,
    hidden: 128,
    classes: 10,
    seed: 1,
  });
}

/** A function that runs one training step (its argument seeds the sampling noise). */
export function trainingStep(tf: Tf): (noiseSeed: number) => void {
  const core = tf.core;
  const models = seedModel(tf);
  const variables = [...models.encoder.trainableWeights, ...models.decoderLogits.trainableWeights].map((w) => w.read() as TfCore.Variable);
  const optimizer = adamOptimizer(tf, 1e-3);
  const x = core.randomUniform([TRAIN_BATCH, 28, 28, 1], 0, 1, 'float32', 1);
  const y = core.zeros([TRAIN_BATCH, 10]);
  return (noiseSeed) => {
    const loss = optimizer.minimize(
      () => {
        const out = forward(tf, models, 'conv', x, y, noiseSeed, true);
        return core.mean(core.add(out.recon, out.kl)) as TfCore.Scalar;
      },
      true,
      variables,
    )!;
    loss.dataSync();
    loss.dispose();
  };
}

/** A function that encodes `batches` batches of INFER_BATCH images. */
export function inferencePass(tf: Tf, batches: number): () => void {
  const core = tf.core;
  const models = seedModel(tf);
  const x = core.randomUniform([INFER_BATCH, 28, 28, 1], 0, 1, 'float32', 1);
  return () => {
    for (let i = 0; i < batches; i++) {
      const heads = models.encoder.predict(x, { batchSize: INFER_BATCH }) as TfCore.Tensor[];
      heads[0]!.dataSync();
      core.dispose(heads);
    }
  };
}
