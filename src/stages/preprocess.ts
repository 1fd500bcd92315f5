import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { classNamesIn, SPLIT_OUTPUTS } from '../ml/dataset.js';
import { encodeNpy, readNpyAs } from '../ml/npy.js';
import { defineStage, StageError } from '../core/contract.js';

const SPLITS = ['train', 'val', 'test'] as const;

/**
 * uint8 [N,rows,cols,C] → float32 [N,H,W,C] in [0, 1], centred in an H×W frame of zeros when
 * padding (seed 001 pads 28 → 32 so two stride-2 convolutions halve it evenly), optionally
 * binarized at a threshold (x > t → 1).
 */
export function preprocessImages(
  images: Uint8Array,
  count: number,
  source: { rows: number; cols: number; channels: number },
  frame: { rows: number; cols: number },
  threshold: number | undefined,
): Float32Array {
  const { rows, cols, channels } = source;
  const out = new Float32Array(count * frame.rows * frame.cols * channels);
  const top = Math.floor((frame.rows - rows) / 2);
  const left = Math.floor((frame.cols - cols) / 2);
  for (let n = 0; n < count; n++) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols * channels; c++) {
        const v = images[(n * rows + r) * cols * channels + c]! / 255;
        out[((n * frame.rows + r + top) * frame.cols + left) * channels + c] = threshold === undefined ? v : v > threshold ? 1 : 0;
      }
    }
  }
  return out;
}

export default defineStage({
  name: 'preprocess',
  description: 'Scale images to [0, 1] float32 [N,H,W,C], optionally padded into an S×S frame (28 → 32) and binarized.',
  params: Type.Object(
    {
      pad_to: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 1024,
          description: 'Side of the square frame the image is centred in (e.g. 32); default: no padding.',
        }),
      ),
      binarize: Type.Optional(
        Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, description: 'Threshold: pixels above it become 1, the rest 0.' }),
      ),
    },
    { additionalProperties: false },
  ),
  inputs: { data: { description: 'the output of a dataset stage (mnist, fashion-mnist, image-folder, npy)' } },
  outputs: () => ({ ...SPLIT_OUTPUTS, classes: 'classes.json' }),
  async run(ctx) {
    const allLabels: Uint8Array[] = [];
    for (const split of SPLITS) {
      const images = readNpyAs(join(ctx.input('data'), `${split}_images.npy`), 'uint8');
      const labels = readNpyAs(join(ctx.input('data'), `${split}_labels.npy`), 'uint8');
      const [count, rows, cols, channels = 1] = images.shape as [number, number, number, number?];
      const frame = { rows: ctx.params.pad_to ?? rows, cols: ctx.params.pad_to ?? cols };
      if (frame.rows < rows || frame.cols < cols)
        throw new StageError(`pad_to ${ctx.params.pad_to} is smaller than the ${rows}×${cols} images`);
      const data = preprocessImages(images.data, count, { rows, cols, channels }, frame, ctx.params.binarize);
      const shape = [count, frame.rows, frame.cols, channels];
      writeFileSync(join(ctx.outDir, `${split}_images.npy`), encodeNpy({ dtype: 'float32', shape, data }));
      writeFileSync(join(ctx.outDir, `${split}_labels.npy`), encodeNpy(labels));
      allLabels.push(labels.data);
      ctx.progress(`${split}: ${count} images → ${frame.rows}×${frame.cols}×${channels}`);
    }
    // The dataset's class names travel with the splits: train-vae and evaluate name classes by them.
    writeFileSync(join(ctx.outDir, 'classes.json'), JSON.stringify(classNamesIn(ctx.input('data'), allLabels), null, 2) + '\n');
  },
});
