import { appendFileSync } from 'node:fs';
import type { GatheredInput, StageContext } from '../../core/contract.js';
import { seededRandom } from '../../core/random.js';
import { loadStageKind } from '../../core/registry.js';
import { listFiles } from '../caching/manifest.js';
import type { JobObserver, StageJob } from './types.js';

/** Runs a job in this process: what a worker process does with each job it receives. */
export async function runStageJob(job: StageJob, observer: JobObserver, signal: AbortSignal): Promise<void> {
  const kind = await loadStageKind(job.ref);
  const append = (line: string) => appendFileSync(job.logFile, line.endsWith('\n') ? line : `${line}\n`);
  const log = (line: string) => {
    append(line);
    observer.log(line.replace(/\n$/, ''));
  };
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
      append(`[progress] ${message}`);
      observer.progress(message, fraction);
    },
    log,
    logFile: job.logFile,
    signal,
    provenance: job.provenance,
    provenanceTree: job.provenanceTree,
    listFiles: (dir) => listFiles(dir).map((f) => f.path),
    threads: job.threads,
  };
  await kind.run(ctx);
}
