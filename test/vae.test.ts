import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Tensor } from '@tensorflow/tfjs-core';
import { loadTf } from '../src/ml/backend.js';
import { codebookUsage, quantize, stopGradient, updateCodebook, vqLoss } from '../src/ml/vae/vq.js';
import {
  bceFromLogits,
  gaussianNll,
  imqKernel,
  mmd,
  reconstructionNll,
  klDivergence,
  meanSquaredError,
  standardNormal,
} from '../src/ml/vae/loss.js';
import { psnr, summarize } from '../src/ml/vae/metrics.js';
import { buildModels, convShapeProblem, defaultDepth } from '../src/ml/vae/model.js';
import { trainVae } from '../src/ml/vae/train.js';
import { loadLayersModel, saveLayersModel } from '../src/ml/vae/persist.js';
import { loadNativeAddon } from '../src/ml/native-addon.js';
import { readLockfile } from '../src/runner/lockfile.js';
import { greySquare, TempProject } from './helpers.js';

describe('loss terms against hand-computed values', () => {
  it('BCE from logits, KL, MSE', async () => {
    const tf = await loadTf('wasm', 1);
    const core = tf.core;
    // Two 2-pixel "images". BCE(l, x) = −[x log σ(l) + (1−x) log(1−σ(l))].
    const logits = core.tensor4d([0, 2, -3, 40], [2, 1, 2, 1]);
    const x = core.tensor4d([1, 0, 1, 0.5], [2, 1, 2, 1]);
    const bce = Array.from(bceFromLogits(core, logits, x).dataSync());
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const term = (l: number, t: number) => -(t * Math.log(sig(l)) + (1 - t) * Math.log(1 - sig(l)));
    assert.ok(Math.abs(bce[0]! - (term(0, 1) + term(2, 0))) < 1e-5, `${bce[0]}`);
    // logit 40 with target 0.5: the naive form overflows log(1 − σ(40)); the stable one gives 20 + log(1 + e^−40).
    assert.ok(Math.abs(bce[1]! - (term(-3, 1) + 20)) < 1e-4, `${bce[1]}`);
    // KL for μ = (1, 0), log σ² = (0, ln 4): −½[(1 + 0 − 1 − 1) + (1 + ln 4 − 0 − 4)] = ½ + (3 − ln 4)/2.
    const kl = klDivergence(core, core.tensor2d([[1, 0]]), core.tensor2d([[0, Math.log(4)]])).dataSync()[0]!;
    assert.ok(Math.abs(kl - (0.5 + (3 - Math.log(4)) / 2)) < 1e-6, `${kl}`);
    const mse = meanSquaredError(core, core.tensor4d([0.5, 1], [1, 1, 2, 1]), core.tensor4d([0, 1], [1, 1, 2, 1])).dataSync()[0]!;
    assert.equal(mse, 0.125);
  });

  it('PSNR and summaries', () => {
    assert.equal(psnr(0.01), 20);
    const s = summarize({ recon: new Float32Array([1, 3]), kl: new Float32Array([0.5, 0.5]), mse: new Float32Array([0.01, 0.001]) });
    assert.deepEqual(
      { ...s, mse: Number(s.mse.toFixed(4)), psnr: Number(s.psnr.toFixed(6)) },
      { n: 2, recon: 2, kl: 0.5, neg_elbo: 2.5, mse: 0.0055, psnr: 25 },
    );
  });

  it('Gaussian NLL: Σ (x − σ(l))² / 2s² + log(s√2π) per pixel, by hand', async () => {
    const { core } = await loadTf('wasm', 1);
    // Logits 0 → mean 0.5; pixels 0.5 and 0.9, s = 0.1: (0 + 0.16) / 0.02 + 2·log(0.1·√(2π)) = 8 − 2.8857…
    const nll = gaussianNll(core, core.tensor4d([0, 0], [1, 1, 2, 1]), core.tensor4d([0.5, 0.9], [1, 1, 2, 1]), 0.1).dataSync()[0]!;
    const expected = 0.16 / 0.02 + 2 * Math.log(0.1 * Math.sqrt(2 * Math.PI));
    assert.ok(Math.abs(nll - expected) < 1e-5, `${nll} vs ${expected}`);
    const bernoulli = reconstructionNll(core, core.tensor4d([0], [1, 1, 1, 1]), core.tensor4d([1], [1, 1, 1, 1]), { kind: 'bernoulli' });
    assert.ok(Math.abs(bernoulli.dataSync()[0]! - Math.LN2) < 1e-6, 'Bernoulli at logit 0 is log 2 nats');
  });

  it('IMQ kernel and MMD² on fixed points, by hand', async () => {
    const { core } = await loadTf('wasm', 1);
    // d = 1, points 0 and 1: ‖a − b‖² = 1; k = Σ_s c/(c + 1) with c = 2·s over the seven scales.
    const scales = [0.1, 0.2, 0.5, 1, 2, 5, 10];
    const k1 = scales.reduce((sum, s) => sum + (2 * s) / (2 * s + 1), 0);
    const k0 = scales.length; // k(a, a) = 1 per scale
    const kernel = imqKernel(core, core.tensor2d([[0], [1]]), core.tensor2d([[0], [1]])).arraySync() as number[][];
    assert.ok(Math.abs(kernel[0]![0]! - k0) < 1e-5 && Math.abs(kernel[0]![1]! - k1) < 1e-5, JSON.stringify(kernel));
    // z = {0, 1}, p = {0, 1}: the same sets. Unbiased MMD² = k1 + k1 − 2·(2·k0 + 2·k1)/4 = k1 − k0 (< 0: the estimate is unbiased, not non-negative).
    const same = mmd(core, core.tensor2d([[0], [1]]), core.tensor2d([[0], [1]])).dataSync()[0]!;
    assert.ok(Math.abs(same - (k1 - k0)) < 1e-5, `${same} vs ${k1 - k0}`);
    // z = {5, 5}, p = {0, 1}: far from the prior draws. k(5,5) = 7; k(0,1) = k1; cross: k(5,0) and k(5,1).
    const k = (dist2: number) => scales.reduce((sum, s) => sum + (2 * s) / (2 * s + dist2), 0);
    const far = mmd(core, core.tensor2d([[5], [5]]), core.tensor2d([[0], [1]])).dataSync()[0]!;
    const expected = k(0) + k(1) - (2 * (2 * k(25) + 2 * k(16))) / 4;
    assert.ok(Math.abs(far - expected) < 1e-5, `${far} vs ${expected}`);
    assert.ok(far > 1, 'codes far from the prior give a large MMD');
  });

  it('VQ: nearest entries, straight-through gradients, commitment, EMA updates and perplexity, by hand', async () => {
    const { core } = await loadTf('wasm', 1);
    // Two images, each one vector of dim 2; entries (0, 0), (1, 1), (5, 5).
    const codebook = core.variable(
      core.tensor2d([
        [0, 0],
        [1, 1],
        [5, 5],
      ]),
      false,
    );
    const ze = core.tensor2d([
      [0.9, 1.2],
      [4, 6],
    ]);
    const { zq, indices } = quantize(core, ze, codebook, 2);
    assert.deepEqual([...indices.dataSync()], [1, 2]);
    assert.deepEqual([...zq.dataSync()], [1, 1, 5, 5]);
    const { loss } = vqLoss(core, ze, zq, 0.25);
    // 0.25 · ‖z_e − z_q‖²: (0.01 + 0.04)·0.25 and (1 + 1)·0.25.
    const values = [...loss.dataSync()];
    assert.ok(Math.abs(values[0]! - 0.0125) < 1e-6 && Math.abs(values[1]! - 0.5) < 1e-6, `${values}`);
    // The decoder's input has z_q's value and passes the gradient to z_e unchanged.
    const grad = core.grad((x: Tensor) => core.sum(core.mul(vqLoss(core, x, quantize(core, x, codebook, 2).zq, 0).decoderInput, 3)))(ze);
    assert.deepEqual([...grad.dataSync()], [3, 3, 3, 3]);
    assert.deepEqual(
      [...stopGradient(core, ze).dataSync()].map((v) => Math.round(v * 10) / 10),
      [0.9, 1.2, 4, 6],
    );
    // EMA (γ = 0.99) from counts 1 and sums = entries: entry 1 moves to (0.99·1 + 0.01·0.9, 0.99·1 + 0.01·1.2) / (0.99 + 0.01).
    const averages = { counts: core.variable(core.ones([3]), false), sums: core.variable(codebook.clone(), false) };
    updateCodebook(core, codebook, averages, ze, indices);
    const moved = codebook.arraySync() as number[][];
    assert.ok(
      Math.abs(moved[1]![0]! - 0.999 / (1 + 1e-5)) < 1e-5 && Math.abs(moved[1]![1]! - 1.002 / (1 + 1e-5)) < 1e-5,
      JSON.stringify(moved),
    );
    assert.ok(Math.abs(moved[0]![0]!) < 1e-6, 'an unused entry at 0 stays at 0');
    // Perplexity: counts 2, 2 of 4 entries → exp(log 2) = 2 with 2 used; all in one → 1.
    assert.deepEqual(codebookUsage([2, 2, 0, 0]), { perplexity: 2, used: 2 });
    assert.deepEqual(codebookUsage([0, 7, 0]), { perplexity: 1, used: 1 });
  });
});

