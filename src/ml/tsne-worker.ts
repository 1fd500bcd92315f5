/**
 * A worker thread of t-SNE (src/ml/tsne.ts starts them): first it claims rows of the kNN
 * search (src/ml/tsne-knn.ts); then per iteration it claims chunks of rows for the attractive
 * sums while the main thread builds the quadtree, then chunks of points for the repulsion walk
 * over that tree, writes into shared arrays, and says done when none are left.
 */
import { parentPort } from 'node:worker_threads';
import { attractClaimed, repulseClaimed, type Affinities, type WalkLayout } from './tsne-forces.js';
import { knnClaimed, type KnnTask } from './tsne-knn.js';

/** Sent once: the arrays that live for the whole run. */
export interface ForceSetup {
  readonly type: 'setup';
  readonly P: Affinities;
  readonly y: Float64Array;
  readonly order: Int32Array;
  readonly repel: Float64Array;
  readonly zs: Float64Array;
  readonly attract: Float64Array;
  /** [0]: the first row no thread has claimed for attraction; [1]: the same for repulsion, in `order`. */
  readonly counters: Int32Array;
  readonly theta2: number;
}

/** Sent first each iteration, while the main thread builds the tree: claim rows of attraction. */
export interface AttractionTask {
  readonly type: 'attract';
  readonly exaggeration: number;
}

/** Sent once the tree is built (new buffers whenever it grew): claim points to repulse, then say done. */
export interface RepulsionTask {
  readonly type: 'repulse';
  /** The tree in the walk's layout (QuadTree.thread). */
  readonly walk: WalkLayout;
}

let setup: ForceSetup | undefined;

parentPort?.on('message', (message: KnnTask | ForceSetup | AttractionTask | RepulsionTask) => {
  if (message.type === 'knn') {
    knnClaimed(message);
    parentPort!.postMessage('done');
    return;
  }
  if (message.type === 'setup') {
    setup = message;
    return;
  }
  const s = setup!;
  if (message.type === 'attract') {
    attractClaimed(s.P, s.y, message.exaggeration, s.counters.subarray(0, 1), s.attract);
    return;
  }
  repulseClaimed(message.walk, s.y, s.order, s.counters.subarray(1, 2), s.theta2, s.repel, s.zs);
  parentPort!.postMessage('done');
});
