/** Figure titles that name the model, so two figures of an ablation never share a title. */
import type { Variant } from '../../core/contract.js';

const KIND_NAMES: Readonly<Record<string, string>> = {
  conv: 'conv VAE',
  dense: 'dense VAE',
  ae: 'autoencoder',
  cvae: 'conditional VAE',
  wae: 'WAE-MMD',
  infovae: 'InfoVAE',
  vqvae: 'VQ-VAE',
};

/**
 * `conv VAE, d = 10, β = 4`: the kind, the latent dim, then the variant's other keys (the
 * model and latent dim are already said).
 */
export function modelTitle(model: { readonly kind: string; readonly latentDim: number }, variant: Variant): string {
  return [KIND_NAMES[model.kind] ?? model.kind, `d = ${model.latentDim}`, ...variantWords(variant, ['model', 'latent_dim'])].join(', ');
}

/** A variant as a title says it: `β = 4`, `seed = 2` (the keys in `skip` left out). */
export function variantWords(variant: Variant, skip: readonly string[] = []): string[] {
  return Object.entries(variant)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k === 'beta' ? 'β' : k} = ${String(v)}`);
}
