/**
 * The training loop: Adam on −ELBO (β-weighted), seeded shuffling and noise, per-epoch
 * validation, optional KL warm-up and early stopping with the best weights kept.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import { StageError } from '../../core/contract.js';
import { seededRandom } from '../../core/random.js';
import { shuffle } from '../sampling.js';
import { adamOptimizer } from '../adam.js';
import type { Tf } from '../backend.js';
import { klDivergence, mmd, reconstructionNll, reparameterize, standardNormal, type Likelihood } from './loss.js';
import { hasDeterministicEncoder, type ImageShape, type ModelKind, type VaeModels } from './model.js';
import { initCodebook, quantize, updateCodebook, vqLoss } from './vq.js';

/** Images [N,H,W,C] in [0, 1] and their labels. */
export interface ImageSet {
  readonly images: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly shape: ImageShape;
}

export interface TrainOptions {
  readonly kind: ModelKind;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly likelihood: Likelihood;
  /** Weight of KL: β for the VAEs, 1 − α for InfoVAE (0 terms for the deterministic encoders). */
  readonly beta: number;
  /** Weight of the MMD between the batch's codes and prior draws: λ for the WAE, α + λ − 1 for InfoVAE, 0 otherwise. */
  readonly mmdWeight: number;
  /** The vqvae's commitment weight c (vq.ts). */
  readonly commitment?: number;
  /** Epochs over which β ramps linearly from 0 (0: no warm-up). */
  readonly klWarmupEpochs: number;
  /** Stop after this many epochs without a better validation loss (0: never), keeping the best weights. */
  readonly patience: number;
  readonly classes: number;
  readonly seed: number;
  readonly signal: AbortSignal;
  readonly progress: (message: string, fraction: number) => void;
  /** One line per epoch with its time and speed, for the stage log. */
  readonly log?: (line: string) => void;
  /** Called after each epoch's record, with that epoch's weights still in place (TensorBoard's images). */
  readonly onEpoch?: (record: EpochRecord) => void;
}

/** One epoch's means per image; `recon` is −log p(x|z) under the model's likelihood (BCE for Bernoulli pixels). */
export interface EpochRecord {
  readonly epoch: number;
  readonly loss: number;
  readonly recon: number;
  readonly kl: number;
  readonly beta: number;
  /** Mean over batches of the batch MMD, for the models that train with one. */
  readonly mmd?: number;
  /** The vqvae's codebook + commitment term per image. */
  readonly vq?: number;
  readonly val_loss?: number;
  readonly val_recon?: number;
  readonly val_kl?: number;
  readonly val_mmd?: number;
  readonly val_vq?: number;
}

export interface TrainResult {
  readonly history: EpochRecord[];
  /** 1-based epoch whose weights were kept. */
  readonly bestEpoch: number;
  readonly stoppedEarly: boolean;
}

/** Copies images `indices` of `set` into one batch tensor [B,H,W,C] (and one-hot labels [B,k]). */
function batchOf(tf: Tf, set: ImageSet, indices: readonly number[], classes: number): { x: TfCore.Tensor4D; y: TfCore.Tensor2D } {
  const { rows, cols, channels } = set.shape;
  const pixels = rows * cols * channels;
  const data = new Float32Array(indices.length * pixels);
  const oneHot = new Float32Array(indices.length * classes);
  indices.forEach((index, k) => {
    data.set(set.images.subarray(index * pixels, (index + 1) * pixels), k * pixels);
    oneHot[k * classes + set.labels[index]!] = 1;
  });
  return { x: tf.core.tensor4d(data, [indices.length, rows, cols, channels]), y: tf.core.tensor2d(oneHot, [indices.length, classes]) };
}

/**
 * Per-image reconstruction −log p(x|z) and KL for a batch, [N] each (KL is zeros for the
 * deterministic encoders), and the codes z [N,d] the decoder saw (what an MMD compares).
 */
