import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binaryTreePipeline, binaryTreeSnakefile } from './generate.js';
import { measure, measureCli, median, type BenchRow, type Measured } from './util.js';

const SNAKEMAKE = '/usr/bin/snakemake';

/**
 * Projects are removed only when every row is measured: ext4 without a journal (as on the
 * VMs here) makes each new file skip the inodes freed in the last 60 s (300 s while their
 * block is dirty), so deleting one project's thousands of files just before the next cold
 * run (of either tool) slowed that run's every file creation.
 */
const projects: string[] = [];

function benchDir(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  projects.push(root);
  return root;
}

function freshProject(stages: number): string {
  const root = benchDir('ablate-bench-');
  writeFileSync(join(root, 'package.json'), '{"private":true}\n');
  mkdirSync(join(root, 'pipelines'));
  writeFileSync(join(root, 'pipelines', 'tree.yaml'), binaryTreePipeline(stages));
  return root;
}

/** Wall times of each way the tree is run, pooled over the rounds. */
interface Samples {
  readonly cold: Measured[];
  readonly noop: Measured[];
  readonly noopWithoutCerts: Measured[];
  readonly status: Measured[];
  readonly smkCold: Measured[];
  readonly smkNoop: Measured[];
}

const RUN = ['run', 'pipelines/tree.yaml', '-j', '2'];

/**
 * `rounds` rounds, each a cold run of ablate in a fresh project and, with `compare`, one of
 * Snakemake (when installed) in a fresh folder; then, in the first round's two projects,
 * `warm` no-op reruns of each tool in turn (with `compare`, also ablate's without
 * NODE_EXTRA_CA_CERTS), and `status`. Alternating, so both see the same moments of a noisy
 * machine: on the 2-core VMs here the same command's time drifted by half within minutes,
 * and a ratio of medians taken minutes apart measured that drift.
 */
function measureTree(stages: number, rounds: number, warm: number, compare: boolean): Samples {
  const samples: Samples = { cold: [], noop: [], noopWithoutCerts: [], status: [], smkCold: [], smkNoop: [] };
  let first: { ours: string; theirs: string | undefined } | undefined;
  for (let i = 0; i < rounds; i++) {
    const ours = freshProject(stages);
    samples.cold.push(measureCli(ours, RUN));
    let theirs: string | undefined;
    if (compare && existsSync(SNAKEMAKE)) {
      theirs = benchDir('ablate-bench-smk-');
      writeFileSync(join(theirs, 'Snakefile'), binaryTreeSnakefile(stages));
      samples.smkCold.push(measure(theirs, SNAKEMAKE, ['-c2', '--quiet']));
    }
    first ??= { ours, theirs };
  }
  for (let k = 0; k < warm; k++) {
    samples.noop.push(measureCli(first!.ours, RUN));
    if (compare && process.env.NODE_EXTRA_CA_CERTS)
      samples.noopWithoutCerts.push(measureCli(first!.ours, RUN, { NODE_EXTRA_CA_CERTS: undefined }));
    if (first!.theirs) samples.smkNoop.push(measure(first!.theirs, SNAKEMAKE, ['-c2', '--quiet']));
  }
  for (let k = 0; k < warm; k++) samples.status.push(measureCli(first!.ours, ['status', 'pipelines/tree.yaml']));
  return samples;
}

const seconds = (runs: readonly Measured[]) => median(runs.map((r) => r.ms)) / 1000;
const peak = (runs: readonly Measured[]) => {
  const mb = runs.flatMap((r) => (r.peakMb === undefined ? [] : [r.peakMb]));
  return mb.length ? `peak ${Math.max(...mb).toFixed(0)} MB` : 'peak memory not measured (no /usr/bin/time)';
};

/**
 * Node's own start, which every ablate command pays and Snakemake does not. Where
 * NODE_EXTRA_CA_CERTS is set (this sandbox sets it), Node reads the whole CA bundle before any
 * script runs: measured beside an unset start, so a reader can tell the environment's share.
 */
