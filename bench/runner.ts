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

/** Cold runs in fresh projects, then no-op reruns and `status` in the first one. */
function measureAblate(stages: number, repeats: { cold: number; warm: number }) {
  const cold: Measured[] = [];
  const noop: Measured[] = [];
  const noopWithoutCerts: Measured[] = [];
  const status: Measured[] = [];
  const run = ['run', 'pipelines/tree.yaml', '-j', '2'];
  for (let i = 0; i < repeats.cold; i++) {
    const root = freshProject(stages);
    cold.push(measureCli(root, run));
    if (i === 0) {
      // Alternating, so both see the same moments of a noisy machine.
      for (let k = 0; k < repeats.warm; k++) {
        noop.push(measureCli(root, run));
        if (process.env.NODE_EXTRA_CA_CERTS) noopWithoutCerts.push(measureCli(root, run, { NODE_EXTRA_CA_CERTS: undefined }));
      }
      for (let k = 0; k < repeats.warm; k++) status.push(measureCli(root, ['status', 'pipelines/tree.yaml']));
    }
  }
  return { cold, noop, noopWithoutCerts, status };
}

/** The same tree under Snakemake (Debian's snakemake), when installed: cold at -c2, then no-op reruns. */
function measureSnakemake(stages: number, repeats: { cold: number; warm: number }) {
  if (!existsSync(SNAKEMAKE)) return undefined;
  const cold: Measured[] = [];
  const noop: Measured[] = [];
  for (let i = 0; i < repeats.cold; i++) {
    const root = benchDir('ablate-bench-smk-');
    writeFileSync(join(root, 'Snakefile'), binaryTreeSnakefile(stages));
    cold.push(measure(root, SNAKEMAKE, ['-c2', '--quiet']));
    if (i === 0) for (let k = 0; k < repeats.warm; k++) noop.push(measure(root, SNAKEMAKE, ['-c2', '--quiet']));
  }
  return { cold, noop, version: spawnSync(SNAKEMAKE, ['--version'], { encoding: 'utf8' }).stdout.trim() };
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
 * n trivial shell stages, stage i needs stage ⌊(i−1)/2⌋: a cold run at -j2 in a fresh
 * project, then no-op reruns (every output verified by content through the stat cache) and
 * `status`, beside Snakemake on the same tree in the same bench run; then the same at 10×
 * the stages, to show how each grows.
 */
export function benchRunner(stages = 1000, repeats = { cold: 3, warm: 7 }): BenchRow[] {
  let small, smk, big;
  try {
    small = measureAblate(stages, repeats);
    smk = measureSnakemake(stages, { cold: 1, warm: 3 });
    big = measureAblate(stages * 10, { cold: 1, warm: 3 });
  } finally {
    for (const root of projects.splice(0)) rmSync(root, { recursive: true, force: true });
  }
  const ratio = (ours: readonly Measured[], theirs: readonly Measured[] | undefined) =>
    theirs?.length
      ? `Snakemake ${smk!.version}: ${seconds(theirs).toPrecision(3)} s → ${(seconds(theirs) / seconds(ours)).toFixed(1)}× (target ≥ 8×)`
      : 'Snakemake not installed (apt-get install -y snakemake)';
  const growth = (a: readonly Measured[], b: readonly Measured[]) => `${(seconds(b) / seconds(a)).toFixed(1)}× the ${stages}-stage time`;
  return [
    ...nodeStartRows(),
    {
      name: `runner: cold run, ${stages} shell stages, -j2`,
      unit: 's',
      median: seconds(small.cold),
      runs: small.cold.length,
      target: ratio(small.cold, smk?.cold),
    },
    {
      name: `runner: no-op rerun, ${stages} stages`,
      unit: 's',
      median: seconds(small.noop),
      runs: small.noop.length,
      target: ratio(small.noop, smk?.noop),
    },
    ...(small.noopWithoutCerts.length
      ? [
          {
            name: `runner: no-op rerun, ${stages} stages, NODE_EXTRA_CA_CERTS unset`,
            unit: 's',
            median: seconds(small.noopWithoutCerts),
            runs: small.noopWithoutCerts.length,
            target: ratio(small.noopWithoutCerts, smk?.noop),
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
