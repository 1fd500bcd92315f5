/**
 * t-SNE's two forces per iteration (src/ml/tsne.ts runs them, on its own thread and on workers:
 * src/ml/tsne-worker.ts): the attractive sums over the sparse affinities, and the repulsive
 * walk over a Barnes-Hut quadtree. Arrays live on shared memory, so worker threads read the
 * embedding and the tree the main thread built; threads claim chunks of rows or points from
 * shared counters, and each row's or point's sums run in one fixed order whichever thread
 * takes it, so the result is the same bytes on any thread count.
 */

/** Sparse symmetric affinities P in CSR form. */
export interface Affinities {
  readonly rowStart: Int32Array;
  readonly columns: Int32Array;
  readonly values: Float64Array;
}

/** Rows or points a thread claims at a time: enough to make the atomic add rare, few enough to balance. */
const CHUNK = 256;

/**
 * Attractive forces Σ_j exaggeration · P_ij q_ij Z (y_i − y_j) into attract[2i, 2i+1], for
 * the rows claimed from counter[0].
 */
export function attractClaimed(P: Affinities, y: Float64Array, exaggeration: number, counter: Int32Array, attract: Float64Array): void {
  const n = P.rowStart.length - 1;
  for (let from = Atomics.add(counter, 0, CHUNK); from < n; from = Atomics.add(counter, 0, CHUNK)) {
    const to = Math.min(n, from + CHUNK);
    for (let i = from; i < to; i++) {
      const yx = y[2 * i]!;
      const yy = y[2 * i + 1]!;
      let ax = 0;
      let ay = 0;
      for (let e = P.rowStart[i]!; e < P.rowStart[i + 1]!; e++) {
        const j = P.columns[e]!;
        const dx = yx - y[2 * j]!;
        const dy = yy - y[2 * j + 1]!;
        const f = (exaggeration * P.values[e]!) / (1 + dx * dx + dy * dy);
        ax += f * dx;
        ay += f * dy;
      }
      attract[2 * i] = ax;
      attract[2 * i + 1] = ay;
    }
  }
}

/** Fields of a quadtree cell while it is built (the walk reads QuadTree.thread's layout). */
const COM_X = 0;
const COM_Y = 1;
const COUNT = 2;
const WIDTH = 3;
const CENTER_X = 4;
const CENTER_Y = 5;
/** A leaf's single point, or −1. */
const POINT = 6;
/** 1 until the cell gets a child. */
const LEAF = 7;
const FIELDS = 8;

/**
 * A quadtree over the embedding in flat arrays: per cell its centre of mass, point count,
 * width, centre, single point and leaf flag (`cells`, FIELDS per cell), and its four children
 * (`children`, −1 when absent). Rebuilt every iteration.
 */
