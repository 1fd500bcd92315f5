/**
 * Exact k nearest neighbours for t-SNE, row by row, so that rows can be shared between threads
 * (src/ml/tsne.ts on its own thread, src/ml/tsne-worker.ts on workers) with the same bytes:
 * each row is computed alone, in one fixed order. Distances come from a float64 copy of the
 * data as ‖a‖² + ‖b‖² − 2a·b, with a·b summed in dimension order, so d(i, j) = d(j, i) to the
 * bit. Each row scans every other point and keeps its k best in a small max-heap of its own
 * (a farther candidate costs one comparison); for up to 16 dimensions the rows are padded with
 * zeros and row i's values sit in locals, which makes the scan 3× faster (the padding adds +0
 * after the real terms).
 */
import { sharedFloat64, sharedInt32 } from './tsne-forces.js';

/** Inputs of up to this many dimensions (latent codes, PCA-16) take the unrolled distance loop. */
const PADDED_DIMS = 16;

/** Rows a thread claims at a time. */
const CHUNK = 64;

/** One kNN computation on shared memory: inputs, the row counter and the outputs [n·k]. */
export interface KnnTask {
  readonly type: 'knn';
  readonly n: number;
  readonly dims: number;
  readonly k: number;
  /** Row stride of `x`: 16 for up to 16 dimensions (zero-padded), else dims. */
  readonly width: number;
  readonly x: Float64Array;
  readonly norms: Float64Array;
  /** [0]: the first row no thread has claimed. */
  readonly counter: Int32Array;
  readonly indices: Int32Array;
  readonly distances: Float64Array;
}

export function knnTask(data: Float32Array, n: number, dims: number, k: number): KnnTask {
  const width = dims <= PADDED_DIMS ? PADDED_DIMS : dims;
  const x = sharedFloat64(n * width);
  for (let j = 0; j < n; j++) for (let d = 0; d < dims; d++) x[j * width + d] = data[j * dims + d]!;
  const norms = sharedFloat64(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dims; d++) s += x[i * width + d]! ** 2;
    norms[i] = s;
  }
  return {
    type: 'knn',
    n,
    dims,
    k,
    width,
    x,
    norms,
    counter: sharedInt32(1),
    indices: sharedInt32(n * k),
    distances: sharedFloat64(n * k),
  };
}

/** Computes the rows claimed from task.counter until none are left. */
export function knnClaimed(task: KnnTask): void {
  const { n, dims, k, width, x, norms, counter, indices, distances } = task;
  const row = new Float64Array(n);
  const heap = new KBest(k);
  for (let from = Atomics.add(counter, 0, CHUNK); from < n; from = Atomics.add(counter, 0, CHUNK)) {
    for (let i = from; i < Math.min(n, from + CHUNK); i++) {
      if (width === PADDED_DIMS) paddedDots(x, i, n, row);
      else
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let d = 0; d < dims; d++) dot += x[i * width + d]! * x[j * width + d]!;
          row[j] = dot;
        }
      heap.clear();
      for (let j = 0; j < n; j++) if (j !== i) heap.offer(j, Math.max(0, norms[i]! + norms[j]! - 2 * row[j]!));
      heap.sortedInto(indices, distances, i * k);
    }
  }
}

/** row[j] = x_i · x_j for rows padded to 16 values, summed in dimension order. */
function paddedDots(x: Float64Array, i: number, n: number, row: Float64Array): void {
  const a = i * PADDED_DIMS;
  const [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15] = x.subarray(a, a + PADDED_DIMS) as unknown as number[];
  for (let j = 0; j < n; j++) {
    const b = j * PADDED_DIMS;
    // prettier-ignore
    row[j] = 0 + a0! * x[b]! + a1! * x[b + 1]! + a2! * x[b + 2]! + a3! * x[b + 3]! + a4! * x[b + 4]! + a5! * x[b + 5]! +
      a6! * x[b + 6]! + a7! * x[b + 7]! + a8! * x[b + 8]! + a9! * x[b + 9]! + a10! * x[b + 10]! + a11! * x[b + 11]! +
      a12! * x[b + 12]! + a13! * x[b + 13]! + a14! * x[b + 14]! + a15! * x[b + 15]!;
  }
}

/** The k best (smallest distance, then smallest index) of the candidates offered: a max-heap. */
class KBest {
  private readonly dist: Float64Array;
  private readonly index: Int32Array;
  private readonly order: number[];

  constructor(private readonly k: number) {
    this.dist = new Float64Array(k);
    this.index = new Int32Array(k);
    this.order = Array.from({ length: k }, (_, e) => e);
  }

  clear(): void {
    this.dist.fill(Infinity);
    this.index.fill(-1);
  }

  /** Replaces the worst kept candidate with (j, dist) when that is better, then sifts it down. */
  offer(j: number, dist: number): void {
    const { dist: hd, index: hi, k } = this;
    if (dist > hd[0]! || (dist === hd[0]! && j > hi[0]!)) return;
    let pos = 0;
    for (;;) {
      const left = 2 * pos + 1;
      if (left >= k) break;
      const right = left + 1;
      let child = left;
      if (right < k && (hd[right]! > hd[left]! || (hd[right] === hd[left] && hi[right]! > hi[left]!))) child = right;
      const dc = hd[child]!;
      if (dc < dist || (dc === dist && hi[child]! < j)) break;
      hd[pos] = dc;
      hi[pos] = hi[child]!;
      pos = child;
    }
    hd[pos] = dist;
    hi[pos] = j;
  }

  /** The kept candidates, nearest first, into indices/distances from `base`. */
  sortedInto(indices: Int32Array, distances: Float64Array, base: number): void {
    const { dist, index, order } = this;
    order.sort((p, q) => dist[p]! - dist[q]! || index[p]! - index[q]!);
    for (let e = 0; e < this.k; e++) {
      indices[base + e] = index[order[e]!]!;
      distances[base + e] = dist[order[e]!]!;
    }
  }
}
