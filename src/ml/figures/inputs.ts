/** What the figure stages share: the backend param, and loading a trained model and a data split. */
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { StageError } from '../../core/contract.js';
import { loadTf, type BackendChoice, type Tf } from '../backend.js';
import { readNpyAs } from '../npy.js';
import { loadTrainedModel } from '../vae/persist.js';
import type { ImageShape } from '../vae/model.js';
import type { TrainedModel } from './model-io.js';

/** Output pixels per image pixel of a grid. */
export const ScaleParam = Type.Integer({ minimum: 1, maximum: 8, default: 2 });

export const MODEL_INPUT = { model: { description: "a train-vae stage's model output (`train.model`)" } } as const;
export const MODEL_AND_DATA_INPUTS = { ...MODEL_INPUT, data: { description: 'a preprocess stage' } } as const;

export async function loadModel(dir: string, backend: BackendChoice, threads: number): Promise<{ tf: Tf; model: TrainedModel }> {
  const tf = await loadTf(backend, threads);
  return { tf, model: await loadTrainedModel(tf, dir) };
}

export interface Split {
  readonly images: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly shape: ImageShape;
}

const shapeText = (s: ImageShape) => `${s.rows}×${s.cols}×${s.channels}`;

/** A preprocessed split ([N,H,W,C] float32 images and uint8 labels), checked against the model it is for. */
export function loadSplit(dir: string, split: string, model?: TrainedModel): Split {
  const images = readNpyAs(join(dir, `${split}_images.npy`), 'float32');
  const labels = readNpyAs(join(dir, `${split}_labels.npy`), 'uint8');
  const [count, rows, cols, channels] = images.shape as [number, number, number, number];
  const shape = { rows, cols, channels };
  if (model && shapeText(shape) !== shapeText(model.image))
    throw new StageError(
      `the model was trained on ${shapeText(model.image)} images but ${split}_images.npy holds ${shapeText(shape)} ones`,
    );
  return { images: images.data, labels: labels.data, count, shape };
}

/** The first `perClass` images of each class, class by class. */
export function firstOfEachClass(labels: Uint8Array, perClass: number, classes: readonly string[]): number[] {
  const picked: number[] = [];
  for (let c = 0; c < classes.length; c++) {
    const ofClass = Array.from(labels.keys())
      .filter((i) => labels[i] === c)
      .slice(0, perClass);
    if (ofClass.length < perClass)
      throw new StageError(`only ${ofClass.length} images of class ${classes[c]} in the split; need ${perClass}`);
    picked.push(...ofClass);
  }
  return picked;
}

export function gatherImages(set: Split, indices: readonly number[]): Float32Array {
  const pixels = set.shape.rows * set.shape.cols * set.shape.channels;
  const out = new Float32Array(indices.length * pixels);
  indices.forEach((index, k) => out.set(set.images.subarray(index * pixels, (index + 1) * pixels), k * pixels));
  return out;
}
