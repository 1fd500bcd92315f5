import { createHash, randomFillSync } from 'node:crypto';
import { createBLAKE3 } from 'hash-wasm';
import xxhash from 'xxhash-wasm';
import { median, type BenchRow } from './util.js';

/**
 * Throughput of the hashes the cache could use, on a buffer the size of MNIST's training
 * images (47 MB). Why SHA-256 won: see src/runner/hashing.ts.
 */
export async function benchHashing(repeats = 5): Promise<BenchRow[]> {
  const data = randomFillSync(Buffer.alloc(47_040_016));
  const { h64Raw } = await xxhash();
  const blake3 = await createBLAKE3();
  const candidates: [string, () => void][] = [
    ['sha256 (node:crypto)', () => createHash('sha256').update(data).digest('hex')],
    ['xxh64 (xxhash-wasm)', () => h64Raw(data)],
    ['blake3 (hash-wasm)', () => blake3.init().update(data).digest('hex')],
  ];
  return candidates.map(([name, run]) => {
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const start = performance.now();
      run();
      times.push(performance.now() - start);
    }
    return { name: `hash 47 MB: ${name}`, unit: 'GB/s', median: data.length / 1e9 / (median(times) / 1000), runs: repeats, target: '' };
  });
}
