import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binaryTreePipeline } from './generate.js';
import { median, timeCli, type BenchRow } from './util.js';

function freshProject(stages: number): string {
  const root = mkdtempSync(join(tmpdir(), 'ablate-bench-'));
  writeFileSync(join(root, 'package.json'), '{"private":true}\n');
  mkdirSync(join(root, 'pipelines'));
  writeFileSync(join(root, 'pipelines', 'tree.yaml'), binaryTreePipeline(stages));
  return root;
}

/**
 * Issue 2's runner benchmark: n trivial shell stages, stage i needs stage ⌊(i−1)/2⌋.
 * Cold run at -j2 in a fresh project, then no-op reruns (every output verified by content
 * through the stat cache) and `status`.
 */
export function benchRunner(stages = 1000, repeats = { cold: 3, warm: 7 }): BenchRow[] {
  const cold: number[] = [];
  const noop: number[] = [];
  const status: number[] = [];
  for (let i = 0; i < repeats.cold; i++) {
    const root = freshProject(stages);
    try {
      cold.push(timeCli(root, ['run', 'pipelines/tree.yaml', '-j', '2']));
      if (i === 0) {
        for (let k = 0; k < repeats.warm; k++) noop.push(timeCli(root, ['run', 'pipelines/tree.yaml', '-j', '2']));
        for (let k = 0; k < repeats.warm; k++) status.push(timeCli(root, ['status', 'pipelines/tree.yaml']));
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return [
    {
      name: `runner: cold run, ${stages} shell stages, -j2`,
      unit: 's',
      median: median(cold) / 1000,
      runs: cold.length,
      target: '≤ 8 s (Snakemake 7.21: 33 s)',
    },
    {
      name: `runner: no-op rerun, ${stages} stages`,
      unit: 's',
      median: median(noop) / 1000,
      runs: noop.length,
      target: '≤ 0.25 s (Snakemake: 1.15 s, mtimes only)',
    },
    { name: `runner: status, ${stages} stages`, unit: 's', median: median(status) / 1000, runs: status.length, target: '' },
  ];
}
