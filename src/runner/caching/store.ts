import {
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Fingerprint, FingerprintDigest } from '../fingerprint.js';
import { inDirectory, uniqueSuffix, writeFileAtomic } from '../fsutil.js';
import { hashBytes, identityOf, sameIdentity, type Digest } from '../hashing.js';
import { checkManifest } from './confine.js';
import { listFiles, type Manifest, type ManifestEntry } from './manifest.js';
import type { StatCache } from './stat-cache.js';

/** Objects below this size are written from memory when materialized; bigger ones are copied (reflinked where the filesystem can). */
const COPY_THRESHOLD = 1 << 20;

/** What the cache remembers about one successful stage execution. */
export interface RunRecord {
  readonly digest: FingerprintDigest;
  readonly fingerprint: Fingerprint;
  readonly outputs: Manifest;
  readonly outputDigest: Digest;
  /** Headline numbers from the stage's metrics file, if it declares one. */
  readonly metrics?: Readonly<Record<string, number>>;
  /** What the stage warns a reader of (its metrics file's `warnings`: a collapsed posterior, say). */
  readonly warnings?: readonly string[];
  readonly durationMs: number;
  readonly createdAt: string;
}

/**
 * Content-addressed store under .ablate/cache/:
 *   objects/ab/cdef…   file contents by SHA-256, read-only
 *   runs/ab/cdef….json RunRecords by fingerprint digest
 * A run record is written only after all its objects are in place, so a record never
 * points at a missing object unless someone deletes objects by hand (then `restore`
 * notices, and the stage runs again).
 */
export class CacheStore {
  /**
   * The root, normalized, with a trailing separator: paths below it are built by
   * concatenation, since path.join's normalizing was a fifth of reading a run record in a
   * no-op run (a digest is hex: nothing in it to normalize).
   */
  private readonly prefix: string;

  constructor(readonly root: string) {
    this.prefix = join(root, '/');
  }

  objectPath(digest: Digest): string {
    return this.prefix + this.relativeObjectPath(digest);
  }

  /** Below the store's root, '/'-separated: the name an archive of the store gives it. */
  relativeObjectPath(digest: Digest): string {
    return `objects/${digest.slice(0, 2)}/${digest.slice(2)}`;
  }

  relativeRunPath(digest: FingerprintDigest): string {
    return `runs/${digest.slice(0, 2)}/${digest.slice(2)}.json`;
  }

  private runPath(digest: FingerprintDigest): string {
    return this.prefix + this.relativeRunPath(digest);
  }

