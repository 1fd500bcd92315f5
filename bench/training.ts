import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, type BenchRow } from './util.js';

const probe = fileURLToPath(new URL('./training-probe.ts', import.meta.url));
const pytorchScript = fileURLToPath(new URL('./reference/pytorch_vae.py', import.meta.url));
/** Debian's python3 (apt-get install -y python3-torch); optional, never a CI dependency. */
const python = process.env.ABLATE_PYTHON ?? '/usr/bin/python3';

type Mode = 'train' | 'infer';

interface Sample {
  readonly label: string;
  /** Images per sample. */
  readonly batch: number;
  readonly ms: number;
  readonly runs: number;
}

function parse(label: string, stdout: string): Sample {
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { batch: number; stepMs: number[] };
  return { label, batch: result.batch, ms: median(result.stepMs), runs: result.stepMs.length };
}

function ablate(choice: string, mode: Mode, threads: number, samples: number): Sample | undefined {
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

function pytorch(mode: Mode, threads: number, samples: number): Sample | undefined {
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

function rows(mode: Mode, samples: Sample[], what: string): BenchRow[] {
  const reference = (threads: number) => samples.find((s) => s.label === `PyTorch 1.13, ${threads} thread${threads > 1 ? 's' : ''}`);
  return samples.map((s) => {
    const rate = (s.batch * 1000) / s.ms;
    const threads = s.label.includes('2 threads') ? 2 : 1;
    const ref = reference(threads);
    const ratio =
      ref && !s.label.startsWith('PyTorch')
        ? ` · ${(rate / ((ref.batch * 1000) / ref.ms)).toFixed(2)}× PyTorch on ${threads} thread${threads > 1 ? 's' : ''}`
        : '';
    return {
      name: `${what}, ${s.label}`,
      unit: 'img/s',
      median: rate,
      runs: s.runs,
      target: `${s.ms.toFixed(mode === 'train' ? 0 : 1)} ms per ${mode === 'train' ? 'step' : 'pass'}${ratio}`,
    };
  });
}

function section(mode: Mode, what: string, samples: number): BenchRow[] {
  const measured = [
    ablate('native', mode, 1, samples),
    ablate('native', mode, 2, samples),
    ablate('wasm', mode, 1, mode === 'train' ? samples : 3),
    ablate('tensorflow', mode, 1, samples),
    pytorch(mode, 1, samples),
    pytorch(mode, 2, samples),
  ].filter((s): s is Sample => s !== undefined);
  return rows(mode, measured, what);
}

/**
 * Training (one Adam step at batch 128) and inference (the encoder over 10,000 images) of
 * the seed conv VAE on every route that loads here, beside the PyTorch reference when
 * Debian's python3-torch is installed. The pure-JS cpu backend takes minutes per step, so
 * it is a separate section (`npm run bench -- training-cpu`) timed over a single step.
 */
export function benchTraining(): BenchRow[] {
  return [...section('train', 'training: conv VAE d=2, batch 128', 20), ...section('infer', 'inference: encoder, 10k images', 5)];
}

export function benchTrainingCpu(): BenchRow[] {
  const sample = ablate('cpu', 'train', 1, 1);
  return sample ? rows('train', [sample], 'training: conv VAE d=2, batch 128') : [];
}
