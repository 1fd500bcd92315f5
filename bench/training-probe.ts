// One backend per process: times training steps of the seed conv VAE (d=2, 28×28, batch 128)
// and prints {backend, reason, stepMs[]} as JSON. Used by bench/training.ts.
import type * as TfCore from '@tensorflow/tfjs-core';
import { loadTf, type BackendChoice } from '../src/ml/backend.js';
import { buildModels } from '../src/ml/vae/model.js';
import { forward } from '../src/ml/vae/train.js';

const [choice = 'auto', stepsText = '10', batchText = '128'] = process.argv.slice(2);
const tf = await loadTf(choice as BackendChoice);
const core = tf.core;
const batch = Number(batchText);
const models = buildModels(tf, { kind: 'conv', imageSize: 28, latentDim: 2, hidden: 128, classes: 10, seed: 1 });
const variables = [...models.encoder.trainableWeights, ...models.decoderLogits.trainableWeights].map((w) => w.read() as TfCore.Variable);
const optimizer = core.train.adam(1e-3);
const x = core.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', 1);
const y = core.zeros([batch, 10]);
const step = (i: number) => {
  const loss = optimizer.minimize(() => {
    const out = forward(tf, models, 'conv', x, y, i, true);
    return core.mean(core.add(out.bce, out.kl)) as TfCore.Scalar;
  }, true, variables)!;
  loss.dataSync();
  loss.dispose();
};
const warmup = choice === 'cpu' ? 0 : 2;
for (let i = 0; i < warmup; i++) step(i);
const stepMs: number[] = [];
for (let i = 0; i < Number(stepsText); i++) {
  const start = performance.now();
  step(100 + i);
  stepMs.push(performance.now() - start);
}
console.log(JSON.stringify({ backend: tf.backend, reason: tf.reason, batch, stepMs }));