  readRun(digest: FingerprintDigest): RunRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.runPath(digest), 'utf8');
    } catch {
      return undefined;
    }
    return this.parseRun(digest, text);
  }

  /**
   * The outputDigest of the record for `digest` (undefined: no valid record), read only when
   * the record file changed since the stat cache last saw it: records are replaced by rename,
   * and an edit in place changes the file's ctime, so an unchanged identity means unchanged bytes.
   */
  recordedOutputDigest(digest: FingerprintDigest, statCache: StatCache): Digest | undefined {
    const path = this.runPath(digest);
    // One stat when the record is known: each system call costs microseconds, times every stage.
    const stats = statSync(path, { throwIfNoEntry: false });
    if (!stats) return undefined;
    const known = statCache.lookupRecord(path, stats);
    if (known) return known;
    const record = this.readRun(digest);
    // Remembered only if the file kept its identity while it was read (not replaced meanwhile).
    const after = statSync(path, { throwIfNoEntry: false });
    if (record && after && sameIdentity(identityOf(stats), identityOf(after))) statCache.recordRecord(path, after, record.outputDigest);
    return record?.outputDigest;
  }

  private parseRun(digest: FingerprintDigest, text: string): RunRecord | undefined {
    let record: RunRecord;
    try {
      record = JSON.parse(text) as RunRecord;
    } catch {
      return undefined;
    }
    // A store can be shared (a mount other machines write to): its records are checked like any outside input.
    if (record.digest !== digest) return undefined;
    checkManifest(record.outputs, `cache record ${this.runPath(digest)}`);
    return record;
  }

  writeRun(record: RunRecord): void {
    writeFileAtomic(this.runPath(record.digest), JSON.stringify(record));
  }

  dropRun(digest: FingerprintDigest): void {
    rmSync(this.runPath(digest), { force: true });
  }

  /**
   * Moves a finished stage's output directory into the object store and returns its
   * manifest. Files are hashed once here; an object that already exists is kept (same
   * content by definition) and the new copy dropped.
   */
  ingest(dir: string): Manifest {
    const manifest: Record<string, ManifestEntry> = {};
    for (const { path, abs, stats } of listFiles(dir)) {
      const digest = hashBytes(readFileSync(abs));
      manifest[path] = { digest, size: stats.size, executable: (stats.mode & 0o111) !== 0 };
      const target = this.objectPath(digest);
      if (existsSync(target)) continue;
      chmodSync(abs, 0o444);
      try {
        inDirectory(target, () => renameSync(abs, target));
      } catch (error) {
        // A store on another filesystem (a shared mount): copy beside the target, then rename.
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
        const staging = `${target}.tmp-${uniqueSuffix()}`;
        copyFileSync(abs, staging);
        renameSync(staging, target);
      }
    }
    return manifest;
  }

  /**
   * Puts back the objects of `manifest` that the store lacks, from a directory holding
   * those files (a stage's artifacts), each checked against its digest first. A shared
   * store loses objects when a reader finds one corrupt and deletes it; whoever still has
   * the bytes restores them here.
   */
  putMissing(manifest: Manifest, sourceDir: string): void {
    checkManifest(manifest, `the outputs recorded for ${sourceDir}`);
    for (const [path, entry] of Object.entries(manifest)) {
      const target = this.objectPath(entry.digest);
      if (existsSync(target)) continue;
      const content = readFileSync(join(sourceDir, path));
      if (hashBytes(content) !== entry.digest)
        throw new Error(`${join(sourceDir, path)} changed since its stage ran; run the pipeline again to recompute it`);
      writeFileAtomic(target, content, 0o444);
    }
  }

  /** Whether every object of a manifest is present (cheap: stats only). */
  hasObjects(manifest: Manifest): boolean {
    return Object.values(manifest).every((e) => existsSync(this.objectPath(e.digest)));
  }

  /**
   * Copies a manifest's objects into `targetDir`, verifying each against its digest on the
   * way, and swaps the result in by rename. Throws CorruptObjectError if an object does
   * not match its digest (and deletes it, so the next run recomputes it), and UnsafePathError,
   * before writing anything, if a path would leave `targetDir` (`source` names the manifest's origin).
   */
  materialize(manifest: Manifest, targetDir: string, statCache: StatCache, source = 'a manifest'): void {
    checkManifest(manifest, source);
    const staging = `${targetDir}.tmp-${uniqueSuffix()}`;
    let swapped = false;
    try {
      mkdirSync(staging, { recursive: true });
      for (const [path, entry] of Object.entries(manifest)) {
        const object = this.objectPath(entry.digest);
        const content = readFileSync(object);
        if (hashBytes(content) !== entry.digest) {
          unlinkSync(object);
          throw new CorruptObjectError(object, path);
        }
        const dest = join(staging, path);
        inDirectory(dest, () =>
          // The bytes are in memory already (just verified): writing them is one call where a
          // copy is seven. Big files are copied, so a filesystem with reflinks shares their blocks.
          content.length < COPY_THRESHOLD ? writeFileSync(dest, content) : copyFileSync(object, dest, constants.COPYFILE_FICLONE),
        );
        chmodSync(dest, entry.executable ? 0o755 : 0o644);
      }
      swapDirectory(staging, targetDir);
      swapped = true;
    } finally {
      if (!swapped) rmSync(staging, { recursive: true, force: true });
    }
    for (const [path, entry] of Object.entries(manifest)) {
      const abs = join(targetDir, path);
      statCache.record(abs, statSync(abs), entry.digest);
    }
  }

  /** Every run record's digest. */
  listRuns(): FingerprintDigest[] {
    return listSharded(join(this.root, 'runs')).map((name) => name.replace(/\.json$/, '') as FingerprintDigest);
  }

  listObjects(): Digest[] {
    return listSharded(join(this.root, 'objects')) as Digest[];
  }

  dropObject(digest: Digest): void {
    rmSync(this.objectPath(digest), { force: true });
  }
}

export class CorruptObjectError extends Error {
  constructor(
    readonly object: string,
    readonly path: string,
  ) {
    super(`cache object ${object} (for ${path}) does not match its digest; it was removed`);
  }
}

function listSharded(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((shard) =>
    readdirSync(join(dir, shard))
      .filter((n) => !n.includes('.tmp-'))
      .map((name) => shard + name),
  );
}

/**
 * Replaces `target` with `staging` by renames, so a reader sees the old directory or the new
 * one. A target that is there (from before, or another run swapping in the same content at
 * the same moment) is moved aside and the rename tried again; what was moved aside is removed
 * once our rename has landed (or failed for good).
 */
function swapDirectory(staging: string, target: string): void {
  const movedAside: string[] = [];
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        inDirectory(target, () => renameSync(staging, target));
        return;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt > 20) throw error;
      }
      const trash = `${target}.old-${uniqueSuffix()}`;
      try {
        renameSync(target, trash);
        movedAside.push(trash);
      } catch (error) {
        // Moved away by the other run meanwhile: try again.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  } finally {
    for (const dir of movedAside) rmSync(dir, { recursive: true, force: true });
  }
}
