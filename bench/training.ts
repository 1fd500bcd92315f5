import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, type BenchRow } from './util.js';

const probe = fileURLToPath(new URL('./training-probe.ts', import.meta.url));
const pytorchScript = fileURLToPath(new URL('./reference/pytorch_vae.py', import.meta.url));
/** Debian's python3 (apt-get install -y python3-torch); optional, never a CI dependency. */
const python = process.env.ABLATE_PYTHON ?? '/usr/bin/python3';

type Mode = 'train' | 'infer';

/** A route's timings (one process's, or pooled over rounds): images per sample and each sample's milliseconds. */
interface Timings {
  readonly label: string;
  readonly batch: number;
  readonly stepMs: readonly number[];
}

function parse(label: string, stdout: string): Timings {
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { batch: number; stepMs: number[] };
  return { label, batch: result.batch, stepMs: result.stepMs };
}

/** The samples of one route, pooled over the rounds it ran in. */
function pooled(timings: readonly Timings[]): Timings {
  return { label: timings[0]!.label, batch: timings[0]!.batch, stepMs: timings.flatMap((t) => t.stepMs) };
}

function ablate(choice: string, mode: Mode, threads: number, samples: number): Timings | undefined {
  const r = spawnSync(process.execPath, ['--import', 'tsx', probe, choice, mode, String(samples)], {
    encoding: 'utf8',
    env: { ...process.env, ABLATE_THREADS: String(threads) },
  });
  if (r.status !== 0) {
    const why = r.stderr.split('\n').find((line) => /^\w*Error\b/.test(line)) ?? r.stderr.trim().split('\n')[0];
    process.stderr.write(`bench: backend ${choice} unavailable: ${why}\n`);
    return undefined;
  }
  const backend = (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { backend: string }).backend;
  return parse(backend === 'native' ? `native, ${threads} thread${threads > 1 ? 's' : ''}` : backend, r.stdout);
}

function pytorch(mode: Mode, threads: number, samples: number): Timings | undefined {
  const r = spawnSync(python, [pytorchScript, mode, String(threads), String(samples)], {
    encoding: 'utf8',
    // The tuning FACTS.md describes: one OpenBLAS thread, glibc keeping its freed memory.
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1', MALLOC_MMAP_THRESHOLD_: String(512 << 20), MALLOC_TRIM_THRESHOLD_: String(1 << 30) },
  });
  if (r.status !== 0) {
    if (threads === 1)
      process.stderr.write(
        `bench: PyTorch reference unavailable (${python}: ${(r.stderr || String(r.error)).trim().split('\n').at(-1)})\n`,
      );
    return undefined;
  }
  return parse(`PyTorch 1.13, ${threads} thread${threads > 1 ? 's' : ''}`, r.stdout);
}

function rows(mode: Mode, routes: readonly Timings[], what: string): BenchRow[] {
  const rate = (t: Timings) => (t.batch * 1000) / median(t.stepMs);
  const reference = (threads: number) => routes.find((t) => t.label === `PyTorch 1.13, ${threads} thread${threads > 1 ? 's' : ''}`);
  return routes.map((t) => {
    const threads = t.label.includes('2 threads') ? 2 : 1;
    const ref = reference(threads);
    const ratio =
      ref && !t.label.startsWith('PyTorch')
        ? ` · ${(rate(t) / rate(ref)).toFixed(2)}× PyTorch on ${threads} thread${threads > 1 ? 's' : ''}`
        : '';
    return {
      name: `${what}, ${t.label}`,
      unit: 'img/s',
      median: rate(t),
      runs: t.stepMs.length,
      target: `${median(t.stepMs).toFixed(mode === 'train' ? 0 : 1)} ms per ${mode === 'train' ? 'step' : 'pass'}${ratio}`,
    };
  });
}

/**
 * The routes compared with PyTorch run in alternating rounds (ablate, PyTorch, on 1 thread
 * then 2), each a fresh process, and each route's samples are pooled: on a shared VM whose
 * speed drifts by tens of percent within minutes, a ratio of two runs a minute apart
 * measures the drift as much as the code.
 */
function section(mode: Mode, what: string, samples: number, rounds: number): BenchRow[] {
  const threadCounts = [1, 2];
  const ours = threadCounts.map(() => [] as Timings[]);
  const theirs = threadCounts.map(() => [] as Timings[]);
  const tryRoute = (round: number, runs: Timings[], run: () => Timings | undefined) => {
    // A route that failed to load once is not tried again.
    if (round > 0 && runs.length === 0) return;
    const timings = run();
    if (timings) runs.push(timings);
  };
  for (let round = 0; round < rounds; round++)
    threadCounts.forEach((threads, i) => {
      tryRoute(round, ours[i]!, () => ablate('native', mode, threads, samples));
      tryRoute(round, theirs[i]!, () => pytorch(mode, threads, samples));
    });
  const alone = [ablate('wasm', mode, 1, mode === 'train' ? samples : 3), ablate('tensorflow', mode, 1, samples)].flatMap((t) =>
    t ? [[t]] : [],
  );
  // Rows in the order readers know: ablate's routes, then PyTorch's.
  return rows(mode, [...ours, ...alone, ...theirs].filter((runs) => runs.length > 0).map(pooled), what);
}

/**
 * Training (one Adam step at batch 128) and inference (the encoder over 10,000 images) of
 * the seed conv VAE on every route that loads here, beside the PyTorch reference when
 * Debian's python3-torch is installed. The pure-JS cpu backend takes minutes per step, so
 * it is a separate section (`npm run bench -- training-cpu`) timed over a single step.
 */
export function benchTraining(): BenchRow[] {
  return [...section('train', 'training: conv VAE d=2, batch 128', 5, 4), ...section('infer', 'inference: encoder, 10k images', 2, 3)];
}

export function benchTrainingCpu(): BenchRow[] {
  const sample = ablate('cpu', 'train', 1, 1);
  return sample ? rows('train', [sample], 'training: conv VAE d=2, batch 128') : [];
}
