import assert from 'node:assert/strict';
import { createReadStream, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { readNpyAs } from '../src/ml/npy.js';
import { TempProject } from './helpers.js';

/** A static file server over `root`, as a user serves model/ to a web page. */
async function serve(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((request, response) => {
    const file = join(root, normalize(decodeURIComponent(new URL(request.url!, 'http://x').pathname)));
    if (!file.startsWith(root) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('a trained model outside ablate', () => {
  it('loads with TensorFlow.js from its model.json over HTTP (the README’s path) and encodes as evaluate did', async () => {
    const p = new TempProject({
      'pipelines/x.yaml': `pipeline: x
stages:
  mnist: { uses: mnist, with: { limit_train: 64, limit_test: 16 } }
  prep: { uses: preprocess, in: { data: mnist } }
  train: { uses: train-vae, in: { data: prep }, with: { epochs: 1, batch_size: 32, hidden: 8, backend: wasm } }
  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { backend: wasm } }
`,
    });
    const run = p.cli(['run', 'pipelines/x.yaml', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const server = await serve(p.path('artifacts/x/train/model'));
    try {
      // IS_TEST silences the cpu backend's advice to install tfjs-node: it is the web page's backend here.
      tf.env().set('IS_TEST', true);
      await tf.setBackend('cpu');
      // Plain TensorFlow.js, no ablate code: what a web page (or tfjs-node with file://) does.
      const encoder = await tfl.loadLayersModel(`${server.url}/encoder/model.json`);
      const decoder = await tfl.loadLayersModel(`${server.url}/decoder/model.json`);
      const images = readNpyAs(p.path('artifacts/x/prep/test_images.npy'), 'float32');
      const [count, rows, cols, channels] = images.shape as [number, number, number, number];
      const heads = encoder.predict(tf.tensor4d(images.data, [count, rows, cols, channels])) as tf.Tensor[];
      const mu = heads[0]!.dataSync();
      const expected = readNpyAs(p.path('artifacts/x/eval/latent_mu.npy'), 'float32').data;
      assert.equal(mu.length, expected.length);
      // Another backend (cpu here, wasm in evaluate): equal to float rounding.
      for (let i = 0; i < mu.length; i++) assert.ok(Math.abs(mu[i]! - expected[i]!) < 1e-4, `μ[${i}] ${mu[i]} vs ${expected[i]}`);
      const pixels = (decoder.predict(tf.tensor2d([0, 0], [1, 2])) as tf.Tensor).dataSync();
      assert.equal(pixels.length, rows * cols * channels);
      assert.ok(
        pixels.every((v) => v >= 0 && v <= 1),
        'the saved decoder ends in a sigmoid: pixel probabilities',
      );
    } finally {
      await server.close();
    }
  });
});
