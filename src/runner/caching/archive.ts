/**
 * A cache archive: the part of a content-addressed store that some lockfiles reference, as one
 * tar file, for CI systems that cache single files rather than directories, and to keep a CI
 * cache from growing with every run's leftovers. Inside, the store's own layout:
 *   objects/ab/cdef…     file contents, named by their SHA-256
 *   runs/ab/cdef….json   run records, named by their fingerprint digest
 * objects first, so a reader meets a record after the objects it names (the store's own
 * write order). node-tar reads and writes the format (it is what npm itself packs with);
 * nothing from an archive is trusted: import checks every entry's name, type and digest
 * before anything lands in the store, and writes nothing at all if one entry fails.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { create as createTar, list as listTar, type ReadEntry } from 'tar';
import { fingerprintDigest, type FingerprintDigest } from '../fingerprint.js';
import { displayPath, uniqueSuffix } from '../fsutil.js';
import type { Digest } from '../hashing.js';
import type { Lockfile } from '../lockfile.js';
import { checkManifest, UnsafePathError } from './confine.js';
import { manifestDigest } from './manifest.js';
import type { CacheStore, RunRecord } from './store.js';

/** An archive that cannot be imported as it is (damaged, altered, or not ablate's): exit 1, the store untouched. */
export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
}

/** A lockfile with where it came from, for messages. */
export interface NamedLockfile {
  readonly path: string;
  readonly lock: Lockfile;
}

export interface ExportSummary {
  /** Stage entries of the lockfiles whose record and every object went into the archive. */
  readonly stages: number;
  readonly objects: number;
  readonly bytes: number;
  /** `lockfile: id` of entries this store cannot supply (never run here, or collected). */
  readonly missing: readonly string[];
}

const OBJECT_ENTRY = /^objects\/([0-9a-f]{2})\/([0-9a-f]{62})$/;
const RUN_ENTRY = /^runs\/([0-9a-f]{2})\/([0-9a-f]{62})\.json$/;
const DIRECTORY_ENTRY = /^(objects|runs)(\/[0-9a-f]{2})?\/?$/;

const EMPTY_TAR = Buffer.alloc(1024);

/** `.tar.gz` and `.tgz` are gzipped; anything else is a plain tar. */
function gzipped(file: string): boolean {
  return /\.(tar\.gz|tgz)$/.test(file);
}

/**
 * Writes the records and objects that `lockfiles` reference into `file` (beside it first, then
 * renamed, so a killed export leaves no half archive under the name). Entries the store cannot
 * supply in full are left out and listed; fixed mtimes and owners make equal contents give
 * equal bytes.
 */
export async function exportArchive(store: CacheStore, lockfiles: readonly NamedLockfile[], file: string): Promise<ExportSummary> {
  const objects = new Set<Digest>();
  const runs = new Set<FingerprintDigest>();
  const missing: string[] = [];
  for (const { path, lock } of lockfiles)
    for (const [id, entry] of Object.entries(lock.stages)) {
      const record = store.readRun(entry.digest);
      const digests = Object.values(entry.outputs).map((o) => o.digest);
      if (!record || record.outputDigest !== manifestDigest(entry.outputs) || !digests.every((d) => existsSync(store.objectPath(d)))) {
        missing.push(`${displayPath(path)}: ${id}`);
        continue;
      }
      runs.add(entry.digest);
      for (const d of digests) objects.add(d);
    }
  const paths = [...[...objects].sort().map((d) => store.relativeObjectPath(d)), ...[...runs].sort().map((d) => store.relativeRunPath(d))];
  const bytes = [...objects].reduce((sum, d) => sum + statSync(store.objectPath(d)).size, 0);
  const staging = `${file}.tmp-${uniqueSuffix()}`;
  mkdirSync(dirname(file), { recursive: true });
  try {
    if (paths.length)
      await createTar(
        { file: staging, cwd: store.root, gzip: gzipped(file), portable: true, mtime: new Date(0), noDirRecurse: true, strict: true },
        paths,
      );
    // node-tar writes no archive of nothing; an empty one is its two zero blocks.
    else writeFileSync(staging, gzipped(file) ? gzipSync(EMPTY_TAR) : EMPTY_TAR);
    renameSync(staging, file);
  } finally {
    rmSync(staging, { force: true });
  }
  return { stages: runs.size, objects: objects.size, bytes, missing };
}

export interface ImportSummary {
  readonly records: number;
  /** Objects written into the store. */
  readonly objects: number;
  /** Objects the store already had (same bytes by their name). */
  readonly present: number;
  readonly bytes: number;
  /** Records left out, with why: one that contradicts a lockfile here, or lacks objects. */
  readonly refused: readonly string[];
}

/**
 * Reads `file` into the store. Every object must hash to its name; every record must be
 * internally consistent (its name is its fingerprint's digest, its output digest its
 * manifest's) and name only safe paths. Any other entry, a link, or a damaged archive fails
 * the whole import before the store changes. A record that contradicts an entry of
 * `lockfiles` (same fingerprint, other outputs: from another machine, or altered to look
 * consistent) or whose objects are nowhere is left out and named: restoring it would
 * give a stage other bytes than the lockfile promises.
 */
