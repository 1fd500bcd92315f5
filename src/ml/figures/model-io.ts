/**
 * Encoding and decoding with a trained model for the figure stages, in batches, returning
 * plain arrays. Images are [n, H, W, C] flattened; codes are [n, d] flattened.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import type { Tf } from '../backend.js';
import type { loadTrainedModel } from '../vae/persist.js';
import { quantize } from '../vae/vq.js';

export type TrainedModel = Awaited<ReturnType<typeof loadTrainedModel>>;

// One predict call per chunk of this many (predict's own default, 32, is far slower per image).
const BATCH = 500;

function oneHot(tf: Tf, model: TrainedModel, labels: ArrayLike<number>, from: number, n: number): TfCore.Tensor2D {
  return tf.core.oneHot(
    tf.core.tensor1d(
      Array.from({ length: n }, (_, i) => labels[from + i]!),
      'int32',
    ),
    model.classes.length,
  ) as TfCore.Tensor2D;
}

/** A vqvae's codes replaced by their nearest codebook entries (what its decoder was trained on); other codes as they are. */
function quantized(tf: Tf, model: TrainedModel, codes: TfCore.Tensor): TfCore.Tensor {
  return model.codebook ? quantize(tf.core, codes, model.codebook, model.codebook.shape[1]).zq : codes;
}

/** μ of each image (the AE's code; a vqvae's quantized grid, flattened). */
export function encodeMeans(tf: Tf, model: TrainedModel, images: Float32Array, labels: ArrayLike<number>, count: number): Float32Array {
  const { rows, cols, channels } = model.image;
  const pixels = rows * cols * channels;
  const out = new Float32Array(count * model.latentDim);
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const mu = tf.core.tidy(() => {
      const x = tf.core.tensor4d(images.subarray(start * pixels, (start + n) * pixels), [n, rows, cols, channels]);
      const heads = model.encoder.predict(model.kind === 'cvae' ? [x, oneHot(tf, model, labels, start, n)] : x, { batchSize: n }) as
        TfCore.Tensor | TfCore.Tensor[];
      return quantized(tf, model, Array.isArray(heads) ? heads[0]! : heads);
    });
    out.set(mu.dataSync() as Float32Array, start * model.latentDim);
    mu.dispose();
  }
  return out;
}

/** μ and log σ² of each image (log σ² is zeros for the AE). */
export function encodeDistributions(
  tf: Tf,
  model: TrainedModel,
  images: Float32Array,
  labels: ArrayLike<number>,
  count: number,
): { mu: Float32Array; logVar: Float32Array } {
  const { rows, cols, channels } = model.image;
  const pixels = rows * cols * channels;
  const d = model.latentDim;
  const mu = new Float32Array(count * d);
  const logVar = new Float32Array(count * d);
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const [m, v] = tf.core.tidy(() => {
      const x = tf.core.tensor4d(images.subarray(start * pixels, (start + n) * pixels), [n, rows, cols, channels]);
      const heads = model.encoder.predict(model.kind === 'cvae' ? [x, oneHot(tf, model, labels, start, n)] : x, { batchSize: n }) as
        TfCore.Tensor | TfCore.Tensor[];
      const [first, second] = Array.isArray(heads) ? heads : [heads];
      return [quantized(tf, model, first!), second ?? tf.core.zerosLike(first!)];
    });
    mu.set(m!.dataSync() as Float32Array, start * d);
    logVar.set(v!.dataSync() as Float32Array, start * d);
    tf.core.dispose([m!, v!]);
  }
  return { mu, logVar };
}

/** Decoded images (pixel probabilities) for codes z; `labels` condition a cvae. */
export function decode(tf: Tf, model: TrainedModel, z: Float32Array, labels?: ArrayLike<number>): Float32Array {
  const d = model.latentDim;
  const { rows, cols, channels } = model.image;
  const pixels = rows * cols * channels;
  const count = z.length / d;
  if (model.kind === 'cvae' && !labels) throw new Error('a conditional model needs a label for each code');
  const out = new Float32Array(count * pixels);
  for (let start = 0; start < count; start += BATCH) {
    const n = Math.min(BATCH, count - start);
    const images = tf.core.tidy(() => {
      const codes = tf.core.tensor2d(z.subarray(start * d, (start + n) * d), [n, d]);
      return model.decoder.predict(model.kind === 'cvae' ? [codes, oneHot(tf, model, labels!, start, n)] : codes, {
        batchSize: n,
      }) as TfCore.Tensor;
    });
    out.set(images.dataSync() as Float32Array, start * pixels);
    images.dispose();
  }
  return out;
}

/** Standard normal draws from a seeded uniform generator (Box–Muller). */
export function normalDraws(count: number, random: () => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u = Math.max(random(), 1e-12);
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}
