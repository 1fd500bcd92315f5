import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import { BackendParam, backendEnvironment, ThreadsParam } from '../ml/backend.js';
import { csvLine } from '../core/csv.js';
import { defineStage, StageError } from '../core/contract.js';

export default defineStage({
  name: 'evaluate',
  description: 'Test-set BCE, KL, −ELBO, MSE and PSNR (sampled z and z = μ), overall and per class; latents for projections.',
  threads: (p) => p.threads,
  params: Type.Object(
    {
      split: Type.Union([Type.Literal('test'), Type.Literal('val')], { default: 'test' }),
      batch_size: Type.Integer({ minimum: 1, maximum: 65_536, default: 500 }),
      seed: Type.Integer({ default: 7, description: 'Seed of the noise ε for the sampled-z metrics.' }),
      backend: BackendParam,
      threads: ThreadsParam,
      collapse_kl: Type.Number({
        minimum: 0,
        default: 0.5,
        description: 'Warn when the mean KL per image (nats) is below this: the posterior collapsed, z carries almost nothing.',
      }),
    },
    { additionalProperties: false },
  ),
  inputs: {
    model: { description: "a train-vae stage's model output (`train.model`)" },
    data: { description: 'the output of a preprocess stage' },
  },
  outputs: () => ({
    metrics: 'metrics.json',
    per_class: 'per_class.csv',
    mu: 'latent_mu.npy',
    log_var: 'latent_log_var.npy',
    labels: 'labels.npy',
    classes: 'classes.json',
  }),
  metrics: () => 'metrics.json',
  environment: backendEnvironment,
  async run(ctx) {
    const { loadTf } = await import('../ml/backend.js');
    const { readNpyAs, encodeNpy } = await import('../ml/npy.js');
    const { loadTrainedModel } = await import('../ml/vae/persist.js');
    const { klDivergence, meanSquaredError, mmd, reconstructionNll, reparameterize, standardNormal } = await import('../ml/vae/loss.js');
    const { hasDeterministicEncoder } = await import('../ml/vae/model.js');
    const { summarize } = await import('../ml/vae/metrics.js');
    const tf = await loadTf(ctx.params.backend, ctx.threads);
    const core = tf.core;
    const { kind, latentDim: d, image, classes, likelihood, encoder, decoder, codebook } = await loadTrainedModel(tf, ctx.input('model'));
    const { codebookUsage, quantize } = await import('../ml/vae/vq.js');
    // How often each codebook entry stands for a vector of a test image (vqvae).
    const usage = new Float64Array(codebook?.shape[0] ?? 0);
    const deterministic = hasDeterministicEncoder(kind);
    // The MMD models are judged by how close their codes are to the prior too.
    const withMmd = kind === 'wae' || kind === 'infovae';
    // The reconstruction term is named by its likelihood, as in the training's history.
    const rk = likelihood.kind === 'bernoulli' ? 'bce' : 'nll';
    // The decoder ends in a sigmoid; its input is the logits, which give an exact, stable likelihood.
    const logitsModel = tf.layers.model({ inputs: decoder.inputs, outputs: decoder.getLayer('logits').output });
    const split = ctx.params.split;
    const images = readNpyAs(join(ctx.input('data'), `${split}_images.npy`), 'float32');
    const labels = readNpyAs(join(ctx.input('data'), `${split}_labels.npy`), 'uint8');
    const [count, rows, cols, channels] = images.shape as [number, number, number, number];
    if (count === 0) throw new StageError(`the ${split} split is empty`);
    if (rows !== image.rows || cols !== image.cols || channels !== image.channels)
      throw new StageError(
        `the model was trained on ${image.rows}×${image.cols}×${image.channels} images but ${split}_images.npy holds ${rows}×${cols}×${channels} ones`,
      );
    const sampled = { recon: new Float32Array(count), kl: new Float32Array(count), mse: new Float32Array(count) };
    const atMean = { recon: new Float32Array(count), kl: new Float32Array(count), mse: new Float32Array(count) };
    let mmdSum = 0;
    const mus = new Float32Array(count * d);
    const logVars = new Float32Array(count * d);
    const pixels = rows * cols * channels;
    // Per pixel, the sum and sum of squares of the z = μ reconstructions over the images: their spread.
    const reconSum = new Float64Array(pixels);
    const reconSquares = new Float64Array(pixels);
    const batch = ctx.params.batch_size;
    for (let start = 0; start < count; start += batch) {
      ctx.signal.throwIfAborted();
      const n = Math.min(batch, count - start);
      const results = core.tidy(() => {
        const x = core.tensor4d(images.data.subarray(start * pixels, (start + n) * pixels), [n, rows, cols, channels]);
        const y = core.oneHot(core.tensor1d(labels.data.subarray(start, start + n), 'int32'), classes.length);
        const heads = encoder.predict(kind === 'cvae' ? [x, y] : x, { batchSize: n }) as TfTensor | TfTensor[];
        const [first, logVar] = Array.isArray(heads) ? heads : [heads];
        // A vqvae decodes its codes' nearest codebook entries; there is no posterior to sample.
        const quantized = codebook ? quantize(core, first!, codebook, codebook.shape[1]!) : undefined;
        const mu = quantized ? quantized.zq : first;
        const decodeLogits = (z: TfTensor) => logitsModel.predict(kind === 'cvae' ? [z, y] : z, { batchSize: n }) as TfTensor;
        const noise = ctx.params.seed * 100_000 + start;
        const zSample = deterministic ? mu! : reparameterize(core, mu!, logVar!, noise);
        const lSample = decodeLogits(zSample);
        const lMean = decodeLogits(mu!);
        const kl = deterministic ? core.zeros([n]) : klDivergence(core, mu!, logVar!);
        // This batch's MMD between its codes and prior draws, weighted by its images.
        const batchMmd = withMmd ? core.mul(mmd(core, zSample, standardNormal(core, zSample.shape, -noise - 1)), n) : core.scalar(0);
        return [
          reconstructionNll(core, lSample, x, likelihood),
          meanSquaredError(core, core.sigmoid(lSample), x),
          reconstructionNll(core, lMean, x, likelihood),
          meanSquaredError(core, core.sigmoid(lMean), x),
          kl,
          mu!,
          logVar ?? core.zeros(mu!.shape),
          core.sigmoid(lMean),
          batchMmd,
          quantized ? quantized.indices : core.zeros([0]),
        ];
      });
      const [bS, mS, bM, mM, kl, mu, lv, recon, batchMmd, codes] = results.map((t) => t.dataSync() as Float32Array);
      for (const code of codes!) usage[code]!++;
      mmdSum += batchMmd![0]!;
      for (let i = 0; i < n * pixels; i++) {
        const v = recon![i]!;
        reconSum[i % pixels]! += v;
        reconSquares[i % pixels]! += v * v;
      }
      sampled.recon.set(bS!, start);
      sampled.mse.set(mS!, start);
      sampled.kl.set(kl!, start);
      atMean.recon.set(bM!, start);
      atMean.mse.set(mM!, start);
      atMean.kl.set(kl!, start);
      mus.set(mu!, start * d);
      logVars.set(lv!, start * d);
      core.dispose(results);
      ctx.progress(`${Math.min(start + n, count)}/${count} ${split} images`, Math.min(start + n, count) / count);
    }
    const overallSampled = summarize(sampled);
    const overallMean = summarize(atMean);
    const metrics: Record<string, number | string> = { model: kind, images: count };
    const put = (suffix: string, s: ReturnType<typeof summarize>) => {
      metrics[`${rk}${suffix}`] = s.recon;
      if (!deterministic) {
        metrics[`kl${suffix}`] = s.kl;
        metrics[`neg_elbo${suffix}`] = s.neg_elbo;
      }
      metrics[`mse${suffix}`] = s.mse;
      metrics[`psnr${suffix}`] = s.psnr;
    };
    // The AE's code is deterministic: its "sampled" and "mean" metrics are the same numbers.
    put('', overallSampled);
    if (!deterministic) put('_mu', overallMean);
    if (withMmd) metrics.mmd = mmdSum / count;
    if (codebook) {
      const { perplexity, used } = codebookUsage(usage);
      metrics.codebook_perplexity = perplexity;
      metrics.codebook_used = used;
      ctx.log(`codebook: ${used} of ${usage.length} entries used, perplexity ${perplexity.toFixed(1)}`);
    }
    const table = [`class,name,n,${rk},kl,neg_elbo,mse,psnr,${rk}_mu,mse_mu,psnr_mu`];
    for (let c = 0; c < classes.length; c++) {
      const indices = Array.from(labels.data.keys()).filter((i) => labels.data[i] === c);
      const s = summarize(sampled, indices);
      const m = summarize(atMean, indices);
      table.push(
        csvLine(
          [c, classes[c]!, s.n, s.recon, s.kl, s.neg_elbo, s.mse, s.psnr, m.recon, m.mse, m.psnr].map((v) =>
            typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(6) : String(v),
          ),
        ),
      );
      metrics[`psnr_class_${c}`] = s.psnr;
      metrics[`mse_class_${c}`] = s.mse;
    }
    const warnings = outcomeWarnings(
      deterministic,
      metrics.kl,
      reconstructionSpread(reconSum, reconSquares, count),
      ctx.params.collapse_kl,
    );
    for (const w of warnings) ctx.log(`warning: ${w}`);
    writeFileSync(
      join(ctx.outDir, 'metrics.json'),
      JSON.stringify({ ...metrics, ...(warnings.length ? { warnings } : {}) }, null, 2) + '\n',
    );
    writeFileSync(join(ctx.outDir, 'per_class.csv'), table.join('\n') + '\n');
    writeFileSync(join(ctx.outDir, 'latent_mu.npy'), encodeNpy({ dtype: 'float32', shape: [count, d], data: mus }));
    writeFileSync(join(ctx.outDir, 'latent_log_var.npy'), encodeNpy({ dtype: 'float32', shape: [count, d], data: logVars }));
    writeFileSync(join(ctx.outDir, 'labels.npy'), encodeNpy(labels));
    // The names travel with the labels, so a scatter of these latents can say which class is which.
    writeFileSync(join(ctx.outDir, 'classes.json'), JSON.stringify({ classes }, null, 2) + '\n');
  },
});

