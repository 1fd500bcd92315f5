/**
 * Barnes-Hut t-SNE (van der Maaten, "Accelerating t-SNE using Tree-Based Algorithms", JMLR
 * 2014), written for Node: no npm package runs it there (the exact ones are O(N²) per
 * iteration — about an hour for 10,000 points).
 *   1. Affinities: for each point its K = ⌊3·perplexity⌋ nearest neighbours (exact search),
 *      a Gaussian whose width is found by bisection to match the perplexity, symmetrized:
 *      P_ij = (p_j|i + p_i|j) / 2N, sparse.
 *   2. Gradient descent on the embedding Y (2-D), from N(0, 10⁻⁴) seeded:
 *      ∂C/∂y_i = 4 [ Σ_j P_ij q_ij Z (y_i − y_j)  −  Σ_j q_ij² Z² (y_i − y_j) / Z ],
 *      q_ij Z = 1 / (1 + ‖y_i − y_j‖²). The attractive sum runs over the sparse P; the
 *      repulsive one over a quadtree, where a cell of width w at distance d with w / d < θ
 *      stands for all its points.
 *   Early exaggeration ×12 for 250 iterations, momentum 0.5 → 0.8, per-parameter gains.
 * Speed (src/ml/tsne-forces.ts): the tree is built in the previous iteration's spatial order,
 * then laid out in pre-order with skip indices, one typed array per field, so a walk reads it
 * front to back without a stack; walks run in spatial order, so consecutive walks reuse cached
 * cells. kNN scans rows with row i held in locals (src/ml/tsne-knn.ts). With `threads` > 1,
 * worker threads claim chunks of the kNN rows, the attractive rows and the repulsive walks.
 * Every row's and point's sums run in one fixed order and Z is added up in index order, so the
 * embedding is the same bytes on any thread count. An interpolation-on-a-grid
 * repulsion with FFTs (FIt-SNE) was measured too: in JavaScript its 512² FFTs cost more than
 * this walk once the embedding spans ±85, where it needs about a box per unit of length.
 */

import { Worker } from 'node:worker_threads';
import { knnClaimed, knnTask, type KnnTask } from './tsne-knn.js';
import {
  attractClaimed,
  QuadTree,
  repulseClaimed,
  sharedFloat64,
  sharedInt32,
  STACK_SIZE,
  walkLayout,
  type Affinities,
  type WalkLayout,
} from './tsne-forces.js';
// Also what puts the worker's code into the tsne stage's code digest (the worker is started by URL).
import type { AttractionTask, ForceSetup, RepulsionTask } from './tsne-worker.js';

export interface TsneOptions {
  readonly perplexity: number;
  readonly iterations: number;
  readonly theta: number;
  /** Learning rate; scikit-learn's 'auto': max(N / exaggeration / 4, 50). */
  readonly learningRate?: number;
  readonly random: () => number;
  readonly onProgress?: (iteration: number, total: number) => void;
  /** Threads for the repulsive forces (default 1): speed only, the same bytes on any count. */
  readonly threads?: number;
}

const EXAGGERATION = 12;
const EXAGGERATION_ITERATIONS = 250;

/**
 * Exact k nearest neighbours by squared Euclidean distance (excluding the point itself),
 * nearest first; equal distances in index order (src/ml/tsne-knn.ts), on this thread.
 */
export function nearestNeighbours(
  data: Float32Array,
  n: number,
  dims: number,
  k: number,
): { indices: Int32Array; distances: Float64Array } {
  const task = knnTask(data, n, dims, k);
  knnClaimed(task);
  return task;
}