describe('models', () => {
  it('grow a block per doubling beyond 32 pixels: 64×64 RGB gets depth 3 (32, 64, 128 filters) and an RGB decoder', async () => {
    const tf = await loadTf('wasm', 1);
    const image = { rows: 64, cols: 64, channels: 3 };
    assert.equal(defaultDepth(image), 3);
    assert.equal(defaultDepth({ rows: 28, cols: 28, channels: 1 }), 2);
    assert.equal(defaultDepth({ rows: 128, cols: 96, channels: 3 }), 4);
    const m = buildModels(tf, { kind: 'conv', image, depth: 3, latentDim: 8, hidden: 16, classes: 1, seed: 1 });
    const convs = m.encoder.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.outputShape);
    assert.deepEqual(convs, [
      [null, 32, 32, 32],
      [null, 16, 16, 64],
      [null, 8, 8, 128],
    ]);
    assert.deepEqual(m.decoder.outputs[0]!.shape, [null, 64, 64, 3]);
    assert.match(convShapeProblem({ rows: 28, cols: 28, channels: 1 }, 3)!, /depth 3 needs both sides divisible by 8/);
    assert.equal(convShapeProblem({ rows: 16, cols: 24, channels: 3 }, 2), undefined);
  });

  it('have the seed architecture for 28×28 and 32×32 inputs, and save/load losslessly', async () => {
    const tf = await loadTf('wasm', 1);
    for (const size of [28, 32]) {
      const m = buildModels(tf, {
        kind: 'conv',
        ...greySquare(size),
        latentDim: 16,
        hidden: 128,
        classes: 10,
        seed: 1,
      });
      assert.deepEqual(
        m.encoder.outputs.map((o) => o.shape),
        [
          [null, 16],
          [null, 16],
        ],
      );
      assert.deepEqual(m.decoder.outputs[0]!.shape, [null, size, size, 1]);
      const convs = m.encoder.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.outputShape);
      assert.deepEqual(convs, [
        [null, size / 2, size / 2, 32],
        [null, size / 4, size / 4, 64],
      ]);
      const transposed = m.decoder.layers.filter((l) => l.getClassName() === 'Conv2DTranspose').map((l) => l.outputShape);
      assert.deepEqual(transposed, [
        [null, size / 2, size / 2, 64],
        [null, size, size, 32],
        [null, size, size, 1],
      ]);
    }
    const m = buildModels(tf, {
      kind: 'cvae',
      ...greySquare(28),
      latentDim: 2,
      hidden: 16,
      classes: 10,
      seed: 3,
    });
    assert.deepEqual(
      m.decoder.inputs.map((i) => i.shape),
      [
        [null, 2],
        [null, 10],
      ],
    );
    const p = new TempProject();
    await saveLayersModel(tf, m.decoder, p.path('dec'));
    const back = await loadLayersModel(tf, p.path('dec'));
    const z = tf.core.tensor2d([
      [0.3, -1],
      [2, 0],
    ]);
    const y = tf.core.oneHot(tf.core.tensor1d([3, 7], 'int32'), 10);
    const a = (m.decoder.predict([z, y]) as import('@tensorflow/tfjs-core').Tensor).dataSync();
    const b = (back.predict([z, y]) as import('@tensorflow/tfjs-core').Tensor).dataSync();
    assert.deepEqual(Array.from(b), Array.from(a));
    assert.match(readFileSync(p.path('dec/model.json'), 'utf8'), /"format":"layers-model"/);
  });

  it('save the same model.json however many models the process built before (layer names are fixed)', async () => {
    const tf = await loadTf('wasm', 1);
    const p = new TempProject();
    for (const kind of ['conv', 'dense', 'ae', 'cvae'] as const) {
      const saved: string[] = [];
      for (const round of [0, 1]) {
        // Another model in between, as a worker process that trains variants in turn builds.
        buildModels(tf, {
          kind: 'conv',
          ...greySquare(28),
          latentDim: 3,
          hidden: 8,
          classes: 10,
          seed: 9,
        });
        const m = buildModels(tf, {
          kind,
          ...greySquare(28),
          latentDim: 2,
          hidden: 16,
          classes: 10,
          seed: 3,
        });
        for (const [name, model] of Object.entries({ encoder: m.encoder, decoder: m.decoder })) {
          await saveLayersModel(tf, model, p.path(`${kind}/${round}/${name}`));
          saved[round] = (saved[round] ?? '') + readFileSync(p.path(`${kind}/${round}/${name}/model.json`), 'utf8');
        }
      }
      assert.equal(saved[1], saved[0], kind);
    }
  });
});

