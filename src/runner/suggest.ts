import { distance } from 'fastest-levenshtein';

/**
 * The candidate closest to `name` by edit distance, if it is close enough to be a plausible
 * typo: at most a third of the name's length, but 2 edits always (a swapped pair of letters
 * costs 2), and fewer edits than the candidate has letters. Ties keep the first.
 */
export function nearestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(name.length / 3));
  return bestDistance <= limit && bestDistance < best.length ? best : undefined;
}
