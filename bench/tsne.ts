import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy, readNpyAs } from '../src/ml/npy.js';
import { knnLabelAgreement, tsne } from '../src/ml/tsne.js';
import { seededRandom } from '../src/core/random.js';
import { median, type BenchRow } from './util.js';

/** 10 overlapping Gaussian clusters in 16-D (unit noise, centres 3 apart on one axis each): MNIST-latent-like. */
function clusters(n: number, dims: number, seed: number): { data: Float32Array; labels: Uint8Array } {
  const random = seededRandom(seed);
  const data = new Float32Array(n * dims);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 10;
    for (let d = 0; d < dims; d++) {
      const u = Math.max(random(), 1e-12);
      data[i * dims + d] = (d === labels[i] ? 3 : 0) + Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    }
  }
  return { data, labels };
}

const SKLEARN = `
import sys, time, numpy as np
from sklearn.manifold import TSNE
x = np.load(sys.argv[1])
t = time.perf_counter()
y = TSNE(n_components=2, perplexity=30, init='random', random_state=0, method='barnes_hut', angle=0.5).fit_transform(x)
print(time.perf_counter() - t)
np.save(sys.argv[2], y.astype(np.float32))
`;

/**
 * Barnes-Hut t-SNE (src/ml/tsne.ts) on 10,000 × 16 points, 1000 iterations, perplexity 30:
 * wall time and 10-NN label agreement; scikit-learn's Barnes-Hut TSNE on the same points
 * beside it when python3 with sklearn is installed (it is not a dependency).
 */
export function benchTsne(n = 10_000, repeats = 3): BenchRow[] {
  const dims = 16;
  const { data, labels } = clusters(n, dims, 1);
  const times: number[] = [];
  let agreement = 0;
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    const y = tsne(data, n, dims, { perplexity: 30, iterations: 1000, theta: 0.5, random: seededRandom(2 + r) });
    times.push(performance.now() - start);
    agreement = knnLabelAgreement(y, n, 2, labels);
  }
  const input = knnLabelAgreement(data, n, dims, labels);
  const rows: BenchRow[] = [
    {
      name: `t-SNE ${n}×${dims} (ablate, Barnes-Hut)`,
      unit: 's',
      median: median(times) / 1000,
      runs: repeats,
      target: `< 60 s · 10-NN agreement ${agreement.toFixed(3)} (input ${input.toFixed(3)})`,
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
      const y = readNpyAs(join(dir, 'y.npy'), 'float32');
      rows.push({
        name: `t-SNE ${n}×${dims} (scikit-learn, 1 run)`,
        unit: 's',
        median: Number(r.stdout.trim()),
        runs: 1,
        target: `10-NN agreement ${knnLabelAgreement(y.data, n, 2, labels).toFixed(3)}`,
      });
    } else process.stderr.write(`bench: scikit-learn comparison skipped (${r.stderr.trim().split('\n').at(-1) ?? 'python3 failed'})\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
