import { existsSync, readFileSync, statSync, type Stats } from 'node:fs';
import { writeFileAtomic } from '../fsutil.js';
import { hashFile, identityOf, sameIdentity, type Digest, type FileIdentity } from '../hashing.js';

type Entry = readonly [ino: number, size: number, mtimeMs: number, ctimeMs: number, digest: Digest];

/**
 * Remembers the digest of each file together with its (inode, size, mtime, ctime), so an
 * unchanged file is verified by one stat instead of a read — what makes a no-op rerun
 * cheap while still checking content. Any change to the file changes its ctime, so a
 * stale entry is never trusted. Shared by concurrent runs: each saves atomically and the
 * worst a lost update costs is one rehash (or one record read).
 */
export class StatCache {
  private dirty = false;

  private constructor(
    private readonly file: string | undefined,
    /** Content digests of files (artifacts, dependency files), by absolute path. */
    private readonly entries: Map<string, Entry>,
    /**
     * The outputDigest each cache run record names, by the record file's absolute path: a
     * no-op rerun checks that the cache still agrees with the lockfile for every stage, and
     * this makes that one stat per record instead of a read and a JSON parse (45–73 ms in
     * V8 profiles of a no-op run of 1000 stages). Apart from `entries`, so a
     * record's file is never taken to have its outputs' digest as its content's.
     */
    private readonly records: Map<string, Entry>,
  ) {}

  static load(file: string): StatCache {
    let entries = new Map<string, Entry>();
    let records = new Map<string, Entry>();
    if (existsSync(file)) {
      try {
        const parsed = JSON.parse(readFileSync(file, 'utf8')) as {
          version: number;
          entries: Record<string, Entry>;
          records?: Record<string, Entry>;
        };
        if (parsed.version === 1) {
          entries = new Map(Object.entries(parsed.entries));
          records = new Map(Object.entries(parsed.records ?? {}));
        }
      } catch {
        // A damaged stat cache is only a lost optimisation: start empty and rehash.
      }
    }
    return new StatCache(file, entries, records);
  }

  /** A cache that is never written (dry runs, read-only commands). */
  static inMemory(): StatCache {
    return new StatCache(undefined, new Map(), new Map());
  }

  /** The digest of `path` if its identity still matches what was recorded. */
  lookup(path: string, stats: Stats): Digest | undefined {
    return valid(this.entries.get(path), stats);
  }

  /** The outputDigest of the run record at `path` if the file's identity still matches what was read. */
  lookupRecord(path: string, stats: Stats): Digest | undefined {
    return valid(this.records.get(path), stats);
  }

  /** `stats`: the record file's, unchanged from before it was read to after. */
  recordRecord(path: string, stats: Stats, outputDigest: Digest): void {
    this.records.set(path, [stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs, outputDigest]);
    this.dirty = true;
  }

  record(path: string, stats: Stats, digest: Digest): void {
    this.entries.set(path, [stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs, digest]);
    this.dirty = true;
  }

  /**
   * Drops the entries of files `exists` says are gone (deleted artifacts, records `gc`
   * removed): nothing else removes them, and every run reads the whole file. Returns how many.
   */
  prune(exists: (path: string) => boolean): number {
    let dropped = 0;
    for (const map of [this.entries, this.records])
      for (const path of [...map.keys()])
        if (!exists(path)) {
          map.delete(path);
          dropped++;
        }
    this.dirty ||= dropped > 0;
    return dropped;
  }

  /** Digest of a file, hashing it only when its identity changed since last time. */
  async digestOf(path: string, stats: Stats = statSync(path)): Promise<Digest> {
    const known = this.lookup(path, stats);
    if (known) return known;
    const digest = await hashFile(path, stats.size);
    this.record(path, stats, digest);
    return digest;
  }

  save(): void {
    if (!this.file || !this.dirty) return;
    writeFileAtomic(
      this.file,
      JSON.stringify({ version: 1, entries: Object.fromEntries(this.entries), records: Object.fromEntries(this.records) }),
    );
    this.dirty = false;
  }
}

function valid(entry: Entry | undefined, stats: Stats): Digest | undefined {
  if (!entry) return undefined;
  const recorded: FileIdentity = { ino: entry[0], size: entry[1], mtimeMs: entry[2], ctimeMs: entry[3] };
  return sameIdentity(recorded, identityOf(stats)) ? entry[4] : undefined;
}
