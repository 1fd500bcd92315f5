import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasRedisServer, start, startRedis, type Started } from '../test/processes.js';
import { cliPath, median, timeCli, type BenchRow } from './util.js';

/** 16 trainings (4 latent sizes × 4 betas) of a conv VAE, one epoch on 1,843 images each. */
const GRID = `pipeline: grid
stages:
  mnist: { uses: mnist, with: { limit_train: 2048, limit_test: 256, validation: 0.1, seed: 1 } }
  prep: { uses: preprocess, in: { data: mnist } }
  train:
    uses: train-vae
    in: { data: prep }
    matrix: { latent_dim: [2, 4, 8, 16], beta: [0.5, 1, 2, 4] }
    with: { model: conv, latent_dim: "\${matrix.latent_dim}", beta: "\${matrix.beta}", epochs: 1, seed: 1 }
`;

/** Stages that do nothing, so the wall time is the runner's and the queue's own cost. */
const NOOP_STAGES = 64;
const NOOP = `pipeline: noop
stages:
  nothing: { uses: shell, matrix: { i: [${Array.from({ length: NOOP_STAGES }, (_, i) => i).join(', ')}] }, with: { cmd: "echo \${matrix.i} > $ABLATE_OUT/i.txt", outs: [i.txt] } }
`;

function repeat(times: number, measure: () => number): number[] {
  return Array.from({ length: times }, measure);
}

/** `ablate worker`s in their own checkout of `root`, sharing its store; ready for jobs. */
async function startWorkers(count: number, root: string, url: string): Promise<Started[]> {
  const checkout = `${root}-worker`;
  cpSync(root, checkout, { recursive: true });
  const workers = Array.from({ length: count }, () =>
    start(process.execPath, [cliPath, 'worker', '--redis', url, '--cache', join(root, '.ablate/cache')], checkout),
  );
  await Promise.all(workers.map((w) => w.waitFor(/waiting for jobs/)));
  return workers;
}

/**
 * Issue 7: the 16-variant grid on one local process, on two, and on two `ablate worker`s
 * behind a real Redis (one thread per stage in each case); then the queue's cost per stage:
 * 64 no-op stages one at a time, locally and through one worker.
 */
export async function benchDistributed(repeats = 3): Promise<BenchRow[]> {
  if (!hasRedisServer()) {
    process.stderr.write('bench: distributed skipped: redis-server is not installed (apt-get install -y redis-server)\n');
    return [];
  }
  const root = mkdtempSync(join(tmpdir(), 'ablate-bench-'));
  const started: Started[] = [];
  try {
    writeFileSync(join(root, 'package.json'), '{"private":true}\n');
    mkdirSync(join(root, 'pipelines'));
    writeFileSync(join(root, 'pipelines', 'grid.yaml'), GRID);
    writeFileSync(join(root, 'pipelines', 'noop.yaml'), NOOP);
    timeCli(root, ['run', 'pipelines/grid.yaml', 'prep']);
    const redis = await startRedis();
    started.push(redis);
    const queue = ['--executor', 'bullmq', '--redis', redis.url];
    const grid = ['run', 'pipelines/grid.yaml', '--force', 'train'];
    const noop = ['run', 'pipelines/noop.yaml', '--force', 'nothing', '-j', '1'];

    const local1 = repeat(repeats, () => timeCli(root, [...grid, '-j', '1']));
    const local2 = repeat(repeats, () => timeCli(root, [...grid, '-j', '2']));
    const noopLocal = repeat(repeats + 2, () => timeCli(root, noop));
    const workers = await startWorkers(2, root, redis.url);
    started.push(...workers);
    const remote2 = repeat(repeats, () => timeCli(root, [...grid, ...queue]));
    await workers[1]!.stop();
    const noopQueue = repeat(repeats + 2, () => timeCli(root, [...noop, ...queue]));
    const overheadMs = (median(noopQueue) - median(noopLocal)) / NOOP_STAGES;
    return [
      {
        name: 'distributed: 16-variant grid, 1 local process (-j1)',
        unit: 's',
        median: median(local1) / 1000,
        runs: local1.length,
        target: '',
      },
      {
        name: 'distributed: 16-variant grid, 2 local processes (-j2)',
        unit: 's',
        median: median(local2) / 1000,
        runs: local2.length,
        target: '',
      },
      {
        name: 'distributed: 16-variant grid, 2 BullMQ workers',
        unit: 's',
        median: median(remote2) / 1000,
        runs: remote2.length,
        target: 'same machine: ≈ -j2',
      },
      {
        name: `distributed: ${NOOP_STAGES} no-op stages one at a time, local`,
        unit: 's',
        median: median(noopLocal) / 1000,
        runs: noopLocal.length,
        target: '',
      },
      {
        name: `distributed: ${NOOP_STAGES} no-op stages one at a time, 1 worker`,
        unit: 's',
        median: median(noopQueue) / 1000,
        runs: noopQueue.length,
        target: '',
      },
      {
        name: 'distributed: queue overhead per stage',
        unit: 'ms',
        median: overheadMs,
        runs: noopQueue.length,
        target: '(1 worker − local) / stages',
      },
    ];
  } finally {
    for (const p of started.reverse()) await p.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(`${root}-worker`, { recursive: true, force: true });
  }
}
