import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, type BenchRow } from './util.js';

const probe = fileURLToPath(new URL('./training-probe.ts', import.meta.url));

function measure(choice: string, steps: number): BenchRow | undefined {
  const r = spawnSync(process.execPath, ['--import', 'tsx', probe, choice, String(steps), '128'], { encoding: 'utf8' });
  if (r.status !== 0) {
    const why = r.stderr.split('\n').find((line) => /^\w*Error\b/.test(line)) ?? r.stderr.trim().split('\n')[0];
    process.stderr.write(`bench: backend ${choice} unavailable: ${why}\n`);
    return undefined;
  }
  const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { backend: string; reason: string; batch: number; stepMs: number[] };
  const ms = median(result.stepMs);
  return {
    name: `training: conv VAE d=2, batch 128, ${result.backend}`,
    unit: 'img/s',
    median: (result.batch * 1000) / ms,
    runs: result.stepMs.length,
    target: `${ms.toFixed(0)} ms/step · PyTorch 1.13 (FACTS.md): ~2,000 img/s on 1 thread`,
  };
}

/**
 * Training throughput at batch 128 on every backend that loads here. The pure-JS cpu backend
 * takes minutes per step, so it is a separate section (`npm run bench -- training-cpu`) timed
 * over a single step.
 */
export function benchTraining(): BenchRow[] {
  const rows = [measure('tensorflow', 10), measure('wasm', 10)];
  return rows.filter((r): r is BenchRow => r !== undefined);
}

export function benchTrainingCpu(): BenchRow[] {
  const row = measure('cpu', 1);
  return row ? [row] : [];
}
