import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from './fsutil.js';
import { headState } from './git.js';
import type { Lockfile } from './lockfile.js';

/**
 * What each `ablate run` did, one JSON line per run in .ablate/history/<pipeline>.jsonl. The
 * lockfile keeps only the latest results; this keeps the sequence, so "what was −ELBO before
 * Tuesday's edit" has an answer without git, and `gc` can keep the cache entries of recent
 * runs rather than only of the lockfile. It is the one place wall-clock facts live: artifacts
 * must not hold them (they would differ between equal fingerprints).
 */
export interface HistoryEntry {
  /** When the run finished, ISO 8601 UTC. */
  readonly time: string;
  readonly pipeline: string;
  /** The pipeline file, relative to the workspace. */
  readonly file: string;
  /** HEAD when the run finished, and whether tracked files had edits; null outside git. */
  readonly commit: string | null;
  readonly dirty: boolean | null;
  readonly ran: readonly string[];
  readonly restored: readonly string[];
  readonly upToDate: number;
  readonly failed: readonly string[];
  readonly skipped: number;
  readonly interrupted: boolean;
  readonly seconds: number;
  /** Every instance that completed, by its fingerprint digest: what `gc` keeps. */
  readonly instances: Readonly<Record<string, string>>;
  /** Their metrics, as the lockfile recorded them. */
  readonly metrics: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** The machine the coordinator ran on (stages may have run on workers, or come from a shared cache). */
  readonly machine: { readonly cpu: string; readonly cores: number };
  /** Each environment fact of those instances' fingerprints, with every value seen (backend: native, cpu: avx2). */
  readonly environment: Readonly<Record<string, readonly string[]>>;
}

export interface RunOutcome {
  readonly ran: readonly string[];
  readonly restored: readonly string[];
  readonly upToDate: readonly string[];
  readonly failed: readonly string[];
  readonly skipped: readonly string[];
  readonly interrupted: boolean;
}

export function historyFile(historyDir: string, pipeline: string): string {
  return join(historyDir, `${pipeline}.jsonl`);
}

/** The entry for a finished run: the lockfile after it, restricted to the instances the run selected. */
export function historyEntry(
  outcome: RunOutcome,
  context: { pipeline: string; file: string; root: string; seconds: number; selected: readonly string[]; lockfile: Lockfile | undefined },
): HistoryEntry {
  const git = headState(context.root);
  // One pass, one lookup per instance: this runs once per run, in code not yet optimized,
  // where each lookup in the lockfile's map of 1000 stages cost about a microsecond.
  const instances: Record<string, string> = {};
  const metrics: Record<string, Readonly<Record<string, number>>> = {};
  const environment: Record<string, Set<string>> = {};
  for (const id of context.selected) {
    const entry = context.lockfile?.stages[id];
    if (!entry) continue;
    instances[id] = entry.digest;
    if (entry.metrics) metrics[id] = entry.metrics;
    for (const [k, v] of Object.entries(entry.fingerprint.environment)) (environment[k] ??= new Set()).add(v);
  }
  return {
    time: new Date().toISOString(),
    pipeline: context.pipeline,
    file: context.file,
    commit: git?.commit ?? null,
    dirty: git?.dirty ?? null,
    ran: outcome.ran,
    restored: outcome.restored,
    upToDate: outcome.upToDate.length,
    failed: outcome.failed,
    skipped: outcome.skipped.length,
    interrupted: outcome.interrupted,
    seconds: Math.round(context.seconds * 1000) / 1000,
    instances,
    metrics,
    machine: { cpu: cpus()[0]?.model.trim() ?? 'unknown CPU', cores: availableParallelism() },
    environment: Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, [...v].sort()])),
  };
}

/**
 * artifacts/<pipeline>/run-info.js: the last run's entry as a script (`window.ablateRunInfo`),
 * which a report page loads to show its commit, date and machine. A script, not JSON, because
 * a page opened from file:// may load scripts but not fetch files. It lives outside every
 * stage's outputs, so the report's bytes stay a function of its fingerprint.
 */
export function writeRunInfo(artifactsDir: string, entry: HistoryEntry): void {
  if (!existsSync(artifactsDir)) return;
  const { metrics: _metrics, instances: _instances, ...facts } = entry;
  writeFileAtomic(join(artifactsDir, 'run-info.js'), `window.ablateRunInfo = ${JSON.stringify(facts, null, 1)};\n`);
}

/** One line, appended: O_APPEND keeps concurrent runs' lines whole. */
export function appendHistory(historyDir: string, entry: HistoryEntry): void {
  mkdirSync(historyDir, { recursive: true });
  appendFileSync(historyFile(historyDir, entry.pipeline), JSON.stringify(entry) + '\n', { mode: 0o644 });
}

/** A pipeline's entries, oldest first; a line cut short by a crash is skipped. */
export function readHistory(historyDir: string, pipeline: string): HistoryEntry[] {
  const file = historyFile(historyDir, pipeline);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line) => {
      if (!line.trim()) return [];
      try {
        return [JSON.parse(line) as HistoryEntry];
      } catch {
        return [];
      }
    });
}

/**
 * Drops all but the last `keep` entries of every pipeline's history, so the file `ablate log`
 * reads stays bounded. Only `gc` calls it, which runs when no run is active: a line appended
 * while the file is rewritten would be lost. Returns how many entries went.
 */
export function trimHistory(historyDir: string, keep: number, options: { dryRun: boolean }): number {
  if (!existsSync(historyDir)) return 0;
  let dropped = 0;
  for (const name of readdirSync(historyDir)) {
    if (!name.endsWith('.jsonl')) continue;
    const file = join(historyDir, name);
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim());
    if (lines.length <= keep) continue;
    dropped += lines.length - keep;
    if (!options.dryRun) writeFileAtomic(file, lines.slice(-keep).join('\n') + '\n');
  }
  return dropped;
}

/** Fingerprint digests the last `keep` runs of every pipeline completed. */
export function recentDigests(historyDir: string, keep: number): Set<string> {
  const digests = new Set<string>();
  if (keep <= 0 || !existsSync(historyDir)) return digests;
  for (const name of readdirSync(historyDir)) {
    if (!name.endsWith('.jsonl')) continue;
    for (const entry of readHistory(historyDir, name.slice(0, -'.jsonl'.length)).slice(-keep))
      for (const digest of Object.values(entry.instances)) digests.add(digest);
  }
  return digests;
}