function nodeStartRows(): BenchRow[] {
  const start = (env: NodeJS.ProcessEnv) => Array.from({ length: 7 }, () => measure(tmpdir(), process.execPath, ['-e', '0'], env));
  const plain = start({ NODE_EXTRA_CA_CERTS: undefined });
  const rows: BenchRow[] = [
    { name: 'node start (node -e 0)', unit: 's', median: seconds(plain), runs: plain.length, target: 'in every ablate call' },
  ];
  if (process.env.NODE_EXTRA_CA_CERTS) {
    const withCerts = start({});
    rows.push({
      name: 'node start with NODE_EXTRA_CA_CERTS set (as here)',
      unit: 's',
      median: seconds(withCerts),
      runs: withCerts.length,
      target: `+${(seconds(withCerts) - seconds(plain)).toFixed(3)} s in every ablate call below`,
    });
  }
  return rows;
}

/**
 * n trivial shell stages, stage i needs stage ⌊(i−1)/2⌋: cold runs at -j2 in fresh projects,
 * then no-op reruns (every output verified by content through the stat cache) and `status`,
 * alternating with Snakemake on the same tree (measureTree); then ablate alone at 10× the
 * stages, to show how each grows.
 */
export function benchRunner(stages = 1000, repeats = { rounds: 3, warm: 7 }): BenchRow[] {
  let small: Samples, big: Samples;
  try {
    small = measureTree(stages, repeats.rounds, repeats.warm, true);
    big = measureTree(stages * 10, 1, 3, false);
  } finally {
    for (const root of projects.splice(0)) rmSync(root, { recursive: true, force: true });
  }
  const version = existsSync(SNAKEMAKE) ? spawnSync(SNAKEMAKE, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
  const ratio = (ours: readonly Measured[], theirs: readonly Measured[]) =>
    theirs.length
      ? `Snakemake ${version}: ${seconds(theirs).toPrecision(3)} s → ${(seconds(theirs) / seconds(ours)).toFixed(1)}× (target ≥ 8×)`
      : 'Snakemake not installed (apt-get install -y snakemake)';
  const growth = (a: readonly Measured[], b: readonly Measured[]) => `${(seconds(b) / seconds(a)).toFixed(1)}× the ${stages}-stage time`;
  return [
    ...nodeStartRows(),
    {
      name: `runner: cold run, ${stages} shell stages, -j2`,
      unit: 's',
      median: seconds(small.cold),
      runs: small.cold.length,
      target: ratio(small.cold, small.smkCold),
    },
    {
      name: `runner: no-op rerun, ${stages} stages`,
      unit: 's',
      median: seconds(small.noop),
      runs: small.noop.length,
      target: ratio(small.noop, small.smkNoop),
    },
    ...(small.noopWithoutCerts.length
      ? [
          {
            name: `runner: no-op rerun, ${stages} stages, NODE_EXTRA_CA_CERTS unset`,
            unit: 's',
            median: seconds(small.noopWithoutCerts),
            runs: small.noopWithoutCerts.length,
            target: ratio(small.noopWithoutCerts, small.smkNoop),
          },
        ]
      : []),
    {
      name: `runner: status, ${stages} stages`,
      unit: 's',
      median: seconds(small.status),
      runs: small.status.length,
      target: peak(small.status),
    },
    {
      name: `runner: cold run, ${stages * 10} shell stages, -j2`,
      unit: 's',
      median: seconds(big.cold),
      runs: big.cold.length,
      target: `${growth(small.cold, big.cold)}, ${peak(big.cold)}`,
    },
    {
      name: `runner: no-op rerun, ${stages * 10} stages`,
      unit: 's',
      median: seconds(big.noop),
      runs: big.noop.length,
      target: `${growth(small.noop, big.noop)}, ${peak(big.noop)}`,
    },
    {
      name: `runner: status, ${stages * 10} stages`,
      unit: 's',
      median: seconds(big.status),
      runs: big.status.length,
      target: `${growth(small.status, big.status)}, ${peak(big.status)}`,
    },
  ];
}
