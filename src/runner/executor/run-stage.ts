import { appendFileSync } from 'node:fs';
import type { GatheredInput, StageContext } from '../../stages/contract.js';
import { loadStageKind } from '../../stages/registry.js';
import type { JobObserver, StageJob } from './types.js';

/** sfc32: small, fast, and good enough for shuffling and noise; seeded from the job's seed. */
export function seededRandom(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    const r = (t + d) | 0;
    c = (c + r) | 0;
    return (r >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** Runs a job in this process: what a worker process does with each job it receives. */
export async function runStageJob(job: StageJob, observer: JobObserver, signal: AbortSignal): Promise<void> {
  const kind = await loadStageKind(job.ref);
  const log = (line: string) => appendFileSync(job.logFile, line.endsWith('\n') ? line : `${line}\n`);
  const ctx: StageContext<Record<string, unknown>> = {
    stageId: job.id,
    variant: job.variant,
    params: job.params,
    outDir: job.outDir,
    pipelineDir: job.pipelineDir,
    inputs: job.inputs,
    input(name) {
      const value = job.inputs[name];
      if (typeof value !== 'string') throw new Error(`input '${name}' is ${value ? 'a gather (use ctx.gather)' : 'not bound'}`);
      return value;
    },
    hasInput: (name) => Object.hasOwn(job.inputs, name),
    gather(name) {
      const value = job.inputs[name];
      if (!Array.isArray(value)) throw new Error(`input '${name}' is ${value ? 'a single input (use ctx.input)' : 'not bound'}`);
      return value as readonly GatheredInput[];
    },
    seed: job.seed,
    random: seededRandom(job.seed),
    progress: (message, fraction) => {
      log(`[progress] ${message}`);
      observer.progress(message, fraction);
    },
    log,
    logFile: job.logFile,
    signal,
  };
  await kind.run(ctx);
}