export function forward(
  tf: Tf,
  models: VaeModels,
  kind: ModelKind,
  x: TfCore.Tensor,
  y: TfCore.Tensor,
  noiseSeed: number | 'mean',
  training: boolean,
  likelihood: Likelihood = { kind: 'bernoulli' },
  commitment = 0.25,
): {
  recon: TfCore.Tensor1D;
  kl: TfCore.Tensor1D;
  z: TfCore.Tensor;
  /** The vqvae's commitment term [N], its encoder output and the codebook entry of each vector. */
  vq?: { loss: TfCore.Tensor1D; ze: TfCore.Tensor; indices: TfCore.Tensor1D };
} {
  const core = tf.core;
  const inputs = kind === 'cvae' ? [x, y] : x;
  const heads = models.encoder.apply(inputs, { training }) as TfCore.Tensor | TfCore.Tensor[];
  if (kind === 'vqvae') {
    const ze = heads as TfCore.Tensor;
    const { zq, indices } = quantize(core, ze, models.codebook!, models.codebook!.shape[1]!);
    const { decoderInput, loss } = vqLoss(core, ze, zq, commitment);
    const logits = models.decoderLogits.apply(decoderInput, { training }) as TfCore.Tensor;
    return { recon: reconstructionNll(core, logits, x, likelihood), kl: core.zeros([x.shape[0]!]), z: zq, vq: { loss, ze, indices } };
  }
  if (hasDeterministicEncoder(kind)) {
    const code = Array.isArray(heads) ? heads[0]! : heads;
    const logits = models.decoderLogits.apply(code, { training }) as TfCore.Tensor;
    return { recon: reconstructionNll(core, logits, x, likelihood), kl: core.zeros([x.shape[0]!]), z: code };
  }
  const [mu, logVar] = heads as TfCore.Tensor[];
  const z = noiseSeed === 'mean' ? mu! : reparameterize(core, mu!, logVar!, noiseSeed);
  const logits = models.decoderLogits.apply(kind === 'cvae' ? [z, y] : z, { training }) as TfCore.Tensor;
  return { recon: reconstructionNll(core, logits, x, likelihood), kl: klDivergence(core, mu!, logVar!), z };
}

/** The batch MMD between codes z [N,d] and as many draws from N(0, I), seeded apart from the reparameterization's noise. */
function priorMmd(tf: Tf, z: TfCore.Tensor, seed: number): TfCore.Scalar {
  return mmd(tf.core, z, standardNormal(tf.core, z.shape, -seed - 1));
}

/**
 * Reconstructions of a batch at z = μ (the autoencoder's code), as pixels in [0, 1]
 * [B,H,W,C]: no noise is drawn, so looking at them never changes what training does next.
 */
export function reconstructAtMean(
  tf: Tf,
  models: VaeModels,
  kind: ModelKind,
  set: ImageSet,
  indices: readonly number[],
  classes: number,
): Float32Array {
  const pixels = tf.core.tidy(() => {
    const { x, y } = batchOf(tf, set, indices, classes);
    const heads = models.encoder.apply(kind === 'cvae' ? [x, y] : x, { training: false }) as TfCore.Tensor | TfCore.Tensor[];
    const first = Array.isArray(heads) ? heads[0]! : heads;
    const code = kind === 'vqvae' ? quantize(tf.core, first, models.codebook!, models.codebook!.shape[1]!).zq : first;
    const logits = models.decoderLogits.apply(kind === 'cvae' ? [code, y] : code, { training: false }) as TfCore.Tensor;
    return tf.core.sigmoid(logits);
  });
  const data = pixels.dataSync() as Float32Array;
  pixels.dispose();
  return data;
}

