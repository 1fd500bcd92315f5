import { manifestDigest } from './caching/manifest.js';
import type { RunRecord } from './caching/store.js';
import { updateLockfile, type LockEntry, type Lockfile } from './lockfile.js';
import type { StageInstance } from './plan.js';

/** How often, at most, completed stages are written to the lockfile while a run goes on. */
const FLUSH_MS = 1000;

/**
 * Writes between two flushes are spaced by this many times the last write's duration: each
 * rewrites the whole file, which grows with the run, so a fixed period made a cold run of
 * 10,000 stages spend 3.2 of its 34 s rewriting a lockfile of up to 12 MB (in a V8 profile).
 */
const WRITE_SPACING = 50;

/**
 * Collects the entries of completed stages and writes them to the lockfile in batches (at
 * most once a second, less often for a big lockfile, and once at the end), so a run of
 * 10,000 small stages does not rewrite the file 10,000 times, and an interrupted run keeps
 * what had completed. A run killed before its last write loses only lockfile entries: the
 * cache has their records, and the next run restores them without executing anything.
 */
export class LockfileWriter {
  private readonly updates = new Map<string, LockEntry>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<Lockfile | undefined>;
  private lastWriteMs = 0;

  constructor(
    private readonly path: string,
    private readonly pipeline: string,
    private readonly currentIds: readonly string[],
    private readonly locksDir: string,
    private readonly previous: Lockfile | undefined,
    /** `run --frozen`: the file is never written (the run checks each entry instead). */
    private readonly options: { readOnly: boolean } = { readOnly: false },
  ) {
    this.writing = Promise.resolve(previous);
  }

  /**
   * Records what the cache holds for a completed instance, unless the lockfile already says
   * exactly that: same fingerprint, same outputs file by file (not only their summary digest,
   * so an entry edited by hand or committed from elsewhere is repaired), same directory.
   */
  record(instance: StageInstance, record: RunRecord): void {
    const previous = this.previous?.stages[instance.id];
    if (
      previous?.digest === record.digest &&
      manifestDigest(previous.outputs) === record.outputDigest &&
      previous.outputDigest === record.outputDigest &&
      previous.artifactDir === instance.artifactDir
    )
      return;
    const { createdAt: _createdAt, ...rest } = record;
    this.updates.set(instance.id, { ...rest, artifactDir: instance.artifactDir });
    if (this.options.readOnly) return;
    this.timer ??= setTimeout(() => void this.flush(), Math.max(FLUSH_MS, WRITE_SPACING * this.lastWriteMs));
  }

  /**
   * Writes what was recorded; also drops entries of instances no longer in the pipeline.
   * Resolves to the lockfile as it now is (undefined: there is none and nothing to write).
   */
  flush(): Promise<Lockfile | undefined> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.options.readOnly || this.isCurrent()) return this.writing;
    const batch = new Map(this.updates);
    this.writing = this.writing.then(async () => {
      const started = performance.now();
      const written = await updateLockfile(this.path, this.pipeline, batch, this.currentIds, this.locksDir);
      this.lastWriteMs = performance.now() - started;
      return written;
    });
    return this.writing;
  }

  private isCurrent(): boolean {
    const ids = new Set(this.currentIds);
    return this.updates.size === 0 && this.previous !== undefined && Object.keys(this.previous.stages).every((id) => ids.has(id));
  }
}