/** Mean over pixels of the standard deviation of the reconstructions across images: 0 when every image decodes alike. */
function reconstructionSpread(sum: Float64Array, squares: Float64Array, count: number): number {
  let total = 0;
  for (let p = 0; p < sum.length; p++) {
    const mean = sum[p]! / count;
    total += Math.sqrt(Math.max(0, squares[p]! / count - mean * mean));
  }
  return total / sum.length;
}

/**
 * Results that are valid numbers but a failed model: a KL near zero means the encoder's
 * posterior equals the prior (z carries nothing, every sample is one average image), and
 * reconstructions that barely vary across images mean the decoder ignores its input.
 * 0.01 is a fiftieth of the spread of MNIST's own pixels (≈ 0.3).
 */
function outcomeWarnings(deterministic: boolean, kl: number | string | undefined, spread: number, collapseKl: number): string[] {
  const warnings: string[] = [];
  if (!deterministic && typeof kl === 'number' && kl < collapseKl)
    warnings.push(
      `posterior collapse: mean KL ${kl.toPrecision(2)} nats per image (< ${collapseKl}); z carries almost nothing, so samples and traversals show one average image. Train longer or on more images, or lower beta / add a KL warm-up`,
    );
  if (spread < 0.01)
    warnings.push(
      `constant reconstructions: they vary by ${spread.toPrecision(2)} per pixel across images (< 0.01); the decoder ignores z`,
    );
  return warnings;
}