export async function importArchive(store: CacheStore, file: string, lockfiles: readonly NamedLockfile[]): Promise<ImportSummary> {
  if (!existsSync(file)) throw new ArchiveError(`${file}: no such file`);
  if (isEmptyTar(file)) return { records: 0, objects: 0, present: 0, bytes: 0, refused: [] };
  const staging = join(store.root, `import.tmp-${uniqueSuffix()}`);
  const records = new Map<FingerprintDigest, RunRecord>();
  const staged = new Set<Digest>();
  const problems: string[] = [];
  mkdirSync(staging, { recursive: true });
  try {
    const readEntry = (entry: ReadEntry) => {
      const name = entry.path;
      const object = OBJECT_ENTRY.exec(name);
      const run = RUN_ENTRY.exec(name);
      if (entry.type === 'Directory' && DIRECTORY_ENTRY.test(name)) return entry.resume();
      if (entry.type !== 'File' || (!object && !run)) {
        problems.push(`'${name}' (${entry.type}) is not part of an ablate cache archive`);
        return entry.resume();
      }
      // One entry at a time in memory: an object is one output file of one stage.
      const chunks: Buffer[] = [];
      entry.on('data', (chunk: Buffer) => chunks.push(chunk));
      entry.on('end', () => {
        if (object) {
          const digest = (object[1]! + object[2]!) as Digest;
          const content = Buffer.concat(chunks);
          if (createHash('sha256').update(content).digest('hex') !== digest) problems.push(`object ${name} does not match its digest`);
          else if (!staged.has(digest)) {
            writeFileSync(join(staging, digest), content, { mode: 0o444 });
            staged.add(digest);
          }
        } else {
          const problem = recordProblem(Buffer.concat(chunks).toString('utf8'), (run![1]! + run![2]!) as FingerprintDigest, records);
          if (problem) problems.push(`run record ${name} ${problem}`);
        }
      });
    };
    try {
      await listTar({ file, strict: true, onReadEntry: readEntry });
    } catch (error) {
      throw new ArchiveError(`${file} cannot be read as a tar archive (${(error as Error).message}); nothing was imported`);
    }
    if (problems.length)
      throw new ArchiveError(
        `${file} was altered or damaged, or is not an ablate cache archive: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` and ${problems.length - 3} more` : ''}; nothing was imported`,
      );
    return commit(store, staging, staged, records, lockfiles);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Only zero blocks (what an export of nothing writes): node-tar's strict reader calls that no archive at all. */
function isEmptyTar(file: string): boolean {
  if (statSync(file).size > 64 * 1024) return false;
  let bytes = readFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch {
      return false;
    }
  }
  return bytes.length >= 1024 && bytes.length % 512 === 0 && bytes.every((b) => b === 0);
}

/** Why a record's text cannot be a record of `digest`, or undefined (then it is added to `records`). */
function recordProblem(text: string, digest: FingerprintDigest, records: Map<FingerprintDigest, RunRecord>): string | undefined {
  let record: RunRecord;
  try {
    record = JSON.parse(text) as RunRecord;
  } catch {
    return 'is not JSON';
  }
  if (record?.digest !== digest || typeof record.fingerprint !== 'object' || typeof record.outputs !== 'object')
    return 'is not a run record of its name';
  if (fingerprintDigest(record.fingerprint) !== digest) return "does not match its fingerprint's digest";
  try {
    checkManifest(record.outputs, 'it');
  } catch (error) {
    if (error instanceof UnsafePathError) return error.message;
    throw error;
  }
  if (manifestDigest(record.outputs) !== record.outputDigest) return 'does not match its outputs';
  records.set(digest, record);
  return undefined;
}

/** Moves verified objects in (objects before records, as the store writes them), then the records that may be used. */
function commit(
  store: CacheStore,
  staging: string,
  staged: ReadonlySet<Digest>,
  records: ReadonlyMap<FingerprintDigest, RunRecord>,
  lockfiles: readonly NamedLockfile[],
): ImportSummary {
  let objects = 0;
  let present = 0;
  let bytes = 0;
  for (const digest of staged) {
    const target = store.objectPath(digest);
    if (existsSync(target)) {
      present++;
      continue;
    }
    const source = join(staging, digest);
    bytes += statSync(source).size;
    mkdirSync(dirname(target), { recursive: true });
    renameSync(source, target);
    objects++;
  }
  const promised = new Map<string, { path: string; outputDigest: string }>();
  for (const { path, lock } of lockfiles)
    for (const entry of Object.values(lock.stages)) promised.set(entry.digest, { path, outputDigest: entry.outputDigest });
  const refused: string[] = [];
  let written = 0;
  for (const [digest, record] of records) {
    const lockEntry = promised.get(digest);
    if (lockEntry && lockEntry.outputDigest !== record.outputDigest) {
      refused.push(`${digest.slice(0, 12)}: other outputs than ${displayPath(lockEntry.path)} records for that fingerprint`);
      continue;
    }
    if (!Object.values(record.outputs).every((o) => existsSync(store.objectPath(o.digest)))) {
      refused.push(`${digest.slice(0, 12)}: its objects are neither in the archive nor in this cache`);
      continue;
    }
    store.writeRun(record);
    written++;
  }
  return { records: written, objects, present, bytes, refused };
}