/** Conditional p_j|i over each point's neighbours, with σ_i bisected so that 2^H = perplexity. */
function affinities(indices: Int32Array, distances: Float64Array, n: number, k: number, perplexity: number): Affinities {
  const conditional = new Float64Array(n * k);
  const targetEntropy = Math.log(perplexity);
  for (let i = 0; i < n; i++) {
    let beta = 1;
    let lo = -Infinity;
    let hi = Infinity;
    const row = distances.subarray(i * k, (i + 1) * k);
    const minD = row[0]!;
    for (let step = 0; step < 100; step++) {
      let sum = 0;
      let weighted = 0;
      for (let j = 0; j < k; j++) {
        const p = Math.exp(-beta * (row[j]! - minD));
        conditional[i * k + j] = p;
        sum += p;
        weighted += p * (row[j]! - minD);
      }
      const entropy = Math.log(sum) + (beta * weighted) / sum;
      for (let j = 0; j < k; j++) conditional[i * k + j]! /= sum;
      const diff = entropy - targetEntropy;
      if (Math.abs(diff) < 1e-5) break;
      if (diff > 0) {
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
      }
    }
  }
  // Symmetrize: P = (P_cond + P_condᵀ) / 2N, as a CSR matrix. Each conditional p_j|i goes to
  // row i (column j) and to row j (column i); a row's entries are then sorted by column and
  // equal columns merged, adding in the order they were placed.
  const rowCount = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    rowCount[i + 1]! += k;
    for (let e = 0; e < k; e++) rowCount[indices[i * k + e]! + 1]!++;
  }
  for (let i = 0; i < n; i++) rowCount[i + 1]! += rowCount[i]!;
  const fill = rowCount.slice(0, n);
  const rawColumns = new Int32Array(2 * n * k);
  const rawValues = new Float64Array(2 * n * k);
  for (let i = 0; i < n; i++) {
    for (let e = 0; e < k; e++) {
      const j = indices[i * k + e]!;
      const v = conditional[i * k + e]! / (2 * n);
      rawColumns[fill[i]!] = j;
      rawValues[fill[i]!++] = v;
      rawColumns[fill[j]!] = i;
      rawValues[fill[j]!++] = v;
    }
  }
  const rowStart = new Int32Array(n + 1);
  const columns = new Int32Array(2 * n * k);
  const values = new Float64Array(2 * n * k);
  let size = 0;
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    order.length = 0;
    for (let e = rowCount[i]!; e < rowCount[i + 1]!; e++) order.push(e);
    order.sort((a, b) => rawColumns[a]! - rawColumns[b]! || a - b);
    for (const e of order) {
      if (size > rowStart[i]! && columns[size - 1] === rawColumns[e]) values[size - 1]! += rawValues[e]!;
      else {
        columns[size] = rawColumns[e]!;
        values[size++] = rawValues[e]!;
      }
    }
    rowStart[i + 1] = size;
  }
  // On shared memory: worker threads read P without a copy.
  const shared = { rowStart: sharedInt32(n + 1), columns: sharedInt32(size), values: sharedFloat64(size) };
  shared.rowStart.set(rowStart);
  shared.columns.set(columns.subarray(0, size));
  shared.values.set(values.subarray(0, size));
  return shared;
}

/**
 * Worker threads that share the gradient's sums with the calling thread, claiming chunks of
 * rows and points as they go. Any split gives the same bytes (each point's sums run in one fixed order,
 * and Z is added up in index order), so the thread count is a speed setting only.
 */
class ForceWorkers {
  private readonly workers: Worker[];

  constructor(count: number) {
    const fromSource = import.meta.url.endsWith('.ts');
    const entry = new URL(fromSource ? './tsne-worker.ts' : './tsne-worker.js', import.meta.url);
    this.workers = Array.from({ length: count }, () => {
      // From the sources (the tests), a worker needs tsx's loader, which Node 20 does not pass
      // on to worker threads: a two-line bootstrap registers it first.
      const worker = fromSource
        ? new Worker(
            `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`,
            { eval: true },
          )
        : new Worker(entry);
      return worker;
    });
  }

  /** Sends every worker what lives for the whole descent. */
  setup(setup: ForceSetup): void {
    for (const worker of this.workers) worker.postMessage(setup);
  }

  /** Every worker claims rows of `task` (as this thread does meanwhile); resolves when all are done. */
  knn(task: KnnTask): Promise<void> {
    return this.untilDone(task);
  }

  /** Starts every worker claiming rows of attraction (it goes on to repulsion when told). */
  attract(exaggeration: number): void {
    const task: AttractionTask = { type: 'attract', exaggeration };
    for (const worker of this.workers) worker.postMessage(task);
  }

  /** Starts every worker claiming points of repulsion over the laid-out tree; resolves when all are done. */
  repulse(walk: WalkLayout): Promise<void> {
    // Views of shared memory travel by reference: the tree as it is now, even after it grew.
    const task: RepulsionTask = { type: 'repulse', walk };
    return this.untilDone(task);
  }

