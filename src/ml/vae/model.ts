/**
 * The seeds' models, as tfjs-layers functions with their shapes (N = batch, S = image side
 * 28 or 32, d = latent_dim, k = classes for the conditional model).
 *
 * conv encoder:  x [N,S,S,1] → Conv2D(32,3,s2,relu) [N,S/2,S/2,32] → Conv2D(64,3,s2,relu)
 *                [N,S/4,S/4,64] → Flatten → Dense(hidden,relu) → μ [N,d], log σ² [N,d]
 * conv decoder:  z [N,d] → Dense((S/4)²·64,relu) → Reshape [N,S/4,S/4,64]
 *                → Conv2DTranspose(64,3,s2,relu) [N,S/2,S/2,64] → Conv2DTranspose(32,3,s2,relu)
 *                [N,S,S,32] → Conv2DTranspose(1,3) logits [N,S,S,1]
 * dense:         Flatten → Dense(hidden,relu) → μ, log σ²;  z → Dense(hidden,relu) → Dense(S²) → logits
 * ae:            the conv body with one Dense(d) code instead of μ and log σ²
 * cvae:          one-hot labels [N,k] joined to the flattened features and to z
 * The decoders output logits: the loss uses them directly (stable); saved decoders end in a
 * sigmoid so they return pixel probabilities.
 */
import type * as TfLayers from '@tensorflow/tfjs-layers';
import type { Tf } from '../backend.js';

export type ModelKind = 'conv' | 'dense' | 'ae' | 'cvae';

export interface ModelConfig {
  readonly kind: ModelKind;
  readonly imageSize: number;
  readonly latentDim: number;
  readonly hidden: number;
  readonly classes: number;
  readonly seed: number;
}

export interface VaeModels {
  /** x (and one-hot y for cvae) → [μ, log σ²], or [code] for the ae. */
  readonly encoder: TfLayers.LayersModel;
  /** z (and one-hot y) → logits [N,S,S,1]. */
  readonly decoderLogits: TfLayers.LayersModel;
  /** Same layers, ending in a sigmoid: what is saved and used for figures. */
  readonly decoder: TfLayers.LayersModel;
}

/**
 * Glorot-uniform initializers with distinct, reproducible seeds per layer. Every layer is also
 * named: tfjs-layers otherwise numbers layers with a process-wide counter, so the saved
 * model.json depended on how many models the process had built before (a worker process that
 * trained two variants in turn wrote other names than two processes did).
 */
function seededInit(tf: Tf, seed: number) {
  let next = seed;
  return () => tf.layers.initializers.glorotUniform({ seed: next++ });
}

export function buildModels(tf: Tf, config: ModelConfig): VaeModels {
  const L = tf.layers.layers;
  const init = seededInit(tf, config.seed);
  const { imageSize: s, latentDim: d, hidden, kind } = config;
  if (kind !== 'dense' && s % 4 !== 0) throw new Error(`image size ${s} is not divisible by 4, as the conv models need`);
  const conditional = kind === 'cvae';
  const label = conditional ? L.input({ shape: [config.classes], name: 'label' }) : undefined;
  const withLabel = (t: TfLayers.SymbolicTensor) =>
    label ? (L.concatenate({ name: 'enc_join_label' }).apply([t, label]) as TfLayers.SymbolicTensor) : t;

  // Encoder.
  const x = L.input({ shape: [s, s, 1], name: 'image' });
  let h: TfLayers.SymbolicTensor;
  if (kind === 'dense') {
    h = L.flatten({ name: 'enc_flatten' }).apply(x) as TfLayers.SymbolicTensor;
  } else {
    h = L.conv2d({
      name: 'enc_conv1',
      filters: 32,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(),
    }).apply(x) as TfLayers.SymbolicTensor;
    h = L.conv2d({
      name: 'enc_conv2',
      filters: 64,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(),
    }).apply(h) as TfLayers.SymbolicTensor;
    h = L.flatten({ name: 'enc_flatten' }).apply(h) as TfLayers.SymbolicTensor;
  }
  h = L.dense({ name: 'enc_dense', units: hidden, activation: 'relu', kernelInitializer: init() }).apply(
    withLabel(h),
  ) as TfLayers.SymbolicTensor;
  const heads =
    kind === 'ae'
      ? [L.dense({ units: d, name: 'code', kernelInitializer: init() }).apply(h) as TfLayers.SymbolicTensor]
      : [
          L.dense({ units: d, name: 'z_mean', kernelInitializer: init() }).apply(h) as TfLayers.SymbolicTensor,
          L.dense({ units: d, name: 'z_log_var', kernelInitializer: init() }).apply(h) as TfLayers.SymbolicTensor,
        ];
  const encoder = tf.layers.model({ inputs: label ? [x, label] : x, outputs: heads, name: 'encoder' });

  // Decoder.
  const z = L.input({ shape: [d], name: 'z' });
  const zLabel = conditional ? L.input({ shape: [config.classes], name: 'label' }) : undefined;
  const zIn = zLabel ? (L.concatenate({ name: 'dec_join_label' }).apply([z, zLabel]) as TfLayers.SymbolicTensor) : z;
  let g: TfLayers.SymbolicTensor;
  if (kind === 'dense') {
    g = L.dense({ name: 'dec_dense1', units: hidden, activation: 'relu', kernelInitializer: init() }).apply(zIn) as TfLayers.SymbolicTensor;
    g = L.dense({ name: 'dec_dense2', units: s * s, kernelInitializer: init() }).apply(g) as TfLayers.SymbolicTensor;
    g = L.reshape({ targetShape: [s, s, 1], name: 'logits' }).apply(g) as TfLayers.SymbolicTensor;
  } else {
    const base = s / 4;
    g = L.dense({ name: 'dec_dense', units: base * base * 64, activation: 'relu', kernelInitializer: init() }).apply(
      zIn,
    ) as TfLayers.SymbolicTensor;
    g = L.reshape({ name: 'dec_reshape', targetShape: [base, base, 64] }).apply(g) as TfLayers.SymbolicTensor;
    g = L.conv2dTranspose({
      name: 'dec_deconv1',
      filters: 64,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(),
    }).apply(g) as TfLayers.SymbolicTensor;
    g = L.conv2dTranspose({
      name: 'dec_deconv2',
      filters: 32,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(),
    }).apply(g) as TfLayers.SymbolicTensor;
    g = L.conv2dTranspose({ filters: 1, kernelSize: 3, strides: 1, padding: 'same', name: 'logits', kernelInitializer: init() }).apply(
      g,
    ) as TfLayers.SymbolicTensor;
  }
  const decoderInputs = zLabel ? [z, zLabel] : z;
  const decoderLogits = tf.layers.model({ inputs: decoderInputs, outputs: g, name: 'decoder_logits' });
  const probabilities = L.activation({ activation: 'sigmoid', name: 'pixels' }).apply(g) as TfLayers.SymbolicTensor;
  const decoder = tf.layers.model({ inputs: decoderInputs, outputs: probabilities, name: 'decoder' });
  return { encoder, decoderLogits, decoder };
}