describe('training loop options', () => {
  /** Blobs: image k is a bright square whose position depends on k % 4. */
  function blobs(count: number, size = 12) {
    const images = new Float32Array(count * size * size);
    const labels = new Uint8Array(count);
    for (let k = 0; k < count; k++) {
      const corner = k % 4;
      labels[k] = corner;
      for (let r = 0; r < 4; r++)
        for (let c = 0; c < 4; c++) images[k * size * size + (r + (corner >> 1) * 6) * size + c + (corner & 1) * 6] = 1;
    }
    return { images, labels, count, shape: { rows: size, cols: size, channels: 1 } };
  }
  const base = {
    kind: 'conv' as const,
    batchSize: 16,
    learningRate: 1e-3,
    likelihood: { kind: 'bernoulli' } as const,
    beta: 2,
    mmdWeight: 0,
    classes: 10,
    seed: 1,
    signal: new AbortController().signal,
    progress: () => undefined,
  };

  it('KL warm-up ramps β linearly from 0 over the given epochs', async () => {
    const tf = await loadTf('wasm', 1);
    const models = buildModels(tf, {
      kind: 'conv',
      ...greySquare(12),
      latentDim: 2,
      hidden: 8,
      classes: 10,
      seed: 1,
    });
    const result = trainVae(tf, models, blobs(64), undefined, { ...base, epochs: 3, klWarmupEpochs: 2, patience: 0 });
    // β of an epoch's last batch (batch 4 of 4): (epoch − 1 + 3/4) / 2 · β, capped at β.
    assert.deepEqual(
      result.history.map((e) => e.beta),
      [0.375 * 2, 0.875 * 2, 2],
    );
    assert.equal(result.bestEpoch, 3, 'without validation the last epoch is kept');
  });

  it('early stopping halts after `patience` epochs without a better validation loss and keeps the best weights', async () => {
    const tf = await loadTf('wasm', 1);
    const models = buildModels(tf, {
      kind: 'conv',
      ...greySquare(12),
      latentDim: 2,
      hidden: 8,
      classes: 10,
      seed: 2,
    });
    // A learning rate this high makes validation loss worsen after the first epochs.
    const result = trainVae(tf, models, blobs(64), blobs(32), { ...base, learningRate: 0.05, epochs: 30, klWarmupEpochs: 0, patience: 2 });
    const losses = result.history.map((e) => e.val_loss!);
    const bestIndex = losses.indexOf(Math.min(...losses));
    assert.equal(result.bestEpoch, bestIndex + 1);
    assert.ok(result.stoppedEarly, `ran ${losses.length} epochs: ${losses.map((l) => l.toFixed(1)).join(' ')}`);
    assert.equal(result.history.length, result.bestEpoch + 2);
  });
});