  /** Posts `task` to every worker; resolves when each has answered, rejects on a worker's error. */
  private untilDone(task: RepulsionTask | KnnTask): Promise<void> {
    return Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const onError = (error: Error) => reject(error);
            worker.once('error', onError);
            worker.once('message', () => {
              worker.off('error', onError);
              resolve();
            });
            worker.postMessage(task);
          }),
      ),
    ).then(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * A 2-D embedding of `data` ([n, dims] row-major) as [n, 2]. With `threads` > 1 the
 * repulsion walk is shared with worker threads; the result is the same bytes.
 */
export async function tsne(data: Float32Array, n: number, dims: number, options: TsneOptions): Promise<Float32Array> {
  const k = Math.min(n - 1, Math.floor(3 * options.perplexity));
  if (k < 1) throw new Error('t-SNE needs at least 2 points');
  const threads = Math.max(1, Math.min(options.threads ?? 1, Math.ceil(n / 256)));
  const workers = threads > 1 ? new ForceWorkers(threads - 1) : undefined;
  try {
    return await descend(data, n, dims, k, options, workers);
  } finally {
    await workers?.close();
  }
}

/** kNN, affinities and the gradient descent, with `workers` (if any) sharing each phase. */
async function descend(
  data: Float32Array,
  n: number,
  dims: number,
  k: number,
  options: TsneOptions,
  workers: ForceWorkers | undefined,
): Promise<Float32Array> {
  const neighbours = knnTask(data, n, dims, k);
  const others = workers?.knn(neighbours);
  knnClaimed(neighbours);
  await others;
  const P = affinities(neighbours.indices, neighbours.distances, n, k, Math.min(options.perplexity, (n - 1) / 3));
  const y = sharedFloat64(2 * n);
  for (let i = 0; i < 2 * n; i++) {
    // N(0, 10⁻⁴) by Box–Muller from the seeded generator.
    const u = Math.max(options.random(), 1e-12);
    y[i] = 1e-2 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * options.random());
  }
  const update = new Float64Array(2 * n);
  const gains = new Float64Array(2 * n).fill(1);
  const attract = sharedFloat64(2 * n);
  const repel = sharedFloat64(2 * n);
  const zs = sharedFloat64(n);
  // Index order at first; then each iteration's spatial order, which the next inserts in.
  const order = sharedInt32(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const eta = options.learningRate ?? Math.max(n / EXAGGERATION / 4, 50);
  const tree = new QuadTree(4 * n);
  let walk = walkLayout(4 * n);
  const stack = new Int32Array(STACK_SIZE);
  const theta2 = options.theta * options.theta;
  const counters = sharedInt32(2);
  workers?.setup({ type: 'setup', P, y, order, repel, zs, attract, counters, theta2 });
  for (let iter = 0; iter < options.iterations; iter++) {
    const exaggeration = iter < EXAGGERATION_ITERATIONS ? EXAGGERATION : 1;
    const momentum = iter < EXAGGERATION_ITERATIONS ? 0.5 : 0.8;
    counters.fill(0);
    // Workers start on the attraction, which needs no tree, while this thread builds it.
    workers?.attract(exaggeration);
    tree.build(y, n, order);
    // Walks in spatial order (for the cache), Z summed in index order (for the bytes).
    walk = tree.thread(n, walk, order, stack);
    const others = workers?.repulse(walk);
    attractClaimed(P, y, exaggeration, counters.subarray(0, 1), attract);
    repulseClaimed(walk, y, order, counters.subarray(1, 2), theta2, repel, zs);
    await others;
    let z = 0;
    for (let i = 0; i < n; i++) z += zs[i]!;
    for (let p = 0; p < 2 * n; p++) {
      const grad = 4 * (attract[p]! - repel[p]! / z);
      gains[p] = Math.max(0.01, Math.sign(grad) !== Math.sign(update[p]!) ? gains[p]! + 0.2 : gains[p]! * 0.8);
      update[p] = momentum * update[p]! - eta * gains[p]! * grad;
      y[p]! += update[p]!;
    }
    // Keep the embedding centred.
    let mx = 0;
    let my = 0;
    for (let i = 0; i < n; i++) {
      mx += y[2 * i]!;
      my += y[2 * i + 1]!;
    }
    for (let i = 0; i < n; i++) {
      y[2 * i]! -= mx / n;
      y[2 * i + 1]! -= my / n;
    }
    if (iter % 50 === 0) options.onProgress?.(iter, options.iterations);
  }
  return Float32Array.from(y);
}

/** Share of points whose k nearest neighbours (in `points`) mostly carry their own label: how well clusters separate. */
export function knnLabelAgreement(points: Float32Array, n: number, dims: number, labels: ArrayLike<number>, k = 10): number {
  const { indices } = nearestNeighbours(points, n, dims, k);
  let agree = 0;
  for (let i = 0; i < n; i++) {
    let same = 0;
    for (let j = 0; j < k; j++) if (labels[indices[i * k + j]!] === labels[i]) same++;
    agree += same / k;
  }
  return agree / n;
}
