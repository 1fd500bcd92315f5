/** Seeded, stratified index selection: subsets and splits keep the class balance of the data. */

/** In-place Fisher–Yates shuffle driven by `random` (uniform in [0, 1)). */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/**
 * `count` indices of `labels`, each class represented in proportion to its share
 * (largest-remainder rounding), chosen at random within the class; returned in ascending
 * order so the subset keeps the file's order.
 */
export function stratifiedSample(labels: ArrayLike<number>, count: number, random: () => number): number[] {
  if (count >= labels.length) return Array.from({ length: labels.length }, (_, i) => i);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = byClass.get(labels[i]!) ?? byClass.set(labels[i]!, []).get(labels[i]!)!;
    list.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const exact = classes.map((c) => (byClass.get(c)!.length * count) / labels.length);
  const quota = exact.map(Math.floor);
  const remainderOrder = classes.map((_, i) => i).sort((a, b) => exact[b]! - quota[b]! - (exact[a]! - quota[a]!) || a - b);
  for (let k = 0, short = count - quota.reduce((a, b) => a + b, 0); k < short; k++) quota[remainderOrder[k]!]!++;
  const picked = classes.flatMap((c, i) => shuffle([...byClass.get(c)!], random).slice(0, quota[i]));
  return picked.sort((a, b) => a - b);
}

/** Splits `indices` into (rest, held-out) with `fraction` of each class held out. */
export function stratifiedSplit(
  indices: readonly number[],
  labels: ArrayLike<number>,
  fraction: number,
  random: () => number,
): { rest: number[]; heldOut: number[] } {
  const subsetLabels = indices.map((i) => labels[i]!);
  const heldPositions = new Set(stratifiedSample(subsetLabels, Math.round(indices.length * fraction), random));
  const rest: number[] = [];
  const heldOut: number[] = [];
  indices.forEach((index, position) => (heldPositions.has(position) ? heldOut : rest).push(index));
  return { rest, heldOut };
}
