// One backend per process: times the seed conv VAE (src/ml/vae/probe.ts) and prints JSON
// {backend, reason, batch, stepMs[]}. Modes: `train` (one Adam step per sample, batch 128)
// or `infer` (the encoder over 10,000 images per sample). ABLATE_THREADS bounds the native
// kernels' threads. Used by bench/training.ts.
import { loadTf, type BackendChoice } from '../src/ml/backend.js';
import { INFER_BATCH, inferencePass, TRAIN_BATCH, trainingStep } from '../src/ml/vae/probe.js';

const [choice = 'auto', mode = 'train', samplesText = '10'] = process.argv.slice(2);
const tf = await loadTf(choice as BackendChoice, Number(process.env.ABLATE_THREADS ?? 1));
const images = 10_000;
const run = mode === 'train' ? trainingStep(tf) : inferencePass(tf, images / INFER_BATCH);
const warmup = choice === 'cpu' ? 0 : 2;
for (let i = 0; i < warmup; i++) run(i);
const stepMs = Array.from({ length: Number(samplesText) }, (_, i) => {
  const start = performance.now();
  run(100 + i);
  return performance.now() - start;
});
console.log(JSON.stringify({ backend: tf.backend, reason: tf.reason, batch: mode === 'train' ? TRAIN_BATCH : images, stepMs }));
