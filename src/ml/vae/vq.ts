/**
 * Vector quantization for the VQ-VAE (van den Oord et al., 2017). The encoder's output is a
 * grid of h×w vectors of `dim` numbers, flattened to [N, h·w·dim]; each vector is replaced by
 * its nearest codebook entry (K entries [K, dim]). The decoder sees only codebook entries, so
 * an image is h·w discrete codes.
 *
 * Loss per image, summed over its h·w vectors (as the reconstruction term sums its pixels):
 *   c·‖z_e − sg[z_q]‖²   the commitment term (c = 0.25 in the paper): keeps the encoder near its codes
 * where sg is stop-gradient. The argmin has no gradient, so the decoder's input is the
 * straight-through estimate z_e + sg[z_q − z_e]: the value of z_q, the gradient of z_e.
 * The codebook follows its vectors by exponential moving averages (the paper's appendix A.1,
 * decay 0.99) instead of the loss term ‖sg[z_e] − z_q‖²: Adam moves an entry at most about
 * lr per step, and here the encoder's outputs outran it (the VQ term grew to 15× the
 * reconstruction in three epochs while 6 of 32 entries were used). Entries start as evenly
 * spaced vectors of the first batch, so each begins where codes actually are.
 */
import type * as TfCore from '@tensorflow/tfjs-core';

type Core = typeof TfCore;

/** sg[x]: x in the forward pass, no gradient in the backward one. */
export function stopGradient(tf: Core, x: TfCore.Tensor): TfCore.Tensor {
  const identity = tf.customGrad((...inputs) => ({
    value: tf.clone(inputs[0] as TfCore.Tensor),
    gradFunc: (dy: TfCore.Tensor) => tf.zerosLike(dy),
  }));
  return identity(x);
}

/**
 * Nearest codebook entry of every vector of zFlat [N, h·w·dim]: the entries' indices [N·h·w]
 * and z_q [N, h·w·dim]. Distances ‖z − e_k‖² = ‖z‖² − 2 z·e_k + ‖e_k‖²; z_q is one-hot · codebook,
 * a matrix product, so its gradient reaches the codebook on every backend.
 */
export function quantize(
  tf: Core,
  zFlat: TfCore.Tensor,
  codebook: TfCore.Tensor,
  dim: number,
): { zq: TfCore.Tensor; indices: TfCore.Tensor1D } {
  return tf.tidy(() => {
    const vectors = tf.reshape(zFlat, [-1, dim]);
    const distances = tf.add(
      tf.sub(tf.sum(tf.square(vectors), 1, true), tf.mul(2, tf.matMul(vectors, codebook, false, true))),
      tf.transpose(tf.sum(tf.square(codebook), 1, true)),
    );
    const indices = tf.argMin(distances, 1) as TfCore.Tensor1D;
    const zq = tf.reshape(tf.matMul(tf.oneHot(indices, codebook.shape[0]!), codebook), zFlat.shape);
    return { zq, indices };
  });
}

/** The straight-through decoder input and the per-image commitment loss [N]. */
export function vqLoss(
  tf: Core,
  zFlat: TfCore.Tensor,
  zq: TfCore.Tensor,
  commitment: number,
): { decoderInput: TfCore.Tensor; loss: TfCore.Tensor1D } {
  const perImage = (t: TfCore.Tensor) => tf.sum(tf.reshape(tf.square(t), [t.shape[0]!, -1]), 1) as TfCore.Tensor1D;
  return {
    decoderInput: tf.add(zFlat, stopGradient(tf, tf.sub(zq, zFlat))),
    loss: tf.mul(commitment, perImage(tf.sub(zFlat, stopGradient(tf, zq)))) as TfCore.Tensor1D,
  };
}

/** The moving averages behind the codebook: how many vectors each entry stood for, and their sum. */
export interface CodebookAverages {
  readonly counts: TfCore.Variable;
  readonly sums: TfCore.Variable;
}

const EMA_DECAY = 0.99;

/** Entries from evenly spaced vectors of a first batch's codes; the averages start as one vector each. */
export function initCodebook(tf: Core, codebook: TfCore.Variable, zFlat: TfCore.Tensor): CodebookAverages {
  return tf.tidy(() => {
    const [k, dim] = codebook.shape as [number, number];
    const vectors = tf.reshape(zFlat, [-1, dim]);
    const m = vectors.shape[0]!;
    const picks = Array.from({ length: k }, (_, i) => Math.floor((i * m) / k) % m);
    codebook.assign(tf.gather(vectors, tf.tensor1d(picks, 'int32')));
    return { counts: tf.variable(tf.ones([k]), false, 'codebook_counts'), sums: tf.variable(codebook.clone(), false, 'codebook_sums') };
  });
}

/**
 * One EMA step: counts ← γ·counts + (1 − γ)·n_k, sums ← γ·sums + (1 − γ)·Σ_{z→k} z,
 * entry_k = sums_k / (counts_k + 1e-5), for the vectors z of zFlat assigned to `indices`.
 */
export function updateCodebook(
  tf: Core,
  codebook: TfCore.Variable,
  averages: CodebookAverages,
  zFlat: TfCore.Tensor,
  indices: TfCore.Tensor,
): void {
  tf.tidy(() => {
    const [k, dim] = codebook.shape as [number, number];
    const assigned = tf.oneHot(indices as TfCore.Tensor1D, k);
    const vectors = tf.reshape(zFlat, [-1, dim]);
    averages.counts.assign(tf.add(tf.mul(EMA_DECAY, averages.counts), tf.mul(1 - EMA_DECAY, tf.sum(assigned, 0))));
    averages.sums.assign(tf.add(tf.mul(EMA_DECAY, averages.sums), tf.mul(1 - EMA_DECAY, tf.matMul(assigned, vectors, true, false))));
    codebook.assign(tf.div(averages.sums, tf.add(tf.expandDims(averages.counts, 1), 1e-5)));
  });
}

/**
 * How many codebook entries the codes use: the perplexity exp(−Σ p_k log p_k) of their
 * frequencies p_k (K when all K are used equally, 1 when one entry stands for everything) and
 * the number used at least once.
 */
export function codebookUsage(counts: ArrayLike<number>): { perplexity: number; used: number } {
  let total = 0;
  for (let k = 0; k < counts.length; k++) total += counts[k]!;
  let entropy = 0;
  let used = 0;
  for (let k = 0; k < counts.length; k++) {
    if (!counts[k]) continue;
    used++;
    const p = counts[k]! / total;
    entropy -= p * Math.log(p);
  }
  return { perplexity: Math.exp(entropy), used };
}
