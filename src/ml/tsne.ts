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
 */

export interface TsneOptions {
  readonly perplexity: number;
  readonly iterations: number;
  readonly theta: number;
  /** Learning rate; scikit-learn's 'auto': max(N / exaggeration / 4, 50). */
  readonly learningRate?: number;
  readonly random: () => number;
  readonly onProgress?: (iteration: number, total: number) => void;
}

const EXAGGERATION = 12;
const EXAGGERATION_ITERATIONS = 250;

/** Sparse symmetric affinities in CSR form. */
interface Affinities {
  readonly rowStart: Int32Array;
  readonly columns: Int32Array;
  readonly values: Float64Array;
}

/** Exact k nearest neighbours by squared Euclidean distance (excluding the point itself). */
export function nearestNeighbours(
  data: Float32Array,
  n: number,
  dims: number,
  k: number,
): { indices: Int32Array; distances: Float64Array } {
  const indices = new Int32Array(n * k);
  const distances = new Float64Array(n * k);
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dims; d++) s += data[i * dims + d]! ** 2;
    norms[i] = s;
  }
  const bestD = new Float64Array(k);
  const bestI = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    bestD.fill(Infinity);
    bestI.fill(-1);
    const base = i * dims;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let dot = 0;
      const other = j * dims;
      for (let d = 0; d < dims; d++) dot += data[base + d]! * data[other + d]!;
      const dist = Math.max(0, norms[i]! + norms[j]! - 2 * dot);
      if (dist >= bestD[k - 1]!) continue;
      // Insertion into the sorted top-k.
      let pos = k - 1;
      while (pos > 0 && bestD[pos - 1]! > dist) {
        bestD[pos] = bestD[pos - 1]!;
        bestI[pos] = bestI[pos - 1]!;
        pos--;
      }
      bestD[pos] = dist;
      bestI[pos] = j;
    }
    indices.set(bestI, i * k);
    distances.set(bestD, i * k);
  }
  return { indices, distances };
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
  // Symmetrize: P = (P_cond + P_condᵀ) / 2N, as a CSR matrix.
  const entries = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const col = indices[i * k + j]!;
      const v = conditional[i * k + j]! / (2 * n);
      entries.set(i * n + col, (entries.get(i * n + col) ?? 0) + v);
      entries.set(col * n + i, (entries.get(col * n + i) ?? 0) + v);
    }
  }
  const keys = [...entries.keys()].sort((a, b) => a - b);
  const rowStart = new Int32Array(n + 1);
  const columns = new Int32Array(keys.length);
  const values = new Float64Array(keys.length);
  keys.forEach((key, e) => {
    const row = Math.floor(key / n);
    rowStart[row + 1]!++;
    columns[e] = key - row * n;
    values[e] = entries.get(key)!;
  });
  for (let i = 0; i < n; i++) rowStart[i + 1]! += rowStart[i]!;
  return { rowStart, columns, values };
}

/**
 * A quadtree over the embedding, in flat arrays: for each cell its centre of mass, point
 * count, width, and its four children (−1 when absent). Rebuilt every iteration.
 */
class QuadTree {
  private capacity: number;
  comX: Float64Array;
  comY: Float64Array;
  count: Int32Array;
  width: Float64Array;
  centerX: Float64Array;
  centerY: Float64Array;
  children: Int32Array;
  /** A leaf's single point, or −1. */
  point: Int32Array;
  /** 1 until the cell gets a child. */
  leaf: Uint8Array;
  size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.comX = new Float64Array(capacity);
    this.comY = new Float64Array(capacity);
    this.count = new Int32Array(capacity);
    this.width = new Float64Array(capacity);
    this.centerX = new Float64Array(capacity);
    this.centerY = new Float64Array(capacity);
    this.children = new Int32Array(capacity * 4);
    this.point = new Int32Array(capacity);
    this.leaf = new Uint8Array(capacity);
  }

  private grow(): void {
    const next = this.capacity * 2;
    const copy = <T extends Float64Array | Int32Array>(a: T, size: number): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.comX = copy(this.comX, next);
    this.comY = copy(this.comY, next);
    this.count = copy(this.count, next);
    this.width = copy(this.width, next);
    this.centerX = copy(this.centerX, next);
    this.centerY = copy(this.centerY, next);
    this.children = copy(this.children, next * 4);
    this.point = copy(this.point, next);
    const leaf = new Uint8Array(next);
    leaf.set(this.leaf);
    this.leaf = leaf;
    this.capacity = next;
  }

  private cell(cx: number, cy: number, width: number): number {
    if (this.size === this.capacity) this.grow();
    const c = this.size++;
    this.comX[c] = 0;
    this.comY[c] = 0;
    this.count[c] = 0;
    this.width[c] = width;
    this.centerX[c] = cx;
    this.centerY[c] = cy;
    this.children.fill(-1, c * 4, c * 4 + 4);
    this.point[c] = -1;
    this.leaf[c] = 1;
    return c;
  }

  build(y: Float64Array, n: number): void {
    this.size = 0;
    let minX = Infinity;
    let maxX = -Infinity;
    let minY = Infinity;
    let maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      minX = Math.min(minX, y[2 * i]!);
      maxX = Math.max(maxX, y[2 * i]!);
      minY = Math.min(minY, y[2 * i + 1]!);
      maxY = Math.max(maxY, y[2 * i + 1]!);
    }
    const width = Math.max(maxX - minX, maxY - minY) * 1.0001 + 1e-9;
    const root = this.cell((minX + maxX) / 2, (minY + maxY) / 2, width);
    for (let i = 0; i < n; i++) this.insert(root, i, y, 0);
  }

  private insert(root: number, i: number, y: Float64Array, depth0: number): void {
    const px = y[2 * i]!;
    const py = y[2 * i + 1]!;
    let c = root;
    for (let depth = depth0; ; depth++) {
      // Update the centre of mass on the way down.
      const m = this.count[c]!;
      this.comX[c] = (this.comX[c]! * m + px) / (m + 1);
      this.comY[c] = (this.comY[c]! * m + py) / (m + 1);
      this.count[c] = m + 1;
      if (m === 0) {
        this.point[c] = i;
        return;
      }
      // Identical points, or too deep: keep them together in this leaf (treated as one mass).
      if (depth > 40) return;
      const existing = this.point[c]!;
      if (existing >= 0) {
        this.point[c] = -1;
        this.pushDown(c, existing, y);
      }
      c = this.childFor(c, px, py);
    }
  }

  /** Moves a leaf's previous single point into the right child. */
  private pushDown(c: number, j: number, y: Float64Array): void {
    const child = this.childFor(c, y[2 * j]!, y[2 * j + 1]!);
    this.comX[child] = y[2 * j]!;
    this.comY[child] = y[2 * j + 1]!;
    this.count[child] = 1;
    this.point[child] = j;
  }

  private childFor(c: number, px: number, py: number): number {
    const quadrant = (px >= this.centerX[c]! ? 1 : 0) + (py >= this.centerY[c]! ? 2 : 0);
    let child = this.children[c * 4 + quadrant]!;
    if (child < 0) {
      const half = this.width[c]! / 2;
      const quarter = half / 2;
      child = this.cell(
        this.centerX[c]! + (quadrant & 1 ? quarter : -quarter),
        this.centerY[c]! + (quadrant & 2 ? quarter : -quarter),
        half,
      );
      this.children[c * 4 + quadrant] = child;
      this.leaf[c] = 0;
    }
    return child;
  }
}

