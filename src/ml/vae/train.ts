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
import { bceFromLogits, klDivergence, reparameterize } from './loss.js';
import type { ImageShape, ModelKind, VaeModels } from './model.js';

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
  readonly beta: number;
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

export interface EpochRecord {
  readonly epoch: number;
  readonly loss: number;
  readonly bce: number;
  readonly kl: number;
  readonly beta: number;
  readonly val_loss?: number;
  readonly val_bce?: number;
  readonly val_kl?: number;
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

/** Per-image reconstruction and KL for a batch: [N] each (KL is zeros for the plain autoencoder). */
export function forward(
  tf: Tf,
  models: VaeModels,
  kind: ModelKind,
  x: TfCore.Tensor,
  y: TfCore.Tensor,
  noiseSeed: number | 'mean',
  training: boolean,
): { bce: TfCore.Tensor1D; kl: TfCore.Tensor1D } {
  const core = tf.core;
  const inputs = kind === 'cvae' ? [x, y] : x;
  const heads = models.encoder.apply(inputs, { training }) as TfCore.Tensor | TfCore.Tensor[];
  if (kind === 'ae') {
    const code = Array.isArray(heads) ? heads[0]! : heads;
    const logits = models.decoderLogits.apply(code, { training }) as TfCore.Tensor;
    return { bce: bceFromLogits(core, logits, x), kl: core.zeros([x.shape[0]!]) };
  }
  const [mu, logVar] = heads as TfCore.Tensor[];
  const z = noiseSeed === 'mean' ? mu! : reparameterize(core, mu!, logVar!, noiseSeed);
  const logits = models.decoderLogits.apply(kind === 'cvae' ? [z, y] : z, { training }) as TfCore.Tensor;
  return { bce: bceFromLogits(core, logits, x), kl: klDivergence(core, mu!, logVar!) };
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
    const code = Array.isArray(heads) ? heads[0]! : heads;
    const logits = models.decoderLogits.apply(kind === 'cvae' ? [code, y] : code, { training: false }) as TfCore.Tensor;
    return tf.core.sigmoid(logits);
  });
  const data = pixels.dataSync() as Float32Array;
  pixels.dispose();
  return data;
}

/** Mean loss, BCE and KL over a whole set, with fixed noise so epochs compare fairly. */
function evaluateSet(
  tf: Tf,
  models: VaeModels,
  set: ImageSet,
  options: TrainOptions,
  beta: number,
): { loss: number; bce: number; kl: number } {
  let bce = 0;
  let kl = 0;
  for (let start = 0; start < set.count; start += options.batchSize) {
    const indices = Array.from({ length: Math.min(options.batchSize, set.count - start) }, (_, i) => start + i);
    const [b, k] = tf.core.tidy(() => {
      const { x, y } = batchOf(tf, set, indices, options.classes);
      const out = forward(tf, models, options.kind, x, y, options.seed + start, false);
      return [tf.core.sum(out.bce), tf.core.sum(out.kl)];
    });
    bce += b!.dataSync()[0]!;
    kl += k!.dataSync()[0]!;
    b!.dispose();
    k!.dispose();
  }
  return { loss: (bce + beta * kl) / set.count, bce: bce / set.count, kl: kl / set.count };
}

export function trainVae(tf: Tf, models: VaeModels, train: ImageSet, validation: ImageSet | undefined, options: TrainOptions): TrainResult {
  const core = tf.core;
  const optimizer = adamOptimizer(tf, options.learningRate);
  const variables = [...models.encoder.trainableWeights, ...models.decoderLogits.trainableWeights].map((w) => w.read() as TfCore.Variable);
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
    let sumBce = 0;
    let sumKl = 0;
    let beta = options.beta;
    for (let b = 0; b < batchesPerEpoch; b++) {
      if (options.signal.aborted) throw new StageError('training interrupted');
      beta =
        options.klWarmupEpochs > 0 ? options.beta * Math.min(1, (epoch - 1 + b / batchesPerEpoch) / options.klWarmupEpochs) : options.beta;
      const indices = order.slice(b * options.batchSize, (b + 1) * options.batchSize);
      const { x, y } = batchOf(tf, train, indices, options.classes);
      // The terms are kept out of the tape's cleanup so their values can be logged.
      const terms: TfCore.Tensor[] = [];
      const loss = optimizer.minimize(
        () => {
          const out = forward(tf, models, options.kind, x, y, (options.seed * 1000 + epoch) * 100_000 + b, true);
          const bceMean = core.keep(core.mean(out.bce));
          const klMean = core.keep(core.mean(out.kl));
          terms.push(bceMean, klMean);
          return core.add(bceMean, core.mul(beta, klMean)) as TfCore.Scalar;
        },
        true,
        variables,
      )!;
      const [l, bc, kl] = [loss.dataSync()[0]!, terms[0]!.dataSync()[0]!, terms[1]!.dataSync()[0]!];
      core.dispose([x, y, loss, ...terms]);
      if (!Number.isFinite(l))
        throw new StageError(`loss became ${l} at epoch ${epoch}, batch ${b + 1} of ${batchesPerEpoch} (try a lower lr or a KL warm-up)`);
      sumLoss += l * indices.length;
      sumBce += bc * indices.length;
      sumKl += kl * indices.length;
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
      bce: sumBce / train.count,
      kl: sumKl / train.count,
      beta,
      ...(val ? { val_loss: val.loss, val_bce: val.bce, val_kl: val.kl } : {}),
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
      best = { loss: score, epoch, weights: variables.map((v) => core.clone(v)) };
    } else if (options.patience > 0 && val && epoch - best.epoch >= options.patience) {
      stoppedEarly = true;
      break;
    }
  }
  // Keep the best epoch's weights (by validation loss when there is a validation set).
  variables.forEach((v, i) => v.assign(best.weights[i]!));
  core.dispose(best.weights);
  optimizer.dispose();
  return { history, bestEpoch: best.epoch, stoppedEarly };
}