export class QuadTree {
  private capacity: number;
  cells: Float64Array;
  children: Int32Array;
  size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.cells = sharedFloat64(capacity * FIELDS);
    this.children = sharedInt32(capacity * 4);
  }

  /** Doubles the arrays: new buffers, which the workers are sent with their next task. */
  private grow(): void {
    const next = this.capacity * 2;
    const cells = sharedFloat64(next * FIELDS);
    cells.set(this.cells);
    const children = sharedInt32(next * 4);
    children.set(this.children);
    this.cells = cells;
    this.children = children;
    this.capacity = next;
  }

  private cell(cx: number, cy: number, width: number): number {
    if (this.size === this.capacity) this.grow();
    const c = this.size++;
    const f = c * FIELDS;
    const cells = this.cells;
    cells[f + COM_X] = 0;
    cells[f + COM_Y] = 0;
    cells[f + COUNT] = 0;
    cells[f + WIDTH] = width;
    cells[f + CENTER_X] = cx;
    cells[f + CENTER_Y] = cy;
    cells[f + POINT] = -1;
    cells[f + LEAF] = 1;
    this.children.fill(-1, c * 4, c * 4 + 4);
    return c;
  }

  /**
   * Inserts the points in `insertion` order: the previous iteration's spatial order, so cells
   * are allocated roughly in the order a walk visits them (memory locality), where index
   * order scatters neighbours across the arrays.
   */
  build(y: Float64Array, n: number, insertion: Int32Array): void {
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
    for (let o = 0; o < n; o++) this.insert(root, insertion[o]!, y);
  }

  private insert(root: number, i: number, y: Float64Array): void {
    const px = y[2 * i]!;
    const py = y[2 * i + 1]!;
    let c = root;
    for (let depth = 0; ; depth++) {
      // Update the centre of mass on the way down.
      const f = c * FIELDS;
      const cells = this.cells;
      const m = cells[f + COUNT]!;
      cells[f + COM_X] = (cells[f + COM_X]! * m + px) / (m + 1);
      cells[f + COM_Y] = (cells[f + COM_Y]! * m + py) / (m + 1);
      cells[f + COUNT] = m + 1;
      if (m === 0) {
        cells[f + POINT] = i;
        return;
      }
      // Identical points, or too deep: keep them together in this leaf (treated as one mass).
      if (depth > 40) return;
      const existing = cells[f + POINT]!;
      if (existing >= 0) {
        cells[f + POINT] = -1;
        this.pushDown(c, existing, y);
      }
      c = this.childFor(c, px, py);
    }
  }

  /** Moves a leaf's previous single point into the right child. */
  private pushDown(c: number, j: number, y: Float64Array): void {
    const child = this.childFor(c, y[2 * j]!, y[2 * j + 1]!);
    const f = child * FIELDS;
    this.cells[f + COM_X] = y[2 * j]!;
    this.cells[f + COM_Y] = y[2 * j + 1]!;
    this.cells[f + COUNT] = 1;
    this.cells[f + POINT] = j;
  }

  private childFor(c: number, px: number, py: number): number {
    const f = c * FIELDS;
    const cx = this.cells[f + CENTER_X]!;
    const cy = this.cells[f + CENTER_Y]!;
    const quadrant = (px >= cx ? 1 : 0) + (py >= cy ? 2 : 0);
    let child = this.children[c * 4 + quadrant]!;
    if (child < 0) {
      const half = this.cells[f + WIDTH]! / 2;
      const quarter = half / 2;
      child = this.cell(cx + (quadrant & 1 ? quarter : -quarter), cy + (quadrant & 2 ? quarter : -quarter), half);
      this.children[c * 4 + quadrant] = child;
      this.cells[f + LEAF] = 0;
    }
    return child;
  }

  /**
   * Lays the tree out for the walk in depth-first pre-order, each cell with the index just past
   * its subtree: a walk then reads cells front to back, stepping to the next cell to open one
   * and jumping past its subtree to accept it, with no stack and no child pointers. Also writes
   * every point in the order this meets them into `order` (neighbours in the plane come one
   * after another, so consecutive walks visit mostly the same cells). Returns `layout`, or a
   * larger one when it was too small.
   */
  thread(n: number, layout: WalkLayout, order: Int32Array, stack: Int32Array): WalkLayout {
    const walk = layout.comX.length < this.size ? walkLayout(this.capacity) : layout;
    const seen = new Uint8Array(n);
    let filled = 0;
    let next = 0;
    // Cells to lay out; −1 closes the innermost open cell, whose skip is then known.
    let top = 0;
    stack[top++] = 0;
    const open: number[] = [];
    while (top > 0) {
      const c = stack[--top]!;
      if (c < 0) {
        walk.skip[open.pop()!] = next;
        continue;
      }
      const f = c * FIELDS;
      const slot = next++;
      const width = this.cells[f + WIDTH]!;
      walk.comX[slot] = this.cells[f + COM_X]!;
      walk.comY[slot] = this.cells[f + COM_Y]!;
      walk.mass[slot] = this.cells[f + COUNT]!;
      walk.width2[slot] = width * width;
      const point = this.cells[f + POINT]!;
      walk.point[slot] = point;
      if (point >= 0 && !seen[point]) {
        seen[point] = 1;
        order[filled++] = point;
      }
      if (this.cells[f + LEAF] === 1) {
        walk.skip[slot] = next;
        continue;
      }
      // Children are laid out 0..3 (pushed in reverse), then the marker closes this cell.
      open.push(slot);
      stack[top++] = -1;
      for (let k = 3; k >= 0; k--) {
        const child = this.children[c * 4 + k]!;
        if (child >= 0) stack[top++] = child;
      }
    }
    walk.size[0] = next;
    // Coincident points merged into one leaf have no cell of their own: they go last, in index order.
    for (let i = 0; i < n && filled < n; i++) if (!seen[i]) order[filled++] = i;
    return walk;
  }
}