/** Mean loss, reconstruction, KL (and MMD) over a whole set, with fixed noise so epochs compare fairly. */
function evaluateSet(
  tf: Tf,
  models: VaeModels,
  set: ImageSet,
  options: TrainOptions,
  beta: number,
): { loss: number; recon: number; kl: number; mmd?: number; vq?: number } {
  let recon = 0;
  let kl = 0;
  let regularizerSum = 0;
  for (let start = 0; start < set.count; start += options.batchSize) {
    const indices = Array.from({ length: Math.min(options.batchSize, set.count - start) }, (_, i) => start + i);
    const sums = tf.core.tidy(() => {
      const { x, y } = batchOf(tf, set, indices, options.classes);
      const out = forward(tf, models, options.kind, x, y, options.seed + start, false, options.likelihood, options.commitment);
      const terms = [tf.core.sum(out.recon), tf.core.sum(out.kl)];
      if (out.vq) return [...terms, tf.core.sum(out.vq.loss)];
      // A batch's MMD weighs by its images, so a short last batch counts for what it holds.
      return options.mmdWeight ? [...terms, tf.core.mul(priorMmd(tf, out.z, options.seed + start), indices.length)] : terms;
    });
    const [r, k, m] = sums.map((t) => t.dataSync()[0]!);
    recon += r!;
    kl += k!;
    regularizerSum += m ?? 0;
    tf.core.dispose(sums);
  }
  if (options.kind === 'vqvae')
    return { loss: (recon + regularizerSum) / set.count, recon: recon / set.count, kl: 0, vq: regularizerSum / set.count };
  if (!options.mmdWeight) return { loss: (recon + beta * kl) / set.count, recon: recon / set.count, kl: kl / set.count };
  const mmdMean = regularizerSum / set.count;
  return {
    loss: (recon + beta * kl) / set.count + options.mmdWeight * mmdMean,
    recon: recon / set.count,
    kl: kl / set.count,
    mmd: mmdMean,
  };
}

/** A vqvae's codebook from the encoder's vectors for the first batch of the training set (file order). */
function startCodebook(tf: Tf, models: VaeModels, train: ImageSet, options: TrainOptions) {
  const first = Array.from({ length: Math.min(options.batchSize, train.count) }, (_, i) => i);
  const { x, y } = batchOf(tf, train, first, options.classes);
  const ze = models.encoder.apply(x, { training: false }) as TfCore.Tensor;
  const averages = initCodebook(tf.core, models.codebook!, ze);
  tf.core.dispose([x, y, ze]);
  return averages;
}