const TINY = `pipeline: tiny
stages:
  mnist: { uses: mnist, with: { limit_train: 160, limit_test: 100, validation: 0.2 } }
  prep: { uses: preprocess, in: { data: mnist } }
  train:
    uses: train-vae
    in: { data: prep }
    matrix: { model: [conv, ae, cvae, dense, wae, infovae, vqvae] }
    with: { model: "\${matrix.model}", epochs: 1, batch_size: 32, hidden: 16, backend: wasm }
  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { backend: wasm } }
`;

describe('train-vae and evaluate on tiny data', () => {
  it('trains two vqvae variants in turn in one worker process', async () => {
    // Workers are reused: the second training once failed on the first's codebook variable.
    const p = new TempProject({
      'pipelines/vq.yaml':
        'pipeline: vq\nstages:\n  mnist: { uses: mnist, with: { limit_train: 64, limit_test: 10 } }\n  prep: { uses: preprocess, in: { data: mnist } }\n  train: { uses: train-vae, in: { data: prep }, matrix: { seed: [1, 2] }, with: { model: vqvae, seed: "${matrix.seed}", epochs: 1, batch_size: 32, hidden: 16, backend: wasm } }\n',
    });
    const result = await p.run('pipelines/vq.yaml', { jobs: 1 });
    assert.deepEqual(result.failed, [], JSON.stringify(result.events.filter((e) => e.type === 'failed')));
    assert.deepEqual(result.ran.filter((id) => id.startsWith('train')).length, 2);
  });

  it('trains every model kind, evaluates it, and a rerun restores everything', async () => {
    const p = new TempProject({ 'pipelines/tiny.yaml': TINY });
    const first = await p.run('pipelines/tiny.yaml');
    assert.deepEqual(first.failed, [], JSON.stringify(first.events.filter((e) => e.type === 'failed')));
    const history = JSON.parse(p.read('artifacts/tiny/train/model=conv/history.json')) as { loss: number; val_loss: number }[];
    assert.equal(history.length, 1);
    assert.ok(history[0]!.loss > 100 && history[0]!.loss < 600, `loss ${history[0]!.loss}`);
    assert.ok(history[0]!.val_loss > 0);
    const run = JSON.parse(p.read('artifacts/tiny/train/model=conv/run.json')) as { backend: string };
    assert.equal(run.backend, 'wasm');
    const metrics = JSON.parse(p.read('artifacts/tiny/eval/model=conv/metrics.json')) as Record<string, number>;
    for (const key of ['bce', 'kl', 'neg_elbo', 'mse', 'psnr', 'bce_mu', 'psnr_mu', 'psnr_class_1'])
      assert.ok(Number.isFinite(metrics[key]), key);
    assert.ok(Math.abs(metrics.neg_elbo! - (metrics.bce! + metrics.kl!)) < 1e-3);
    const ae = JSON.parse(p.read('artifacts/tiny/eval/model=ae/metrics.json')) as Record<string, number>;
    assert.equal(ae.kl, undefined, 'the autoencoder has no KL');
    assert.match(
      p.read('artifacts/tiny/eval/model=cvae/per_class.csv'),
      /^class,name,n,bce,kl,neg_elbo,mse,psnr,bce_mu,mse_mu,psnr_mu\n0,0,10,/,
    );
    // The MMD models: the WAE has codes and an MMD but no KL; InfoVAE has both, its −ELBO still reconstruction + KL.
    const wae = JSON.parse(p.read('artifacts/tiny/eval/model=wae/metrics.json')) as Record<string, number>;
    assert.equal(wae.kl, undefined);
    assert.ok(Number.isFinite(wae.mmd) && Number.isFinite(wae.bce), JSON.stringify(wae));
    const info = JSON.parse(p.read('artifacts/tiny/eval/model=infovae/metrics.json')) as Record<string, number>;
    assert.ok(Number.isFinite(info.mmd) && Math.abs(info.neg_elbo! - (info.bce! + info.kl!)) < 1e-3, JSON.stringify(info));
    const vq = JSON.parse(p.read('artifacts/tiny/eval/model=vqvae/metrics.json')) as Record<string, number>;
    assert.equal(vq.kl, undefined, 'a VQ-VAE has no KL');
    assert.ok(vq.codebook_used! >= 1 && vq.codebook_perplexity! >= 1 && vq.codebook_perplexity! <= vq.codebook_used!, JSON.stringify(vq));
    const waeHistory = JSON.parse(p.read('artifacts/tiny/train/model=wae/history.json')) as Record<string, number>[];
    // loss = recon + λ·MMD with λ = 10 (the KL column is zeros for a deterministic encoder).
    const e = waeHistory[0]!;
    assert.ok(Math.abs(e.loss! - (e.bce! + 10 * e.mmd!)) < 1e-2 * e.loss!, JSON.stringify(e));
    const lock = readLockfile(p.path('pipelines/tiny.lock.json'))!;
    assert.equal(lock.stages['train[model=conv]']!.fingerprint.environment.backend, 'wasm');
    assert.ok(lock.stages['eval[model=dense]']!.metrics!.psnr! > 0);

    const second = await p.run('pipelines/tiny.yaml');
    assert.deepEqual(second.ran, []);
  });

  it('a Gaussian likelihood names its term nll everywhere and evaluates under the same likelihood', async () => {
    const p = new TempProject({
      'pipelines/g.yaml': `pipeline: g
stages:
  mnist: { uses: mnist, with: { limit_train: 64, limit_test: 32, validation: 0.25 } }
  prep: { uses: preprocess, in: { data: mnist } }
  train: { uses: train-vae, in: { data: prep }, with: { likelihood: gaussian, sigma: 0.2, epochs: 1, batch_size: 16, hidden: 8, backend: wasm } }
  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { backend: wasm } }
  curves: { uses: training-curves, in: { run: train } }
`,
    });
    const result = await p.run('pipelines/g.yaml');
    assert.deepEqual(result.failed, []);
    const history = JSON.parse(p.read('artifacts/g/train/history.json')) as Record<string, number>[];
    assert.deepEqual(Object.keys(history[0]!), ['epoch', 'loss', 'nll', 'kl', 'beta', 'val_loss', 'val_nll', 'val_kl']);
    assert.deepEqual((JSON.parse(p.read('artifacts/g/train/model/config.json')) as { likelihood: unknown }).likelihood, {
      kind: 'gaussian',
      sigma: 0.2,
    });
    const metrics = JSON.parse(p.read('artifacts/g/eval/metrics.json')) as Record<string, number>;
    assert.equal(metrics.bce, undefined);
    assert.ok(Math.abs(metrics.neg_elbo! - (metrics.nll! + metrics.kl!)) < 1e-3, JSON.stringify(metrics));
    // 784 pixels: the constant alone is 784·log(0.2·√(2π)) ≈ −343 nats; squared errors add (x − μ)²/0.08 each.
    assert.ok(metrics.nll! > 784 * Math.log(0.2 * Math.sqrt(2 * Math.PI)), `${metrics.nll}`);
    assert.match(p.read('artifacts/g/eval/per_class.csv'), /^class,name,n,nll,kl,neg_elbo,mse,psnr,nll_mu,mse_mu,psnr_mu\n/);
  });

  it('refuses beta on infovae, whose KL weight is 1 − info_alpha', async () => {
    const p = new TempProject({
      'pipelines/i.yaml':
        'pipeline: i\nstages:\n  mnist: { uses: mnist, with: { limit_train: 32, limit_test: 8 } }\n  prep: { uses: preprocess, in: { data: mnist } }\n  train: { uses: train-vae, in: { data: prep }, with: { model: infovae, beta: 4, epochs: 1, backend: wasm } }\n',
    });
    const result = await p.run('pipelines/i.yaml');
    assert.deepEqual(result.failed, ['train']);
    const failure = result.events.find((e) => e.type === 'failed');
    assert.match(failure?.type === 'failed' ? failure.message : '', /infovae's is 1 − info_alpha/);
  });

  it('is deterministic: same seed, same backend → byte-identical outputs, every file; a retrain keeps evaluate cached', async () => {
    const yaml =
      'pipeline: det\nstages:\n  mnist: { uses: mnist, with: { limit_train: 96, limit_test: 32 } }\n  prep: { uses: preprocess, in: { data: mnist } }\n  train: { uses: train-vae, in: { data: prep }, with: { epochs: 1, batch_size: 32, backend: wasm } }\n  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { backend: wasm } }\n';
    const a = new TempProject({ 'pipelines/det.yaml': yaml });
    const b = new TempProject({ 'pipelines/det.yaml': yaml });
    await a.run('pipelines/det.yaml');
    await b.run('pipelines/det.yaml', { force: true });
    const read = (p: TempProject, file: string) => readFileSync(p.path(`artifacts/det/${file}`));
    const lock = (p: TempProject) => readLockfile(p.path('pipelines/det.lock.json'))!.stages;
    for (const id of ['mnist', 'prep', 'train', 'eval'])
      assert.equal(lock(b)[id]!.outputDigest, lock(a)[id]!.outputDigest, `${id}'s outputs differ`);
    for (const file of [
      'train/model/encoder/weights.bin',
      'train/history.json',
      'train/run.json',
      'eval/metrics.json',
      'eval/latent_mu.npy',
    ]) {
      assert.ok(read(a, file).equals(read(b, file)), `${file} differs`);
    }
    // Retraining reproduces model/ exactly, so evaluate (which reads only train.model) stays cached.
    const again = await b.run('pipelines/det.yaml', { force: ['train'] });
    assert.deepEqual(again.ran, ['train']);
    assert.ok(again.upToDate.includes('eval'));
    const c = new TempProject({ 'pipelines/det.yaml': yaml.replace('backend: wasm }', 'backend: wasm, seed: 5 }') });
    await c.run('pipelines/det.yaml');
    assert.ok(!read(c, 'train/model/encoder/weights.bin').equals(read(a, 'train/model/encoder/weights.bin')));
  });

  // tfjs-core's randomNormal takes a falsy seed for none (Math.random()), and seed 0 is what
  // many users write: validation noise (seed + first index 0) and evaluate's sampled-z noise
  // (seed · 100000 + 0) were new on every run under one fingerprint.
  it('seed 0 is a seed: validation loss and sampled-z metrics repeat under one fingerprint', async () => {
    const yaml =
      'pipeline: zero\nstages:\n  mnist: { uses: mnist, with: { limit_train: 128, limit_test: 32, validation: 0.25 } }\n  prep: { uses: preprocess, in: { data: mnist } }\n  train: { uses: train-vae, in: { data: prep }, with: { epochs: 1, batch_size: 32, seed: 0, backend: wasm } }\n  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { seed: 0, backend: wasm } }\n';
    const [a, b] = [new TempProject({ 'pipelines/zero.yaml': yaml }), new TempProject({ 'pipelines/zero.yaml': yaml })];
    for (const p of [a, b]) assert.deepEqual((await p.run('pipelines/zero.yaml')).failed, []);
    const lock = (p: TempProject) => readLockfile(p.path('pipelines/zero.lock.json'))!.stages;
    assert.equal(lock(b).train!.digest, lock(a).train!.digest);
    assert.equal(lock(b).eval!.digest, lock(a).eval!.digest);
    for (const file of ['train/history.json', 'eval/metrics.json'])
      assert.equal(b.read(`artifacts/zero/${file}`), a.read(`artifacts/zero/${file}`), `${file} differs between two runs`);
  });

  it('draws N(0, 1) noise from seed 0 as from any seed, and every other seed as tfjs-core always did', async () => {
    const tf = await loadTf('wasm', 1);
    const draw = (seed: number) => Array.from(standardNormal(tf.core, [6], seed).dataSync());
    assert.deepEqual(draw(0), draw(0));
    assert.notDeepEqual(draw(0), draw(1));
    for (const seed of [1, 42, -7, 4_200_001])
      assert.deepEqual(draw(seed), Array.from(tf.core.randomNormal([6], 0, 1, 'float32', seed).dataSync()));
  });

  const nativeMissing = 'error' in loadNativeAddon() && !process.env.ABLATE_REQUIRE_NATIVE ? 'native kernels not built' : false;
  it(
    'trains the same model on the native kernels as on wasm: same metrics to float rounding, deterministic per thread count',
    { skip: nativeMissing },
    async () => {
      const yaml = (backend: string) =>
        `pipeline: n\nstages:\n  mnist: { uses: mnist, with: { limit_train: 512, limit_test: 128 } }\n  prep: { uses: preprocess, in: { data: mnist } }\n  train: { uses: train-vae, in: { data: prep }, with: { epochs: 2, batch_size: 64, backend: ${backend} } }\n  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { backend: ${backend} } }\n`;
      const wasm = new TempProject({ 'pipelines/n.yaml': yaml('wasm') });
      const native = new TempProject({ 'pipelines/n.yaml': yaml('native') });
      const again = new TempProject({ 'pipelines/n.yaml': yaml('native') });
      for (const p of [wasm, native, again]) assert.deepEqual((await p.run('pipelines/n.yaml', { jobs: 1 })).failed, []);
      const metrics = (p: TempProject) => JSON.parse(p.read('artifacts/n/eval/metrics.json')) as Record<string, number>;
      const w = metrics(wasm);
      const n = metrics(native);
      for (const key of ['neg_elbo', 'bce', 'kl', 'mse'])
        assert.ok(Math.abs(n[key]! - w[key]!) <= 1e-3 * Math.abs(w[key]!), `${key}: native ${n[key]} vs wasm ${w[key]}`);
      assert.equal((JSON.parse(native.read('artifacts/n/train/run.json')) as { backend: string }).backend, 'native');
      assert.match(readLockfile(native.path('pipelines/n.lock.json'))!.stages.train!.fingerprint.environment.kernels!, /oneDNN/);
      const weights = (p: TempProject) => readFileSync(p.path('artifacts/n/train/model/encoder/weights.bin'));
      assert.ok(weights(native).equals(weights(again)), 'two native runs on one thread gave different weights');
      // Two threads, twice, at -j1 and -j2: the same fingerprint, so the same bytes.
      const two = [
        new TempProject({ 'pipelines/n.yaml': yaml('native, threads: 2') }),
        new TempProject({ 'pipelines/n.yaml': yaml('native, threads: 2') }),
      ];
      assert.deepEqual((await two[0]!.run('pipelines/n.yaml', { jobs: 1 })).failed, []);
      assert.deepEqual((await two[1]!.run('pipelines/n.yaml', { jobs: 2 })).failed, []);
      assert.ok(weights(two[0]!).equals(weights(two[1]!)), 'two native runs on two threads gave different weights');
    },
  );

  it('stops on a NaN/Inf loss with epoch and batch, and caches nothing', async () => {
    const p = new TempProject({
      'pipelines/nan.yaml':
        'pipeline: nan\nstages:\n  mnist: { uses: mnist, with: { limit_train: 256, limit_test: 10 } }\n  prep: { uses: preprocess, in: { data: mnist } }\n  train: { uses: train-vae, in: { data: prep }, with: { epochs: 3, batch_size: 16, lr: 1.0e+30, backend: wasm } }\n',
    });
    const result = await p.run('pipelines/nan.yaml');
    const failed = result.events.find((e) => e.type === 'failed' && e.id === 'train');
    assert.match(failed?.type === 'failed' ? failed.message : '', /loss became (NaN|Infinity) at epoch \d+, batch \d+ of 16/);
    assert.ok(!readLockfile(p.path('pipelines/nan.lock.json'))!.stages.train);
  });
});
