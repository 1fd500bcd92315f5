// One backend per process: times the seed conv VAE (d=2, 28×28) and prints JSON
// {backend, reason, batch, stepMs[]}. Modes: `train` (one Adam step per sample, batch 128) or
// `infer` (the encoder over 10,000 images in batches of 500, one sample per pass).
// ABLATE_THREADS bounds the native kernels' threads. Used by bench/training.ts.
import type * as TfCore from '@tensorflow/tfjs-core';
import { loadTf, type BackendChoice } from '../src/ml/backend.js';
import { buildModels } from '../src/ml/vae/model.js';
import { forward } from '../src/ml/vae/train.js';

const [choice = 'auto', mode = 'train', samplesText = '10'] = process.argv.slice(2);
const tf = await loadTf(choice as BackendChoice, Number(process.env.ABLATE_THREADS ?? 1));
const core = tf.core;
const models = buildModels(tf, { kind: 'conv', imageSize: 28, latentDim: 2, hidden: 128, classes: 10, seed: 1 });
const samples = Number(samplesText);
const warmup = choice === 'cpu' ? 0 : 2;

function time(run: (i: number) => void): number[] {
  for (let i = 0; i < warmup; i++) run(i);
  return Array.from({ length: samples }, (_, i) => {
    const start = performance.now();
    run(100 + i);
    return performance.now() - start;
  });
}

if (mode === 'train') {
  const batch = 128;
  const variables = [...models.encoder.trainableWeights, ...models.decoderLogits.trainableWeights].map((w) => w.read() as TfCore.Variable);
  const optimizer = core.train.adam(1e-3);
  const x = core.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', 1);
  const y = core.zeros([batch, 10]);
  const stepMs = time((i) => {
    const loss = optimizer.minimize(() => {
      const out = forward(tf, models, 'conv', x, y, i, true);
      return core.mean(core.add(out.bce, out.kl)) as TfCore.Scalar;
    }, true, variables)!;
    loss.dataSync();
    loss.dispose();
  });
  console.log(JSON.stringify({ backend: tf.backend, reason: tf.reason, batch, stepMs }));
} else {
  const images = 10_000;
  const batch = 500;
  const x = core.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', 1);
  const stepMs = time(() => {
    for (let start = 0; start < images; start += batch) {
      const heads = models.encoder.predict(x) as TfCore.Tensor[];
      heads[0]!.dataSync();
      core.dispose(heads);
    }
  });
  console.log(JSON.stringify({ backend: tf.backend, reason: tf.reason, batch: images, stepMs }));
}