/** Repulsive force on point i (unnormalized) into out[0..1]; returns its contribution to Z. */
function repulsion(tree: QuadTree, i: number, y: Float64Array, theta2: number, out: Float64Array, stack: Int32Array): number {
  const px = y[2 * i]!;
  const py = y[2 * i + 1]!;
  let fx = 0;
  let fy = 0;
  let z = 0;
  let top = 0;
  stack[top++] = 0;
  while (top > 0) {
    const c = stack[--top]!;
    const m = tree.count[c]!;
    if (m === 0 || tree.point[c] === i) continue;
    const dx = px - tree.comX[c]!;
    const dy = py - tree.comY[c]!;
    const d2 = dx * dx + dy * dy;
    const w = tree.width[c]!;
    const isLeaf = tree.leaf[c] === 1;
    if (isLeaf || w * w < theta2 * d2) {
      // A cell that contains i itself only when it is a leaf of coincident points: skip i's share.
      const mass = isLeaf && tree.point[c]! < 0 && d2 === 0 ? m - 1 : m;
      const q = 1 / (1 + d2);
      z += mass * q;
      const f = mass * q * q;
      fx += f * dx;
      fy += f * dy;
    } else {
      for (let k = 0; k < 4; k++) {
        const child = tree.children[c * 4 + k]!;
        if (child >= 0) stack[top++] = child;
      }
    }
  }
  out[0] = fx;
  out[1] = fy;
  return z;
}

/** A 2-D embedding of `data` ([n, dims] row-major) as [n, 2]. */
export function tsne(data: Float32Array, n: number, dims: number, options: TsneOptions): Float32Array {
  const k = Math.min(n - 1, Math.floor(3 * options.perplexity));
  if (k < 1) throw new Error('t-SNE needs at least 2 points');
  const { indices, distances } = nearestNeighbours(data, n, dims, k);
  const P = affinities(indices, distances, n, k, Math.min(options.perplexity, (n - 1) / 3));
  const y = new Float64Array(2 * n);
  for (let i = 0; i < 2 * n; i++) {
    // N(0, 10⁻⁴) by Box–Muller from the seeded generator.
    const u = Math.max(options.random(), 1e-12);
    y[i] = 1e-2 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * options.random());
  }
  const update = new Float64Array(2 * n);
  const gains = new Float64Array(2 * n).fill(1);
  const attract = new Float64Array(2 * n);
  const repel = new Float64Array(2 * n);
  const eta = options.learningRate ?? Math.max(n / EXAGGERATION / 4, 50);
  const tree = new QuadTree(4 * n);
  const stack = new Int32Array(4 * 64 + 16);
  const force = new Float64Array(2);
  const theta2 = options.theta * options.theta;
  for (let iter = 0; iter < options.iterations; iter++) {
    const exaggeration = iter < EXAGGERATION_ITERATIONS ? EXAGGERATION : 1;
    const momentum = iter < EXAGGERATION_ITERATIONS ? 0.5 : 0.8;
    attract.fill(0);
    for (let i = 0; i < n; i++) {
      for (let e = P.rowStart[i]!; e < P.rowStart[i + 1]!; e++) {
        const j = P.columns[e]!;
        const dx = y[2 * i]! - y[2 * j]!;
        const dy = y[2 * i + 1]! - y[2 * j + 1]!;
        const f = (exaggeration * P.values[e]!) / (1 + dx * dx + dy * dy);
        attract[2 * i]! += f * dx;
        attract[2 * i + 1]! += f * dy;
      }
    }
    tree.build(y, n);
    let z = 0;
    for (let i = 0; i < n; i++) {
      z += repulsion(tree, i, y, theta2, force, stack);
      repel[2 * i] = force[0]!;
      repel[2 * i + 1] = force[1]!;
    }
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
