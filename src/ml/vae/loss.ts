/**
 * The objectives, per image: −ELBO = reconstruction + β·KL for the VAE; reconstruction +
 * λ·MMD for the WAE; reconstruction + (1 − α)·KL + (α + λ − 1)·MMD for InfoVAE.
 * Shapes: logits and x [N,H,W,C], μ, log σ² and z [N,d]; the per-image functions return [N],
 * the MMD (a distance between two sets, not a per-image quantity) a scalar.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import { fusedBernoulliNll } from '../bernoulli-nll.js';

type Core = typeof TfCore;

/**
 * −log p(x|z) for Bernoulli pixels, summed over the image: the binary cross-entropy
 * −[x·log σ(l) + (1−x)·log(1−σ(l))], computed from the logits l in the overflow-free form
 * max(l, 0) − l·x + log(1 + e^−|l|). One fused kernel each way where the backend has it
 * (bernoulli-nll.ts), tfjs's element-wise ops elsewhere.
 */
export function bceFromLogits(tf: Core, logits: TfCore.Tensor, x: TfCore.Tensor): TfCore.Tensor1D {
  return tf.tidy(() => {
    const fused = fusedBernoulliNll(tf, logits, x);
    if (fused) return fused;
    const perPixel = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, x)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    return tf.sum(tf.reshape(perPixel, [perPixel.shape[0]!, -1]), 1) as TfCore.Tensor1D;
  });
}

/**
 * −log p(x|z) for pixels x ~ N(σ(l), s²) with a fixed s, summed over the image:
 * Σ [(x − σ(l))² / (2s²) + log(s·√(2π))]. The decoder's mean is σ(l) so it stays in [0, 1]
 * like the data; the constant keeps −ELBO a bound on −log p(x) in nats (comparable between
 * models with the same s, not with a Bernoulli model's, which is another likelihood). s sets
 * how much a pixel's error weighs against KL: 1/(2s²) per squared error (s = 0.1: 50).
 */
export function gaussianNll(tf: Core, logits: TfCore.Tensor, x: TfCore.Tensor, sigma: number): TfCore.Tensor1D {
  return tf.tidy(() => {
    const perPixel = tf.add(
      tf.div(tf.squaredDifference(tf.sigmoid(logits), x), 2 * sigma * sigma),
      Math.log(sigma * Math.sqrt(2 * Math.PI)),
    );
    return tf.sum(tf.reshape(perPixel, [perPixel.shape[0]!, -1]), 1) as TfCore.Tensor1D;
  });
}

/** The pixel likelihood a model is trained under. */
export type Likelihood = { readonly kind: 'bernoulli' } | { readonly kind: 'gaussian'; readonly sigma: number };

/** −log p(x|z) under `likelihood`, per image [N]. */
export function reconstructionNll(tf: Core, logits: TfCore.Tensor, x: TfCore.Tensor, likelihood: Likelihood): TfCore.Tensor1D {
  return likelihood.kind === 'bernoulli' ? bceFromLogits(tf, logits, x) : gaussianNll(tf, logits, x, likelihood.sigma);
}

/** Scales of the inverse multiquadratic kernel, as multiples of 2·d (the WAE paper's code sums over these). */
const IMQ_SCALES = [0.1, 0.2, 0.5, 1, 2, 5, 10];

/**
 * Σ over scales c = 2·d·s of the inverse multiquadratic kernel k(a, b) = c / (c + ‖a − b‖²)
 * between every row of a [n,d] and of b [m,d]: [n,m]. IMQ rather than a Gaussian kernel
 * (Tolstikhin et al., WAE, §4): its heavy tails still pull codes far from the prior back.
 */
export function imqKernel(tf: Core, a: TfCore.Tensor, b: TfCore.Tensor): TfCore.Tensor2D {
  return tf.tidy(() => {
    const d = a.shape[1]!;
    const squaredNorms = (t: TfCore.Tensor) => tf.sum(tf.square(t), 1, true);
    // ‖a_i − b_j‖² = ‖a_i‖² + ‖b_j‖² − 2 a_i·b_j.
    const distances = tf.relu(tf.sub(tf.add(squaredNorms(a), tf.transpose(squaredNorms(b))), tf.mul(2, tf.matMul(a, b, false, true))));
    return IMQ_SCALES.map((s) => tf.div(2 * d * s, tf.add(2 * d * s, distances))).reduce((x, y) => tf.add(x, y)) as TfCore.Tensor2D;
  });
}

/**
 * The unbiased estimate of MMD² between codes z [n,d] and prior draws p [n,d]:
 * 1/(n(n−1)) Σ_{i≠j} k(z_i, z_j) + 1/(n(n−1)) Σ_{i≠j} k(p_i, p_j) − 2/n² Σ_{i,j} k(z_i, p_j).
 * Zero in expectation when the codes follow the prior; a scalar for the batch.
 */
export function mmd(tf: Core, z: TfCore.Tensor, prior: TfCore.Tensor): TfCore.Scalar {
  return tf.tidy(() => {
    const n = z.shape[0]!;
    if (n < 2) return tf.scalar(0);
    const offDiagonal = (k: TfCore.Tensor2D) => tf.div(tf.sub(tf.sum(k), tf.sum(tf.mul(k, tf.eye(n)))), n * (n - 1));
    const cross = tf.div(tf.sum(imqKernel(tf, z, prior)), n * n);
    return tf.sub(tf.add(offDiagonal(imqKernel(tf, z, z)), offDiagonal(imqKernel(tf, prior, prior))), tf.mul(2, cross)) as TfCore.Scalar;
  });
}

/** KL(q(z|x) ‖ N(0, I)) = −½ Σ_j (1 + log σ²_j − μ_j² − σ²_j): how far each code's posterior is from the prior. */
export function klDivergence(tf: Core, mu: TfCore.Tensor, logVar: TfCore.Tensor): TfCore.Tensor1D {
  return tf.tidy(() => tf.mul(-0.5, tf.sum(tf.sub(tf.sub(tf.add(1, logVar), tf.square(mu)), tf.exp(logVar)), 1)) as TfCore.Tensor1D);
}

/**
 * Draws of N(0, 1) of `shape`, the same for the same seed on every run. tfjs-core's
 * randomNormal takes a falsy seed for none and draws from Math.random(), so seed 0 (a common
 * choice, and what `seed + first index` gives) drew new noise on every run under one
 * fingerprint. It seeds its generator with the seed's text, alea(seed.toString()): given that
 * text, every other seed draws exactly what it always drew, and 0 gets a stream of its own.
 */
export function standardNormal(tf: Core, shape: number[], seed: number): TfCore.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', String(seed) as unknown as number);
}

/** z = μ + σ·ε with ε ~ N(0, I) drawn from `seed`: the reparameterization that lets gradients flow through sampling. */
export function reparameterize(tf: Core, mu: TfCore.Tensor, logVar: TfCore.Tensor, seed: number): TfCore.Tensor {
  return tf.tidy(() => tf.add(mu, tf.mul(tf.exp(tf.mul(0.5, logVar)), standardNormal(tf, mu.shape, seed))));
}

/** Mean squared error per image, per pixel: [N]. */
export function meanSquaredError(tf: Core, probabilities: TfCore.Tensor, x: TfCore.Tensor): TfCore.Tensor1D {
  return tf.tidy(() => tf.mean(tf.reshape(tf.squaredDifference(probabilities, x), [x.shape[0]!, -1]), 1) as TfCore.Tensor1D);
}
