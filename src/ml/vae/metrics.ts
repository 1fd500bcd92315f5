/**
 * Reconstruction metrics per image, then averaged overall and per class. PSNR uses peak 1.0
 * (pixels in [0, 1]): 10·log10(1 / MSE), computed per image and then averaged, as the seed
 * (002) reports it per digit.
 */
export interface ImageMetrics {
  /** −log p(x|z) under the model's likelihood (BCE for Bernoulli pixels). */
  readonly recon: Float32Array;
  readonly kl: Float32Array;
  readonly mse: Float32Array;
}

export function psnr(mse: number): number {
  return 10 * Math.log10(1 / Math.max(mse, 1e-12));
}

export interface Summary {
  readonly n: number;
  readonly recon: number;
  readonly kl: number;
  readonly neg_elbo: number;
  readonly mse: number;
  readonly psnr: number;
}

/** Means over `indices` (default: all) of the reconstruction term, KL, −ELBO = reconstruction + KL, MSE and per-image PSNR. */
export function summarize(m: ImageMetrics, indices?: readonly number[]): Summary {
  const picked = indices ?? Array.from({ length: m.recon.length }, (_, i) => i);
  const n = picked.length;
  let recon = 0;
  let kl = 0;
  let mse = 0;
  let p = 0;
  for (const i of picked) {
    recon += m.recon[i]!;
    kl += m.kl[i]!;
    mse += m.mse[i]!;
    p += psnr(m.mse[i]!);
  }
  return n === 0
    ? { n, recon: NaN, kl: NaN, neg_elbo: NaN, mse: NaN, psnr: NaN }
    : { n, recon: recon / n, kl: kl / n, neg_elbo: (recon + kl) / n, mse: mse / n, psnr: p / n };
}
