import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const cliPath = join(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'ablate.js');

/** GNU time (Debian's `time` package) reports a child's peak RSS; without it memory is not measured. */
const GNU_TIME = '/usr/bin/time';

export interface Measured {
  readonly ms: number;
  /** Peak resident memory in MB, where GNU time is installed. */
  readonly peakMb?: number;
}

/** Wall time (and peak RSS) of one command in `cwd`; throws if it fails. `env` replaces variables (undefined: removes one). */
export function measure(cwd: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Measured {
  const memoryFile = join(cwd, '.peak-rss');
  const wrapped = existsSync(GNU_TIME);
  const start = performance.now();
  const r = spawnSync(wrapped ? GNU_TIME : command, wrapped ? ['-f', '%M', '-o', memoryFile, command, ...args] : args, {
    cwd,
    encoding: 'utf8',
    env: Object.fromEntries(Object.entries({ ...process.env, CI: '1', ...env }).filter(([, v]) => v !== undefined)),
    maxBuffer: 256 * 1024 * 1024,
  });
  const ms = performance.now() - start;
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}${r.stdout.slice(-2000)}`);
  if (!wrapped) return { ms };
  const kb = Number(readFileSync(memoryFile, 'utf8').trim().split('\n').at(-1));
  rmSync(memoryFile);
  return { ms, peakMb: kb / 1024 };
}

/** One `ablate` CLI invocation in `cwd` (wall time and peak RSS); throws if it fails. */
export const measureCli = (cwd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Measured =>
  measure(cwd, process.execPath, [cliPath, ...args], env);

/** Wall time of one CLI invocation in `cwd`, in ms; throws if it fails. */
export const timeCli = (cwd: string, args: readonly string[]): number => measureCli(cwd, args).ms;

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