export function trainVae(tf: Tf, models: VaeModels, train: ImageSet, validation: ImageSet | undefined, options: TrainOptions): TrainResult {
  const core = tf.core;
  const optimizer = adamOptimizer(tf, options.learningRate);
  // Adam trains the layers; a vqvae's codebook moves by moving averages (vq.ts) but is kept with the best weights.
  const variables = [...models.encoder.trainableWeights, ...models.decoderLogits.trainableWeights].map((w) => w.read() as TfCore.Variable);
  const kept = models.codebook ? [...variables, models.codebook] : variables;
  const averages = models.codebook ? startCodebook(tf, models, train, options) : undefined;
  const history: EpochRecord[] = [];
  const batchesPerEpoch = Math.ceil(train.count / options.batchSize);
  let best = { loss: Infinity, epoch: 0, weights: [] as TfCore.Tensor[] };
  let stoppedEarly = false;
  let lastReport = 0;
  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    const started = performance.now();
    const order = shuffle(
      Array.from({ length: train.count }, (_, i) => i),
      seededRandom(options.seed * 1000 + epoch),
    );
    let sumLoss = 0;
    let sumRecon = 0;
    let sumKl = 0;
    let sumRegularizer = 0;
    let beta = options.beta;
    for (let b = 0; b < batchesPerEpoch; b++) {
      if (options.signal.aborted) throw new StageError('training interrupted');
      beta =
        options.klWarmupEpochs > 0 ? options.beta * Math.min(1, (epoch - 1 + b / batchesPerEpoch) / options.klWarmupEpochs) : options.beta;
      const indices = order.slice(b * options.batchSize, (b + 1) * options.batchSize);
      const { x, y } = batchOf(tf, train, indices, options.classes);
      // The terms are kept out of the tape's cleanup so their values can be logged.
      const terms: TfCore.Tensor[] = [];
      const assignments: TfCore.Tensor[] = [];
      const noiseSeed = (options.seed * 1000 + epoch) * 100_000 + b;
      const loss = optimizer.minimize(
        () => {
          const out = forward(tf, models, options.kind, x, y, noiseSeed, true, options.likelihood, options.commitment);
          const reconMean = core.keep(core.mean(out.recon));
          const klMean = core.keep(core.mean(out.kl));
          terms.push(reconMean, klMean);
          const elbo = core.add(reconMean, core.mul(beta, klMean)) as TfCore.Scalar;
          if (out.vq) {
            const vqMean = core.keep(core.mean(out.vq.loss));
            terms.push(vqMean);
            assignments.push(core.keep(out.vq.ze), core.keep(out.vq.indices));
            return core.add(reconMean, vqMean) as TfCore.Scalar;
          }
          if (!options.mmdWeight) return elbo;
          const batchMmd = core.keep(priorMmd(tf, out.z, noiseSeed));
          terms.push(batchMmd);
          return core.add(elbo, core.mul(options.mmdWeight, batchMmd)) as TfCore.Scalar;
        },
        true,
        variables,
      )!;
      const [l, bc, kl, mm] = [loss, ...terms].map((t) => t.dataSync()[0]!) as [number, number, number, number?];
      // The codebook follows the vectors this step assigned to it (vq.ts), outside the gradient step.
      if (models.codebook && averages) updateCodebook(core, models.codebook, averages, assignments[0]!, assignments[1]!);
      core.dispose([x, y, loss, ...terms, ...assignments]);
      if (!Number.isFinite(l))
        throw new StageError(`loss became ${l} at epoch ${epoch}, batch ${b + 1} of ${batchesPerEpoch} (try a lower lr or a KL warm-up)`);
      sumLoss += l * indices.length;
      sumRecon += bc * indices.length;
      sumKl += kl * indices.length;
      sumRegularizer += (mm ?? 0) * indices.length;
      const now = performance.now();
      if (now - lastReport > 500 || b === batchesPerEpoch - 1) {
        lastReport = now;
        const seen = Math.min((b + 1) * options.batchSize, train.count);
        const rate = seen / ((now - started) / 1000);
        options.progress(
          `epoch ${epoch}/${options.epochs} batch ${b + 1}/${batchesPerEpoch} loss ${(sumLoss / seen).toFixed(1)} · ${rate.toFixed(0)} img/s`,
          (epoch - 1 + (b + 1) / batchesPerEpoch) / options.epochs,
        );
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const val = validation && validation.count > 0 ? evaluateSet(tf, models, validation, options, beta) : undefined;
    history.push({
      epoch,
      loss: sumLoss / train.count,
      recon: sumRecon / train.count,
      kl: sumKl / train.count,
      beta,
      ...(options.kind === 'vqvae' ? { vq: sumRegularizer / train.count } : options.mmdWeight ? { mmd: sumRegularizer / train.count } : {}),
      ...(val
        ? {
            val_loss: val.loss,
            val_recon: val.recon,
            val_kl: val.kl,
            ...(val.mmd === undefined ? {} : { val_mmd: val.mmd }),
            ...(val.vq === undefined ? {} : { val_vq: val.vq }),
          }
        : {}),
    });
    options.onEpoch?.(history[history.length - 1]!);
    // Speed goes to the log and the progress line, not into the outputs: those must be the same
    // bytes on every execution with the same fingerprint.
    options.log?.(
      `epoch ${epoch}: loss ${(sumLoss / train.count).toFixed(2)}${val ? `, val ${val.loss.toFixed(2)}` : ''} · ${seconds.toFixed(1)} s, ${(train.count / seconds).toFixed(0)} img/s`,
    );
    // Without a validation set there is nothing to select on: the last epoch is kept.
    const score = val ? val.loss : -epoch;
    if (score < best.loss) {
      core.dispose(best.weights);
      best = { loss: score, epoch, weights: kept.map((v) => core.clone(v)) };
    } else if (options.patience > 0 && val && epoch - best.epoch >= options.patience) {
      stoppedEarly = true;
      break;
    }
  }
  // Keep the best epoch's weights (by validation loss when there is a validation set).
  kept.forEach((v, i) => v.assign(best.weights[i]!));
  core.dispose(best.weights);
  if (averages) core.dispose([averages.counts, averages.sums]);
  optimizer.dispose();
  return { history, bestEpoch: best.epoch, stoppedEarly };
}
