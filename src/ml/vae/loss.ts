/**
 * The VAE objective, per image: −ELBO = reconstruction + β·KL.
 * Shapes: logits and x [N,S,S,1], μ and log σ² [N,d]; every function returns [N].
 */
import type * as TfCore from '@tensorflow/tfjs-core';

type Core = typeof TfCore;

/**
 * −log p(x|z) for Bernoulli pixels, summed over the image: the binary cross-entropy
 * −[x·log σ(l) + (1−x)·log(1−σ(l))], computed from the logits l in the overflow-free form
 * max(l, 0) − l·x + log(1 + e^−|l|).
 */
export function bceFromLogits(tf: Core, logits: TfCore.Tensor, x: TfCore.Tensor): TfCore.Tensor1D {
  return tf.tidy(() => {
    const perPixel = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, x)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    return tf.sum(tf.reshape(perPixel, [perPixel.shape[0]!, -1]), 1) as TfCore.Tensor1D;
  });
}

/** KL(q(z|x) ‖ N(0, I)) = −½ Σ_j (1 + log σ²_j − μ_j² − σ²_j): how far each code's posterior is from the prior. */
export function klDivergence(tf: Core, mu: TfCore.Tensor, logVar: TfCore.Tensor): TfCore.Tensor1D {
  return tf.tidy(() => tf.mul(-0.5, tf.sum(tf.sub(tf.sub(tf.add(1, logVar), tf.square(mu)), tf.exp(logVar)), 1)) as TfCore.Tensor1D);
}

/** z = μ + σ·ε with ε ~ N(0, I) drawn from `seed`: the reparameterization that lets gradients flow through sampling. */
export function reparameterize(tf: Core, mu: TfCore.Tensor, logVar: TfCore.Tensor, seed: number): TfCore.Tensor {
  return tf.tidy(() => tf.add(mu, tf.mul(tf.exp(tf.mul(0.5, logVar)), tf.randomNormal(mu.shape, 0, 1, 'float32', seed))));
}

/** Mean squared error per image, per pixel: [N]. */
export function meanSquaredError(tf: Core, probabilities: TfCore.Tensor, x: TfCore.Tensor): TfCore.Tensor1D {
  return tf.tidy(() => tf.mean(tf.reshape(tf.squaredDifference(probabilities, x), [x.shape[0]!, -1]), 1) as TfCore.Tensor1D);
}
