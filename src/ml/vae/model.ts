/**
 * The seeds' models, as tfjs-layers functions with their shapes (N = batch, H×W×C the image,
 * D = depth, the number of stride-2 blocks, F_i = 32·2^i filters, d = latent_dim, k = classes
 * for the conditional model).
 *
 * conv encoder:  x [N,H,W,C] → D × Conv2D(F_i,3,s2,relu), halving each side: [N,H/2^D,W/2^D,F_{D−1}]
 *                → Flatten → Dense(hidden,relu) → μ [N,d], log σ² [N,d]
 * conv decoder:  z [N,d] → Dense((H/2^D)(W/2^D)·F_{D−1},relu) → Reshape → D × Conv2DTranspose(
 *                F_{D−1−i},3,s2,relu), doubling each side → Conv2DTranspose(C,3) logits [N,H,W,C]
 *                With D = 2 on 28×28 or 32×32 grey images this is exactly the seeds' network
 *                (32 and 64 filters); 64×64 gets D = 3 (32, 64, 128), seed 003's depth for faces.
 * dense:         Flatten → Dense(hidden,relu) → μ, log σ²;  z → Dense(hidden,relu) → Dense(H·W·C) → logits
 * ae, wae:       the conv body with one Dense(d) code instead of μ and log σ²
 * infovae:       the conv VAE (μ, log σ²); only its objective differs (loss.ts)
 * vqvae:         the conv body → Conv2D(d,1) z_e [N,H/2^D,W/2^D,d], flattened; each of its
 *                vectors is replaced by its nearest of K codebook entries (vq.ts); the decoder
 *                reshapes the flat codes back to the grid and runs the conv decoder from there
 * cvae:          one-hot labels [N,k] joined to the flattened features and to z
 * The decoders output logits: the loss uses them directly (stable); saved decoders end in a
 * sigmoid so they return pixel probabilities.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import type { Tf } from '../backend.js';
import { withFusedKernels } from '../fused-conv.js';

export type ModelKind = 'conv' | 'dense' | 'ae' | 'cvae' | 'wae' | 'infovae' | 'vqvae';

/**
 * Kinds whose encoder gives one code per image and no σ: the autoencoder, and the WAE, whose
 * deterministic encoder is the one Tolstikhin et al. train (the MMD, not noise, shapes its codes).
 */
export function hasDeterministicEncoder(kind: ModelKind): boolean {
  return kind === 'ae' || kind === 'wae' || kind === 'vqvae';
}

/** An image's rows, columns and channels (1 grey, 3 RGB). */
export interface ImageShape {
  readonly rows: number;
  readonly cols: number;
  readonly channels: number;
}

export interface ModelConfig {
  readonly kind: ModelKind;
  readonly image: ImageShape;
  /** Stride-2 blocks of the conv models (defaultDepth). */
  readonly depth: number;
  readonly latentDim: number;
  readonly hidden: number;
  readonly classes: number;
  /** Codebook entries K of the vqvae. */
  readonly codebookSize?: number;
  readonly seed: number;
}

export interface VaeModels {
  /** x (and one-hot y for cvae) → [μ, log σ²], or [code] for the ae. */
  readonly encoder: TfLayers.LayersModel;
  /** z (and one-hot y) → logits [N,H,W,C]. */
  readonly decoderLogits: TfLayers.LayersModel;
  /** Same layers, ending in a sigmoid: what is saved and used for figures. */
  readonly decoder: TfLayers.LayersModel;
  /** The vqvae's codebook [K, d], trained with the layers. */
  readonly codebook?: TfCore.Variable;
}

/**
 * The seeds' two stride-2 blocks up to 32 pixels a side, then one more per doubling, so the
 * smallest feature map stays at most 8 pixels a side (7×7 for MNIST, 8×8 for 64×64 faces).
 */
export function defaultDepth(image: ImageShape): number {
  let depth = 2;
  while (Math.max(image.rows, image.cols) / 2 ** depth > 8) depth++;
  return depth;
}

