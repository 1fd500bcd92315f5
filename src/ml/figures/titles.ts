/** Figure titles that name the model, so two figures of an ablation never share a title. */
import type { Variant } from '../../core/contract.js';

const KIND_NAMES: Readonly<Record<string, string>> = {
  conv: 'conv VAE',
  dense: 'dense VAE',
  ae: 'autoencoder',
  cvae: 'conditional VAE',
};

/**
 * `conv VAE, d = 10, β = 4`: the kind, the latent dim, then the variant's other keys (the
 * model and latent dim are already said).
 */
export function modelTitle(model: { readonly kind: string; readonly latentDim: number }, variant: Variant): string {
  const rest = Object.entries(variant)
    .filter(([k]) => k !== 'model' && k !== 'latent_dim')
    .map(([k, v]) => `${k === 'beta' ? 'β' : k} = ${String(v)}`);
  return [KIND_NAMES[model.kind] ?? model.kind, `d = ${model.latentDim}`, ...rest].join(', ');
}