/**
 * The tree as the walk reads it (QuadTree.thread), one array per field on shared memory: in
 * V8 this walk runs 2.6× faster than over one record of float64 fields per cell, which needs a
 * float-to-integer conversion for every index it reads. A leaf is a cell whose skip is the
 * next cell.
 */
export interface WalkLayout {
  readonly comX: Float64Array;
  readonly comY: Float64Array;
  readonly mass: Float64Array;
  /** The cell's width, squared (compared with θ²·d²). */
  readonly width2: Float64Array;
  /** A leaf's single point, or −1. */
  readonly point: Int32Array;
  /** The index of the cell after this one's subtree. */
  readonly skip: Int32Array;
  /** [number of cells laid out]. */
  readonly size: Int32Array;
}

export function walkLayout(capacity: number): WalkLayout {
  return {
    comX: sharedFloat64(capacity),
    comY: sharedFloat64(capacity),
    mass: sharedFloat64(capacity),
    width2: sharedFloat64(capacity),
    point: sharedInt32(capacity),
    skip: sharedInt32(capacity),
    size: sharedInt32(1),
  };
}

/**
 * Repulsive forces (unnormalized) into repel[2i, 2i+1] and Z terms into zs[i] for the points
 * of `order`, in chunks claimed from counter[0] until none are left: threads that finish
 * early take more.
 */
export function repulseClaimed(
  walk: WalkLayout,
  y: Float64Array,
  order: Int32Array,
  counter: Int32Array,
  theta2: number,
  repel: Float64Array,
  zs: Float64Array,
): void {
  const force = new Float64Array(2);
  const n = order.length;
  for (let from = Atomics.add(counter, 0, CHUNK); from < n; from = Atomics.add(counter, 0, CHUNK)) {
    const to = Math.min(n, from + CHUNK);
    for (let o = from; o < to; o++) {
      const i = order[o]!;
      zs[i] = repulsion(walk, i, y, theta2, force);
      repel[2 * i] = force[0]!;
      repel[2 * i + 1] = force[1]!;
    }
  }
}

/** Deep enough to lay out a tree of depth ≤ 42 (three siblings and a marker wait per level). */
export const STACK_SIZE = 5 * 64 + 16;

export const sharedFloat64 = (length: number) => new Float64Array(new SharedArrayBuffer(length * Float64Array.BYTES_PER_ELEMENT));
export const sharedInt32 = (length: number) => new Int32Array(new SharedArrayBuffer(length * Int32Array.BYTES_PER_ELEMENT));

/** Repulsive force on point i (unnormalized) into out[0..1]; returns its contribution to Z. */
function repulsion(walk: WalkLayout, i: number, y: Float64Array, theta2: number, out: Float64Array): number {
  const { comX, comY, mass, width2, point, skip } = walk;
  const cells = walk.size[0]!;
  const px = y[2 * i]!;
  const py = y[2 * i + 1]!;
  let fx = 0;
  let fy = 0;
  let z = 0;
  let c = 0;
  while (c < cells) {
    const after = skip[c]!;
    // Only a leaf holds a point (an inner cell's is −1): i's own leaf is passed over.
    const isLeaf = after === c + 1;
    const own = isLeaf ? point[c]! : -1;
    if (own === i) {
      c = after;
      continue;
    }
    const dx = px - comX[c]!;
    const dy = py - comY[c]!;
    const d2 = dx * dx + dy * dy;
    if (isLeaf || width2[c]! < theta2 * d2) {
      // A cell that contains i itself only when it is a leaf of coincident points: skip i's share.
      const m = mass[c]!;
      const share = isLeaf && own < 0 && d2 === 0 ? m - 1 : m;
      const q = 1 / (1 + d2);
      z += share * q;
      const force = share * q * q;
      fx += force * dx;
      fy += force * dy;
      c = after;
    } else c++;
  }
  out[0] = fx;
  out[1] = fy;
  return z;
}
