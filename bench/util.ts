import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const cliPath = join(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'ablate.js');

/** Wall time of one CLI invocation in `cwd`, in ms; throws if it fails. */
export function timeCli(cwd: string, args: readonly string[]): number {
  const start = performance.now();
  const r = spawnSync(process.execPath, [cliPath, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  const ms = performance.now() - start;
  if (r.status !== 0) throw new Error(`ablate ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout.slice(-2000)}`);
  return ms;
}

export interface BenchRow {
  readonly name: string;
  readonly unit: string;
  readonly median: number;
  readonly runs: number;
  /** The figure to beat or compare with, in words. */
  readonly target: string;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function printTable(rows: readonly BenchRow[]): void {
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'benchmark'.padEnd(width)}  ${'median'.padStart(10)}  runs  target / reference`);
  for (const r of rows) {
    const value = `${r.median >= 100 ? r.median.toFixed(0) : r.median.toPrecision(3)} ${r.unit}`;
    console.log(`${r.name.padEnd(width)}  ${value.padStart(10)}  ${String(r.runs).padStart(4)}  ${r.target}`);
  }
}
