/**
 * What the dataset stages share: their params, and turning labelled images into the .npy
 * splits the rest of the pipeline reads (train / val / test images [N,rows,cols] uint8 and
 * labels [N] uint8, plus dataset.json).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { encodeNpy } from './npy.js';
import { stratifiedSample, stratifiedSplit } from './sampling.js';

export const SubsetParams = {
  limit_train: Type.Optional(Type.Integer({ minimum: 1, description: 'Keep this many training images (stratified, seeded).' })),
  limit_test: Type.Optional(Type.Integer({ minimum: 1, description: 'Keep this many test images (stratified, seeded).' })),
  validation: Type.Number({
    minimum: 0,
    maximum: 0.5,
    default: 0,
    description: 'Fraction of the (limited) training set held out for validation, stratified.',
  }),
  seed: Type.Integer({ default: 42, description: 'Seed of the subsetting and the split.' }),
};
const SubsetObject = Type.Object(SubsetParams);
export type SubsetOptions = Static<typeof SubsetObject>;

/** Images [count, rows, cols] as bytes, with a label 0–9 each. */
export interface LabeledImages {
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
}

/** The .npy splits every data stage (dataset loaders, preprocess) writes. */
export const SPLIT_OUTPUTS = {
  train_images: 'train_images.npy',
  train_labels: 'train_labels.npy',
  val_images: 'val_images.npy',
  val_labels: 'val_labels.npy',
  test_images: 'test_images.npy',
  test_labels: 'test_labels.npy',
} as const;

export const DATASET_OUTPUTS = { ...SPLIT_OUTPUTS, info: 'dataset.json' } as const;

function writeSplit(outDir: string, name: string, set: LabeledImages, indices: readonly number[]): void {
  const pixels = set.rows * set.cols;
  const images = new Uint8Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  indices.forEach((index, k) => {
    images.set(set.images.subarray(index * pixels, (index + 1) * pixels), k * pixels);
    labels[k] = set.labels[index]!;
  });
  writeFileSync(
    join(outDir, `${name}_images.npy`),
    encodeNpy({ dtype: 'uint8', shape: [indices.length, set.rows, set.cols], data: images }),
  );
  writeFileSync(join(outDir, `${name}_labels.npy`), encodeNpy({ dtype: 'uint8', shape: [indices.length], data: labels }));
}

function classCounts(labels: Uint8Array, indices: readonly number[]): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const i of indices) counts[labels[i]!]!++;
  return counts;
}

/** Subsets (stratified, seeded), holds out the validation split, and writes all three splits and dataset.json. */
export function writeDataset(
  outDir: string,
  train: LabeledImages,
  test: LabeledImages,
  options: SubsetOptions,
  random: () => number,
  source: string,
): void {
  const trainSubset = stratifiedSample(train.labels, options.limit_train ?? train.count, random);
  const { rest, heldOut } = stratifiedSplit(trainSubset, train.labels, options.validation, random);
  const testSubset = stratifiedSample(test.labels, options.limit_test ?? test.count, random);
  writeSplit(outDir, 'train', train, rest);
  writeSplit(outDir, 'val', train, heldOut);
  writeSplit(outDir, 'test', test, testSubset);
  const info = {
    source,
    rows: train.rows,
    cols: train.cols,
    train: rest.length,
    validation: heldOut.length,
    test: testSubset.length,
    train_per_class: classCounts(train.labels, rest),
    test_per_class: classCounts(test.labels, testSubset),
  };
  writeFileSync(join(outDir, 'dataset.json'), JSON.stringify(info, null, 2) + '\n');
}
