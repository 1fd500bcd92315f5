import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Type } from '@sinclair/typebox';
import { DATASET_KIND, labelValueNames, PoolSplitParams, writePooledDataset, type ClassNames } from '../ml/dataset.js';
import { readNumericNpy, type NumericArray } from '../ml/npy-input.js';
import { defineStage, PATH_FORMAT, StageError } from '../core/contract.js';

/** [N, H, W, C] (or [N, C, H, W]) → its sizes, with C 1 for [N, H, W]. */
function imageLayout(array: NumericArray, file: string, channelsFirst: boolean) {
  const { shape } = array;
  if (shape.length === 3) return { count: shape[0]!, rows: shape[1]!, cols: shape[2]!, channels: 1 };
  if (shape.length === 4) {
    const [count, a, b, c] = shape as [number, number, number, number];
    const layout = channelsFirst ? { count, rows: b, cols: c, channels: a } : { count, rows: a, cols: b, channels: c };
    if (layout.channels === 1 || layout.channels === 3) return layout;
    throw new StageError(
      `${file}: shape (${shape.join(', ')}) has ${layout.channels} channels ${channelsFirst ? '(channels_first: the second axis)' : '(the last axis)'}; 1 or 3 are read${channelsFirst ? '' : ' — set channels_first: true for PyTorch’s [N, C, H, W]'}`,
    );
  }
  throw new StageError(`${file}: shape (${shape.join(', ')}); images are [N, H, W] or [N, H, W, C]`);
}

/**
 * Pixel values as bytes: uint8 as they are; other integers must already be 0–255; floats must
 * be in [0, 1] (the range Keras code divides by 255 into) and become round(255·v), so an
 * array saved from a preprocessed dataset loads back to the bytes it came from.
 */
function toBytes(array: NumericArray, file: string): Uint8Array {
  const out = new Uint8Array(array.values.length);
  const [low, high, scale] = array.integer ? [0, 255, 1] : [0, 1, 255];
  for (let i = 0; i < array.values.length; i++) {
    const v = array.values[i]!;
    if (!(v >= low && v <= high))
      throw new StageError(
        `${file}: value ${v} at flat index ${i} is outside [${low}, ${high}] (${array.integer ? 'integer pixels are 0–255' : 'float pixels are 0–1'}; dtype ${array.dtype})`,
      );
    out[i] = Math.round(v * scale);
  }
  return out;
}

/** Pixel i of channel k moves from [N, C, H, W] to [N, H, W, C]. */
function channelsLast(bytes: Uint8Array, count: number, channels: number, pixels: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let n = 0; n < count; n++)
    for (let k = 0; k < channels; k++)
      for (let p = 0; p < pixels; p++) out[(n * pixels + p) * channels + k] = bytes[(n * channels + k) * pixels + p]!;
  return out;
}

function readLabels(file: string, count: number, classNames: readonly string[] | undefined): { labels: Uint8Array; names: ClassNames } {
  const array = readNumericNpy(readFileSync(file), file);
  if (array.shape.length !== 1 || array.shape[0] !== count)
    throw new StageError(`${file}: shape (${array.shape.join(', ')}); labels are one per image, shape (${count},)`);
  if (!array.integer) throw new StageError(`${file}: dtype ${array.dtype}; labels are integers (save labels.astype("int64"))`);
  const labels = new Uint8Array(count);
  let largest = 0;
  for (let i = 0; i < count; i++) {
    const v = array.values[i]!;
    if (v < 0 || v > 255) throw new StageError(`${file}: label ${v} at index ${i}; labels are 0–255`);
    labels[i] = v;
    largest = Math.max(largest, v);
  }
  if (classNames && largest >= classNames.length)
    throw new StageError(
      `${file}: label ${largest} has no name: \`classes\` names ${classNames.length} (labels 0–${classNames.length - 1})`,
    );
  const classes = classNames ?? labelValueNames([labels]);
  return { labels, names: { classes, labelled: true } };
}

export default defineStage({
  name: 'npy',
  description: 'Images (and labels) saved with numpy.save → the same .npy splits as mnist, stratified and seeded.',
  params: Type.Object(
    {
      images: Type.String({
        format: PATH_FORMAT,
        description: 'Images [N, H, W] or [N, H, W, C] (C 1 or 3): uint8 or other integers 0–255, or floats in [0, 1].',
      }),
      labels: Type.Optional(
        Type.String({ format: PATH_FORMAT, description: 'Integer labels [N], 0–255; without it the set is unlabelled.' }),
      ),
      classes: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Name of each label 0, 1, …' })),
      channels_first: Type.Boolean({ default: false, description: 'The images are [N, C, H, W], as PyTorch holds them.' }),
      ...PoolSplitParams,
    },
    { additionalProperties: false },
  ),
  ...DATASET_KIND,
  async run(ctx) {
    const imagesFile = resolve(ctx.pipelineDir, ctx.params.images);
    let array: NumericArray;
    try {
      array = readNumericNpy(readFileSync(imagesFile), imagesFile);
    } catch (error) {
      throw new StageError((error as Error).message);
    }
    const layout = imageLayout(array, imagesFile, ctx.params.channels_first);
    let images = toBytes(array, imagesFile);
    if (ctx.params.channels_first && layout.channels > 1)
      images = channelsLast(images, layout.count, layout.channels, layout.rows * layout.cols);
    let labelled: { labels: Uint8Array; names: ClassNames };
    if (ctx.params.labels) {
      try {
        labelled = readLabels(resolve(ctx.pipelineDir, ctx.params.labels), layout.count, ctx.params.classes);
      } catch (error) {
        throw error instanceof StageError ? error : new StageError((error as Error).message);
      }
    } else {
      if (ctx.params.classes) throw new StageError('`classes` names the labels, but no `labels` file is given');
      labelled = { labels: new Uint8Array(layout.count), names: { classes: ['unlabelled'], labelled: false } };
    }
    ctx.progress(`${layout.count} images ${layout.rows}×${layout.cols}×${layout.channels} (${array.dtype}) from ${ctx.params.images}`);
    const channels = layout.channels === 1 ? 1 : 3;
    const pool = { images, labels: labelled.labels, count: layout.count, rows: layout.rows, cols: layout.cols, channels } as const;
    writePooledDataset(ctx.outDir, { pool, names: labelled.names, source: ctx.params.images }, ctx.params, ctx.random);
  },
});