/** Why the conv models cannot take this image at this depth, or undefined when they can. */
export function convShapeProblem(image: ImageShape, depth: number): string | undefined {
  const step = 2 ** depth;
  if (image.rows % step === 0 && image.cols % step === 0) return undefined;
  return `${image.rows}×${image.cols} images do not halve evenly ${depth} times (depth ${depth} needs both sides divisible by ${step}); pad them (preprocess pad_to) or choose another depth`;
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
  const { image, depth, latentDim: d, hidden, kind } = config;
  const { rows, cols, channels } = image;
  const problem = kind === 'dense' ? undefined : convShapeProblem(image, depth);
  if (problem) throw new Error(problem);
  const filters = Array.from({ length: depth }, (_, i) => 32 * 2 ** i);
  const conditional = kind === 'cvae';
  const label = conditional ? L.input({ shape: [config.classes], name: 'label' }) : undefined;
  const withLabel = (t: TfLayers.SymbolicTensor) =>
    label ? (L.concatenate({ name: 'enc_join_label' }).apply([t, label]) as TfLayers.SymbolicTensor) : t;
  const stride2 = (layer: 'conv2d' | 'conv2dTranspose', name: string, units: number, input: TfLayers.SymbolicTensor) =>
    withFusedKernels(
      tf,
      L[layer]({ name, filters: units, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init() }),
      layer === 'conv2dTranspose',
    ).apply(input) as TfLayers.SymbolicTensor;

  // Encoder.
  const x = L.input({ shape: [rows, cols, channels], name: 'image' });
  let h = x;
  if (kind !== 'dense') filters.forEach((units, i) => (h = stride2('conv2d', `enc_conv${i + 1}`, units, h)));
  const [baseRows, baseCols, top] = [rows / 2 ** depth, cols / 2 ** depth, filters[depth - 1]!];
  if (kind === 'vqvae') return buildVqModels(tf, config, x, h, init, stride2, filters, { baseRows, baseCols });
  h = L.flatten({ name: 'enc_flatten' }).apply(h) as TfLayers.SymbolicTensor;
  h = L.dense({ name: 'enc_dense', units: hidden, activation: 'relu', kernelInitializer: init() }).apply(
    withLabel(h),
  ) as TfLayers.SymbolicTensor;
  const heads = hasDeterministicEncoder(kind)
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
    g = L.dense({ name: 'dec_dense2', units: rows * cols * channels, kernelInitializer: init() }).apply(g) as TfLayers.SymbolicTensor;
    g = L.reshape({ targetShape: [rows, cols, channels], name: 'logits' }).apply(g) as TfLayers.SymbolicTensor;
  } else {
    g = L.dense({ name: 'dec_dense', units: baseRows * baseCols * top, activation: 'relu', kernelInitializer: init() }).apply(
      zIn,
    ) as TfLayers.SymbolicTensor;
    g = L.reshape({ name: 'dec_reshape', targetShape: [baseRows, baseCols, top] }).apply(g) as TfLayers.SymbolicTensor;
    g = deconvolutions(tf, g, filters, channels, init, stride2);
  }
  return { encoder, ...decoderModels(tf, zLabel ? [z, zLabel] : z, g) };
}

/** The conv decoder's upsampling: one stride-2 transposed convolution per encoder block, then C logits per pixel. */
function deconvolutions(
  tf: Tf,
  input: TfLayers.SymbolicTensor,
  filters: readonly number[],
  channels: number,
  init: () => ReturnType<Tf['layers']['initializers']['glorotUniform']>,
  stride2: (layer: 'conv2d' | 'conv2dTranspose', name: string, units: number, input: TfLayers.SymbolicTensor) => TfLayers.SymbolicTensor,
): TfLayers.SymbolicTensor {
  let g = input;
  [...filters].reverse().forEach((units, i) => (g = stride2('conv2dTranspose', `dec_deconv${i + 1}`, units, g)));
  const logits = withFusedKernels(
    tf,
    tf.layers.layers.conv2dTranspose({
      filters: channels,
      kernelSize: 3,
      strides: 1,
      padding: 'same',
      name: 'logits',
      kernelInitializer: init(),
    }),
    true,
  );
  return logits.apply(g) as TfLayers.SymbolicTensor;
}

/** The decoder twice: ending in logits (for the loss) and in a sigmoid (what is saved: pixel probabilities). */
function decoderModels(tf: Tf, inputs: TfLayers.SymbolicTensor | TfLayers.SymbolicTensor[], logits: TfLayers.SymbolicTensor) {
  const decoderLogits = tf.layers.model({ inputs, outputs: logits, name: 'decoder_logits' });
  const probabilities = tf.layers.layers.activation({ activation: 'sigmoid', name: 'pixels' }).apply(logits) as TfLayers.SymbolicTensor;
  return { decoderLogits, decoder: tf.layers.model({ inputs, outputs: probabilities, name: 'decoder' }) };
}

/** The vqvae's halves and codebook (shapes in the header); `h` is the conv body's output. */
function buildVqModels(
  tf: Tf,
  config: ModelConfig,
  x: TfLayers.SymbolicTensor,
  h: TfLayers.SymbolicTensor,
  init: () => ReturnType<Tf['layers']['initializers']['glorotUniform']>,
  stride2: (layer: 'conv2d' | 'conv2dTranspose', name: string, units: number, input: TfLayers.SymbolicTensor) => TfLayers.SymbolicTensor,
  filters: readonly number[],
  grid: { baseRows: number; baseCols: number },
): VaeModels {
  const L = tf.layers.layers;
  const d = config.latentDim;
  const k = config.codebookSize ?? 64;
  const ze = L.conv2d({ name: 'z_e', filters: d, kernelSize: 1, padding: 'same', kernelInitializer: init() }).apply(
    h,
  ) as TfLayers.SymbolicTensor;
  const flat = L.flatten({ name: 'enc_flatten' }).apply(ze) as TfLayers.SymbolicTensor;
  const encoder = tf.layers.model({ inputs: x, outputs: flat, name: 'encoder' });
  const z = L.input({ shape: [grid.baseRows * grid.baseCols * d], name: 'z' });
  const grid3d = L.reshape({ name: 'dec_reshape', targetShape: [grid.baseRows, grid.baseCols, d] }).apply(z) as TfLayers.SymbolicTensor;
  const { decoderLogits, decoder } = decoderModels(tf, z, deconvolutions(tf, grid3d, filters, config.image.channels, init, stride2));
  // Replaced by vectors of the first batch before training (vq.ts); not trainable: moving averages move it.
  // Unnamed: a variable's name is process-wide, and a worker that trains two vqvae variants in
  // turn failed on the second ("Variable with name codebook was already registered").
  const codebook = tf.core.variable(tf.core.randomUniform([k, d], -1 / k, 1 / k, 'float32', config.seed + 1000), false);
  return { encoder, decoderLogits, decoder, codebook };
}
