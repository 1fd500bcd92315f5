import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { centreCrop, cropAndResize, decodeImage, sniffFormat, toChannels, type Pixels } from '../src/ml/images.js';
import { readNpyAs, encodeNpy } from '../src/ml/npy.js';
import { readNumericNpy } from '../src/ml/npy-input.js';
import { indexFolder } from '../src/stages/image-folder.js';
import { repoRoot, TempProject } from './helpers.js';

const SHAPES = join(repoRoot, 'test', 'fixtures', 'images', 'shapes');

function png(width: number, height: number, rgba: number[]): Buffer {
  const image = new PNG({ width, height });
  image.data = Buffer.from(rgba);
  return PNG.sync.write(image);
}

/** A .npy file as numpy.save writes one, for dtypes npy.ts does not write (float64, int64, big-endian). */
function npyBytes(descr: string, shape: number[], body: Buffer): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), body]);
}

function float64(values: number[], littleEndian = true): Buffer {
  const out = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => (littleEndian ? out.writeDoubleLE(v, i * 8) : out.writeDoubleBE(v, i * 8)));
  return out;
}

function int64(values: number[]): Buffer {
  const out = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => out.writeBigInt64LE(BigInt(v), i * 8));
  return out;
}

describe('pictures → pixels', () => {
  it('decodes PNG and JPEG by their first bytes, not their names', () => {
    const red = png(2, 1, [255, 0, 0, 255, 0, 0, 255, 128]);
    assert.equal(sniffFormat(red), 'png');
    const decoded = decodeImage(red);
    assert.deepEqual([decoded.width, decoded.height, decoded.channels], [2, 1, 4]);
    assert.deepEqual([...decoded.data], [255, 0, 0, 255, 0, 0, 255, 128]);
    const photo = jpeg.encode({ width: 8, height: 8, data: Buffer.alloc(256, 200) }, 95).data;
    assert.equal(sniffFormat(photo), 'jpeg');
    const grey = decodeImage(photo);
    assert.deepEqual([grey.width, grey.height, grey.channels], [8, 8, 3]);
    assert.ok(
      [...grey.data].every((v) => Math.abs(v - 200) <= 1),
      'a flat JPEG decodes flat',
    );
    assert.throws(() => decodeImage(Buffer.from('GIF89a…')), /not a PNG or JPEG/);
  });

  it('refuses a corrupt PNG and a truncated JPEG instead of returning made-up pixels', () => {
    const bad = png(4, 4, new Array(64).fill(7));
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 0xff; // inside the IDAT chunk: its CRC no longer matches
    assert.throws(() => decodeImage(bad));
    const photo = jpeg.encode({ width: 32, height: 32, data: Buffer.alloc(32 * 32 * 4, 90) }, 90).data;
    assert.throws(() => decodeImage(photo.subarray(0, Math.floor(photo.length / 2))));
  });

  it('grey is BT.601 luma in fixed point, as PIL convert("L"); grey → RGB repeats it; alpha is dropped', () => {
    const rgba: Pixels = {
      width: 4,
      height: 1,
      channels: 4,
      data: Uint8Array.from([255, 0, 0, 9, 0, 255, 0, 9, 0, 0, 255, 9, 10, 20, 30, 9]),
    };
    // PIL: Image.new('RGB', …, (255, 0, 0)).convert('L') → 76; (0, 255, 0) → 150; (0, 0, 255) → 29; (10, 20, 30) → 18.
    assert.deepEqual([...toChannels(rgba, 1).data], [76, 150, 29, 18]);
    assert.deepEqual([...toChannels(rgba, 3).data], [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    assert.deepEqual([...toChannels({ width: 1, height: 1, channels: 1, data: Uint8Array.from([42]) }, 3).data], [42, 42, 42]);
  });

  it('crops the centred window of the target aspect ratio (a 178×218 CelebA portrait keeps its middle 178×178)', () => {
    assert.deepEqual(centreCrop(178, 218, 64, 64), { left: 0, top: 20, width: 178, height: 178 });
    assert.deepEqual(centreCrop(300, 100, 50, 50), { left: 100, top: 0, width: 100, height: 100 });
    assert.deepEqual(centreCrop(100, 100, 40, 20), { left: 0, top: 25, width: 100, height: 50 });
  });

  it('area-resamples: each output pixel averages the source span it covers', () => {
    // Rows repeated so the aspect ratio matches the target's and nothing is cropped.
    const rows = (values: number[], count: number): Pixels => ({
      width: values.length,
      height: count,
      channels: 1,
      data: Uint8Array.from(Array.from({ length: count }, () => values).flat()),
    });
    // 4×2 → 2×1: pairs average; (200 + 255) / 2 = 227.5 rounds to 228.
    assert.deepEqual([...cropAndResize(rows([0, 100, 200, 255], 2), 2, 1).data], [50, 228]);
    // 3×3 → 2×2: s = 1.5; out 0 = (1·30 + 0.5·90) / 1.5 = 50, out 1 = (0.5·90 + 1·210) / 1.5 = 170.
    assert.deepEqual([...cropAndResize(rows([30, 90, 210], 3), 2, 2).data], [50, 170, 50, 170]);
    // 2×1 → 4×2 (enlarging): each source pixel is repeated.
    assert.deepEqual([...cropAndResize(rows([10, 20], 1), 4, 2).data], [10, 10, 20, 20, 10, 10, 20, 20]);
    // 2×2 RGB → 1×1: per channel means.
    const square: Pixels = { width: 2, height: 2, channels: 3, data: Uint8Array.from([0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 100]) };
    assert.deepEqual([...cropAndResize(square, 1, 1).data], [25, 25, 25]);
    // A 4×2 picture made square loses a column on each side.
    assert.deepEqual([...cropAndResize(rows([1, 50, 70, 200], 2), 2, 2).data], [50, 70, 50, 70]);
  });
});

describe('folder layout', () => {
  it('class subfolders are labels in sorted order; a flat folder is unlabelled; hidden and non-picture files are not data', () => {
    const labelled = indexFolder(['b/x.png', 'a/y/z.JPG', '.DS_Store', 'a/.hidden.png', 'README.md', 'b/notes.txt'], '/d');
    assert.deepEqual(labelled.files, ['b/x.png', 'a/y/z.JPG']);
    assert.deepEqual(labelled.labels, [1, 0]);
    assert.deepEqual(labelled.names, { classes: ['a', 'b'], labelled: true });
    const flat = indexFolder(['p.png', 'q.jpeg'], '/d');
    assert.deepEqual(flat.labels, [0, 0]);
    assert.deepEqual(flat.names, { classes: ['unlabelled'], labelled: false });
  });

  it('names the file that makes a folder unreadable', () => {
    assert.throws(() => indexFolder(['a/x.png', 'b/anim.gif'], '/d'), /\/d\/b\/anim\.gif: GIF pictures are not read \(PNG and JPEG are\)/);
    assert.throws(
      () => indexFolder(['a/x.png', 'stray.png'], '/d'),
      /\/d\/stray\.png: the folder has class subfolders and pictures beside them/,
    );
    assert.throws(() => indexFolder(['notes.txt'], '/d'), /\/d: no PNG or JPEG files/);
  });
});

describe('image-folder stage', () => {
  it('reads the shapes fixture into stratified, seeded RGB splits with its class names', async () => {
    const p = new TempProject();
    cpSync(SHAPES, p.path('pipelines/shapes'), { recursive: true });
    p.write(
      'pipelines/i.yaml',
      'pipeline: i\nstages:\n  data: { uses: image-folder, with: { path: shapes, size: 16, test: 0.34, validation: 0.25, seed: 3 } }\n  grey: { uses: image-folder, with: { path: shapes, size: [12, 20], channels: 1, test: 0.34 } }\n',
    );
    const run = p.cli(['run', 'pipelines/i.yaml', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const info = JSON.parse(p.read('artifacts/i/data/dataset.json')) as Record<string, unknown>;
    assert.deepEqual(info.classes, ['circle', 'square', 'triangle']);
    assert.equal(info.labelled, true);
    assert.equal(info.channels, 3);
    // 18 pictures: 6 per class, 2 per class to test (34 %), then a quarter of the other 4 to validation.
    assert.deepEqual([info.train, info.validation, info.test], [9, 3, 6]);
    assert.deepEqual(info.train_per_class, [3, 3, 3]);
    assert.deepEqual(info.test_per_class, [2, 2, 2]);
    const train = readNpyAs(p.path('artifacts/i/data/train_images.npy'), 'uint8');
    assert.deepEqual(train.shape, [9, 16, 16, 3]);
    const labels = readNpyAs(p.path('artifacts/i/data/train_labels.npy'), 'uint8');
    assert.deepEqual([...labels.data].sort(), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    // Each colour picture's centre is its shape's colour: red circles, green squares, blue
    // triangles (a third of the fixture's PNGs are grey, R = G = B).
    let coloured = 0;
    for (let n = 0; n < 9; n++) {
      const centre = (n * 256 + 8 * 16 + 8) * 3;
      const rgb = [...train.data.subarray(centre, centre + 3)];
      if (rgb[0] === rgb[1] && rgb[1] === rgb[2]) continue;
      coloured++;
      const strongest = rgb.indexOf(Math.max(...rgb));
      assert.equal(strongest, labels.data[n], `picture ${n}: centre ${rgb} should be mostly ${['red', 'green', 'blue'][labels.data[n]!]}`);
    }
    assert.ok(coloured >= 4, `${coloured} colour pictures in the training split`);
    const grey = readNpyAs(p.path('artifacts/i/grey/test_images.npy'), 'uint8');
    assert.deepEqual(grey.shape, [6, 12, 20], 'one channel keeps MNIST’s [N, rows, cols]');

    // The same files give the same bytes; editing one picture reruns the stage.
    const before = readFileSync(p.path('artifacts/i/data/train_images.npy'));
    assert.match(p.cli(['run', 'pipelines/i.yaml', '--plain']).stdout, /data\s+up to date/);
    cpSync(join(SHAPES, 'square', 'square-0.png'), p.path('pipelines/shapes/circle/circle-0.png'));
    const rerun = p.cli(['run', 'pipelines/i.yaml', '--plain']);
    assert.equal(rerun.status, 0, rerun.stderr);
    assert.doesNotMatch(rerun.stdout, /data\s+up to date/);
    assert.notDeepEqual(readFileSync(p.path('artifacts/i/data/train_images.npy')), before);
  });

  it('decodes only the pictures `limit` keeps, and splits them as if it had decoded all', () => {
    const p = new TempProject();
    cpSync(SHAPES, p.path('pipelines/shapes'), { recursive: true });
    p.write(
      'pipelines/l.yaml',
      'pipeline: l\nstages:\n  data: { uses: image-folder, with: { path: shapes, size: 8, limit: 9, test: 0.34 } }\n',
    );
    const run = p.cli(['run', 'pipelines/l.yaml', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /decoded 9 of 18 pictures, 3 classes → 8×8×3/);
    const info = JSON.parse(p.read('artifacts/l/data/dataset.json')) as { train_per_class: number[]; test_per_class: number[] };
    assert.deepEqual(
      [info.train_per_class, info.test_per_class],
      [
        [2, 2, 2],
        [1, 1, 1],
      ],
    );
  });

  it('feeds preprocess and a training unchanged when the pictures are grey', async () => {
    const p = new TempProject();
    cpSync(SHAPES, p.path('pipelines/shapes'), { recursive: true });
    p.write(
      'pipelines/t.yaml',
      `pipeline: t
stages:
  data: { uses: image-folder, with: { path: shapes, size: 28, channels: 1, test: 0.34 } }
  prep: { uses: preprocess, in: { data: data }, with: { pad_to: 32 } }
  train: { uses: train-vae, in: { data: prep }, with: { epochs: 1, batch_size: 4, hidden: 8, backend: wasm } }
  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { backend: wasm } }
`,
    );
    const run = p.cli(['run', 'pipelines/t.yaml', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.deepEqual(readNpyAs(p.path('artifacts/t/prep/train_images.npy'), 'float32').shape, [12, 32, 32, 1]);
    const metrics = JSON.parse(p.read('artifacts/t/eval/metrics.json')) as Record<string, number>;
    assert.ok(Number.isFinite(metrics.neg_elbo) && metrics.images === 6, JSON.stringify(metrics));
  });

  it('trains RGB models on colour pictures and draws RGB figures with the class names', () => {
    const p = new TempProject();
    cpSync(SHAPES, p.path('pipelines/shapes'), { recursive: true });
    p.write(
      'pipelines/rgb.yaml',
      `pipeline: rgb
stages:
  data: { uses: image-folder, with: { path: shapes, size: [16, 24], test: 0.34 } }
  prep: { uses: preprocess, in: { data: data } }
  train: { uses: train-vae, in: { data: prep }, with: { epochs: 1, batch_size: 4, hidden: 8, backend: wasm } }
  cvae: { uses: train-vae, in: { data: prep }, with: { model: cvae, epochs: 1, batch_size: 4, hidden: 8, backend: wasm } }
  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { backend: wasm } }
  recon: { uses: reconstructions, in: { model: train.model, data: prep }, with: { per_digit: 1, backend: wasm } }
  samples: { uses: prior-samples, in: { model: cvae.model }, with: { cols: 2, backend: wasm } }
  pca: { uses: pca, in: { latents: eval } }
  scatter: { uses: latent-scatter, in: { points: pca } }
`,
    );
    const run = p.cli(['run', 'pipelines/rgb.yaml', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const config = JSON.parse(p.read('artifacts/rgb/train/model/config.json')) as Record<string, unknown>;
    assert.deepEqual(config.image, { rows: 16, cols: 24, channels: 3 });
    assert.deepEqual(config.classes, ['circle', 'square', 'triangle']);
    assert.equal(config.depth, 2);
    const perClass = p.read('artifacts/rgb/eval/per_class.csv').trim().split('\n');
    assert.deepEqual(
      perClass.map((line) => line.split(',').slice(0, 2).join(',')),
      ['class,name', '0,circle', '1,square', '2,triangle'],
    );
    // Three rows of classes, tiles 24 wide and 16 high at scale 2; the originals keep their colours.
    const recon = PNG.sync.read(readFileSync(p.path('artifacts/rgb/recon/reconstructions.png')));
    assert.ok(recon.width > 3 * 48 && recon.height > 3 * 32, `${recon.width}×${recon.height}`);
    let saturated = 0;
    for (let i = 0; i < recon.data.length; i += 4) {
      const [r, g, b] = [recon.data[i]!, recon.data[i + 1]!, recon.data[i + 2]!];
      if (Math.max(r, g, b) - Math.min(r, g, b) > 100) saturated++;
    }
    assert.ok(saturated > 500, `${saturated} strongly coloured pixels: the grid is drawn in RGB`);
    assert.equal(run.stdout.includes('✓ samples'), true, 'a cvae samples a row per class');
    // The scatter's legend names the classes, passed from evaluate through the projection.
    const spec = JSON.parse(p.read('artifacts/rgb/scatter/scatter.vl.json')) as { encoding: { color: { field: string; sort: string[] } } };
    assert.equal(spec.encoding.color.field, 'class');
    assert.deepEqual(spec.encoding.color.sort, ['circle', 'square', 'triangle']);
  });

  it('refuses a depth the image does not halve evenly into, naming both', () => {
    const p = new TempProject();
    cpSync(SHAPES, p.path('pipelines/shapes'), { recursive: true });
    p.write(
      'pipelines/d.yaml',
      'pipeline: d\nstages:\n  data: { uses: image-folder, with: { path: shapes, size: 20 } }\n  prep: { uses: preprocess, in: { data: data } }\n  train: { uses: train-vae, in: { data: prep }, with: { depth: 3, epochs: 1, backend: wasm } }\n',
    );
    const run = p.cli(['run', 'pipelines/d.yaml', '--plain']);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /20×20 images do not halve evenly 3 times \(depth 3 needs both sides divisible by 8\)/);
  });

  it('fails naming a corrupt picture, exits 1, and leaves no artifact', () => {
    const p = new TempProject();
    cpSync(SHAPES, p.path('pipelines/shapes'), { recursive: true });
    const file = p.path('pipelines/shapes/square/square-2.jpg');
    writeFileSync(file, readFileSync(file).subarray(0, 200));
    p.write('pipelines/c.yaml', 'pipeline: c\nstages:\n  data: { uses: image-folder, with: { path: shapes, size: 8 } }\n');
    const run = p.cli(['run', 'pipelines/c.yaml', '--plain']);
    assert.equal(run.status, 1);
    assert.match(run.stdout + run.stderr, /shapes\/square\/square-2\.jpg: cannot be read as a picture/);
    assert.equal(spawnSync('ls', [p.path('artifacts/c/data')]).status !== 0, true, 'no artifact directory');
  });
});

describe('npy stage', () => {
  it('reads float64 images in [0, 1] with int64 labels, as numpy.save writes them by default', () => {
    const p = new TempProject();
    // 6 images 2×2; values k/255 so they map back to exact bytes.
    const pixels = Array.from({ length: 24 }, (_, i) => (i * 10) / 255);
    p.write(
      'pipelines/x.yaml',
      'pipeline: x\nstages:\n  data: { uses: npy, with: { images: x.npy, labels: y.npy, classes: [even, odd], test: 0.34 } }\n',
    );
    writeFileSync(p.path('pipelines/x.npy'), npyBytes('<f8', [6, 2, 2], float64(pixels)));
    writeFileSync(p.path('pipelines/y.npy'), npyBytes('<i8', [6], int64([0, 1, 0, 1, 0, 1])));
    const run = p.cli(['run', 'pipelines/x.yaml', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const info = JSON.parse(p.read('artifacts/x/data/dataset.json')) as Record<string, unknown>;
    assert.deepEqual(info.classes, ['even', 'odd']);
    assert.deepEqual([info.train, info.test], [4, 2]);
    const all = ['train', 'test'].flatMap((s) => {
      const images = readNpyAs(p.path(`artifacts/x/data/${s}_images.npy`), 'uint8');
      assert.deepEqual(images.shape.slice(1), [2, 2]);
      return [...images.data];
    });
    assert.deepEqual(
      all.sort((a, b) => a - b),
      Array.from({ length: 24 }, (_, i) => i * 10),
    );
  });

  it('turns PyTorch’s [N, C, H, W] into [N, H, W, C]; big-endian is read too', () => {
    const p = new TempProject();
    // One 1×2 RGB image stored channels first: R plane, G plane, B plane.
    const planes = [1, 2, 3, 4, 5, 6].map((v) => v / 255);
    writeFileSync(p.path('pipelines/c.npy'), npyBytes('>f8', [1, 3, 1, 2], float64(planes, false)));
    p.write('pipelines/c.yaml', 'pipeline: c\nstages:\n  data: { uses: npy, with: { images: c.npy, channels_first: true, test: 0 } }\n');
    const run = p.cli(['run', 'pipelines/c.yaml', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const images = readNpyAs(p.path('artifacts/c/data/train_images.npy'), 'uint8');
    assert.deepEqual(images.shape, [1, 1, 2, 3]);
    assert.deepEqual([...images.data], [1, 3, 5, 2, 4, 6]);
    assert.equal((JSON.parse(p.read('artifacts/c/data/dataset.json')) as { labelled: boolean }).labelled, false);
  });

  for (const [name, file, message] of [
    [
      'float pixels above 1',
      npyBytes('<f4', [1, 1, 2], Buffer.from(new Float32Array([0.5, 3]).buffer)),
      /value 3 at flat index 1 is outside \[0, 1\]/,
    ],
    [
      'four channels',
      encodeNpy({ dtype: 'uint8', shape: [1, 1, 1, 4], data: new Uint8Array(4) }),
      /has 4 channels \(the last axis\); 1 or 3 are read/,
    ],
    ['a structured array', npyBytes("[('a', '<i4')]", [1], Buffer.alloc(4)), /a structured or object array/],
    [
      'a truncated file',
      npyBytes('<f8', [2, 2, 2], Buffer.alloc(16)),
      /truncated: shape \(2, 2, 2\) needs 64 bytes of data, the file has 16/,
    ],
  ] as const) {
    it(`refuses ${name}, naming the file`, () => {
      const p = new TempProject();
      writeFileSync(p.path('pipelines/bad.npy'), file);
      p.write('pipelines/b.yaml', 'pipeline: b\nstages:\n  data: { uses: npy, with: { images: bad.npy } }\n');
      const run = p.cli(['run', 'pipelines/b.yaml', '--plain']);
      assert.equal(run.status, 1);
      assert.match(run.stdout + run.stderr, /pipelines\/bad\.npy/);
      assert.match(run.stdout + run.stderr, message);
    });
  }

  it('reads what numpy.save wrote (float64, int64, uint8, bool), when NumPy is installed', (t) => {
    const python = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { encoding: 'utf8' });
    if (python.status !== 0) {
      if (process.env.ABLATE_REQUIRE_NUMPY) assert.fail('ABLATE_REQUIRE_NUMPY is set but /usr/bin/python3 cannot import numpy');
      t.skip('NumPy is not installed (apt-get install -y python3-numpy)');
      return;
    }
    const p = new TempProject();
    const script = `import numpy as np
np.save('f8.npy', np.arange(12).reshape(3, 2, 2) / 11.0)
np.save('i8.npy', np.array([[1, -2], [3, 2**40]]))
np.save('u1.npy', np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
np.save('b1.npy', np.array([True, False]))
np.save('f4.npy', np.array([[0.25, -1.5]], dtype='>f4'))`;
    const saved = spawnSync('/usr/bin/python3', ['-c', script], { cwd: p.root, encoding: 'utf8' });
    assert.equal(saved.status, 0, saved.stderr);
    const read = (name: string) => readNumericNpy(readFileSync(p.path(name)), name);
    assert.deepEqual(
      [...read('f8.npy').values],
      Array.from({ length: 12 }, (_, i) => i / 11),
    );
    assert.deepEqual(read('i8.npy').shape, [2, 2]);
    assert.deepEqual([...read('i8.npy').values], [1, -2, 3, 2 ** 40]);
    assert.deepEqual([...read('u1.npy').values], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...read('b1.npy').values], [1, 0]);
    assert.deepEqual([...read('f4.npy').values], [0.25, -1.5]);
    assert.equal(read('f4.npy').integer, false);
  });
});
