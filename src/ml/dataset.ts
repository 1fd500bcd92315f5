/**
 * What the dataset stages share: their params, and turning labelled images into the .npy
 * splits the rest of the pipeline reads (train / val / test images [N,rows,cols] uint8 and
 * labels [N] uint8, plus dataset.json with the class names).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { StageError } from '../core/contract.js';
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

/** Images as bytes, [count, rows, cols] (one channel) or [count, rows, cols, channels], with a label each. */
export interface LabeledImages {
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  readonly channels: 1 | 3;
}

/** What a dataset's labels mean: label i is `classes[i]`; an unlabelled set has the single class `unlabelled`, every label 0. */
export interface ClassNames {
  readonly classes: readonly string[];
  readonly labelled: boolean;
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

/** What every dataset stage declares: no inputs; the splits and dataset.json, which is also its metrics file. */
export const DATASET_KIND = { inputs: {}, outputs: () => DATASET_OUTPUTS, metrics: () => 'dataset.json' } as const;

/** Single-channel sets keep MNIST's [N, rows, cols]; colour ones add the channel axis last, as NumPy and Keras hold them. */
export function imageShape(count: number, set: Pick<LabeledImages, 'rows' | 'cols' | 'channels'>): number[] {
  return set.channels === 1 ? [count, set.rows, set.cols] : [count, set.rows, set.cols, set.channels];
}

function writeSplit(outDir: string, name: string, set: LabeledImages, indices: readonly number[]): void {
  const pixels = set.rows * set.cols * set.channels;
  const images = new Uint8Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  indices.forEach((index, k) => {
    images.set(set.images.subarray(index * pixels, (index + 1) * pixels), k * pixels);
    labels[k] = set.labels[index]!;
  });
  writeFileSync(join(outDir, `${name}_images.npy`), encodeNpy({ dtype: 'uint8', shape: imageShape(indices.length, set), data: images }));
  writeFileSync(join(outDir, `${name}_labels.npy`), encodeNpy({ dtype: 'uint8', shape: [indices.length], data: labels }));
}

function classCounts(labels: Uint8Array, indices: readonly number[], classCount: number): number[] {
  const counts = new Array<number>(classCount).fill(0);
  for (const i of indices) counts[labels[i]!]!++;
  return counts;
}

/** Train / validation / test indices into one or two sets of images. */
interface Splits {
  readonly train: { readonly set: LabeledImages; readonly indices: readonly number[] };
  readonly val: { readonly set: LabeledImages; readonly indices: readonly number[] };
  readonly test: { readonly set: LabeledImages; readonly indices: readonly number[] };
}

function writeSplits(outDir: string, splits: Splits, names: ClassNames, source: string): void {
  for (const [name, { set, indices }] of Object.entries(splits)) writeSplit(outDir, name, set, indices);
  const { set } = splits.train;
  const info = {
    source,
    rows: set.rows,
    cols: set.cols,
    channels: set.channels,
    classes: names.classes,
    labelled: names.labelled,
    train: splits.train.indices.length,
    validation: splits.val.indices.length,
    test: splits.test.indices.length,
    train_per_class: classCounts(set.labels, splits.train.indices, names.classes.length),
    test_per_class: classCounts(splits.test.set.labels, splits.test.indices, names.classes.length),
  };
  writeFileSync(join(outDir, 'dataset.json'), JSON.stringify(info, null, 2) + '\n');
}

/** Subsets (stratified, seeded), holds out the validation split, and writes all three splits and dataset.json. */
export function writeDataset(
  outDir: string,
  { train, test, names, source }: { train: LabeledImages; test: LabeledImages; names: ClassNames; source: string },
  options: SubsetOptions,
  random: () => number,
): void {
  const trainSubset = stratifiedSample(train.labels, options.limit_train ?? train.count, random);
  const { rest, heldOut } = stratifiedSplit(trainSubset, train.labels, options.validation, random);
  const testSubset = stratifiedSample(test.labels, options.limit_test ?? test.count, random);
  const splits = { train: { set: train, indices: rest }, val: { set: train, indices: heldOut }, test: { set: test, indices: testSubset } };
  writeSplits(outDir, splits, names, source);
}

/** Params of the stages that split one pool of images themselves (image-folder, npy). */
export const PoolSplitParams = {
  limit: Type.Optional(Type.Integer({ minimum: 1, description: 'Keep this many images in all (stratified, seeded) before splitting.' })),
  test: Type.Number({
    minimum: 0,
    maximum: 0.9,
    default: 0.2,
    description: 'Fraction of the (limited) images held out as the test split, stratified.',
  }),
  // What is left after the test split is the training set: mnist's validation fraction of it.
  validation: SubsetParams.validation,
  seed: SubsetParams.seed,
};
const PoolSplitObject = Type.Object(PoolSplitParams);
export type PoolSplitOptions = Static<typeof PoolSplitObject>;

/** One pool of images split three ways, each split keeping the class balance, then written as writeDataset writes. */
export function writePooledDataset(
  outDir: string,
  { pool, names, source }: { pool: LabeledImages; names: ClassNames; source: string },
  options: PoolSplitOptions,
  random: () => number,
): void {
  const subset = stratifiedSample(pool.labels, options.limit ?? pool.count, random);
  const { rest: trainAndVal, heldOut: test } = stratifiedSplit(subset, pool.labels, options.test, random);
  const { rest: train, heldOut: val } = stratifiedSplit(trainAndVal, pool.labels, options.validation, random);
  if (!train.length)
    throw new StageError(`no images left for training: ${subset.length} image(s), test ${options.test}, validation ${options.validation}`);
  writeSplits(
    outDir,
    { train: { set: pool, indices: train }, val: { set: pool, indices: val }, test: { set: pool, indices: test } },
    names,
    source,
  );
}

/**
 * The class names a stage downstream of a dataset should use: dataset.json's (a dataset stage's
 * output) or classes.json's (preprocess copies them there), else the label values 0 … the
 * largest label, for splits a user's own stage wrote.
 */
export function classNamesIn(dir: string, labels: readonly Uint8Array[]): ClassNames {
  for (const file of ['classes.json', 'dataset.json']) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const info = JSON.parse(readFileSync(path, 'utf8')) as Partial<ClassNames>;
    if (Array.isArray(info.classes)) return { classes: info.classes, labelled: info.labelled ?? true };
  }
  return { classes: labelValueNames(labels), labelled: true };
}

/** Names for labels that have none (IDX files, a user's arrays): the values 0 … the largest label. */
export function labelValueNames(labels: readonly Uint8Array[]): string[] {
  let largest = 0;
  for (const split of labels) for (const label of split) largest = Math.max(largest, label);
  return Array.from({ length: largest + 1 }, (_, label) => String(label));
}
