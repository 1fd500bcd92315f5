/**
 * Saving and loading models in the tfjs layers format — a directory with model.json
 * (topology + weights manifest) and weights.bin — which tf.loadLayersModel() reads, and
 * which the TensorFlow.js converter turns into Keras. tfjs without tfjs-node has no file
 * system handler, so these are the two small IO handlers it lacks.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import { StageError } from '../../core/contract.js';
import type { Tf } from '../backend.js';
import { readNpyAs } from '../npy.js';
import type { Likelihood } from './loss.js';
import type { ImageShape, ModelKind } from './model.js';

/** model/config.json: what a stage that loads the model needs to know about it. */
export interface ModelFileConfig {
  readonly model: ModelKind;
  readonly latent_dim: number;
  readonly hidden: number;
  /** Stride-2 blocks of the conv models. */
  readonly depth: number;
  /** The images it reads and writes. */
  readonly image: ImageShape;
  /** Name of each label: evaluate's per-class rows, a cvae's one-hot width. */
  readonly classes: readonly string[];
  /** Absent for Bernoulli pixels (the default), so those models' config.json stays as it was. */
  readonly likelihood?: Likelihood;
  /** The vqvae's codebook (model/codebook.npy, [size, dim]). */
  readonly codebook?: { readonly size: number; readonly dim: number };
}

export function saveModelConfig(dir: string, config: ModelFileConfig): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}

export async function saveLayersModel(tf: Tf, model: TfLayers.LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.core.io.withSaveHandler(async (artifacts) => {
      const weights = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.core.io.CompositeArrayBuffer.join(artifacts.weightData);
      const modelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.layers.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
      writeFileSync(join(dir, 'weights.bin'), Buffer.from(weights));
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
}

export async function loadLayersModel(tf: Tf, dir: string): Promise<TfLayers.LayersModel> {
  const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: TfCore.io.WeightsManifestEntry[] }[];
  };
  const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const buffers = modelJson.weightsManifest.flatMap((group) => group.paths.map((p) => readFileSync(join(dir, p))));
  const data = Buffer.concat(buffers);
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  return tf.layers.loadLayersModel(tf.core.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: specs, weightData }));
}

/** A train-vae `model/` directory: its config and both halves. */
export async function loadTrainedModel(
  tf: Tf,
  dir: string,
): Promise<{
  kind: ModelKind;
  latentDim: number;
  image: ImageShape;
  /** Name of each label, as the dataset stage gave them. */
  classes: readonly string[];
  likelihood: Likelihood;
  encoder: TfLayers.LayersModel;
  decoder: TfLayers.LayersModel;
  /** The vqvae's codebook [K, dim]: its encoder's flat output is quantized against it before decoding. */
  codebook?: TfCore.Tensor2D;
}> {
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile))
    throw new StageError(
      `${dir} is not a trained model (no config.json): bind the input to a train-vae stage's model output, e.g. \`model: train.model\``,
    );
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as ModelFileConfig;
  const encoder = await loadLayersModel(tf, join(dir, 'encoder'));
  return {
    kind: config.model,
    // A vqvae's code is its whole grid of vectors, flattened: what the decoder takes.
    latentDim: config.codebook ? (encoder.outputs[0]!.shape[1] as number) : config.latent_dim,
    image: config.image,
    classes: config.classes,
    likelihood: config.likelihood ?? { kind: 'bernoulli' },
    encoder,
    decoder: await loadLayersModel(tf, join(dir, 'decoder')),
    ...(config.codebook
      ? { codebook: tf.core.tensor2d(readNpyAs(join(dir, 'codebook.npy'), 'float32').data, [config.codebook.size, config.codebook.dim]) }
      : {}),
  };
}
