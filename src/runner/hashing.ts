import crypto, { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * A SHA-256 content digest in hex. Branded so a digest of one thing can't be passed where
 * a path or a name is expected. SHA-256 because it is in node:crypto (no dependency),
 * collision-resistant (the cache trusts it), and with SHA-NI hashes ~1.4 GB/s here — see
 * `npm run bench` for the comparison with xxhash and BLAKE3; the stat cache means big
 * unchanged files are not hashed again anyway.
 */
export type Digest = string & { readonly __brand: 'Digest' };

/**
 * crypto.hash (Node ≥ 20.12) hashes in one call without building a Hash object: a no-op run
 * hashes several small JSON texts per stage, and one-shot took 1.9 ms per 1000 of them where
 * createHash took 3.2 ms.
 */
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string }).hash;

export function hashBytes(data: string | Uint8Array): Digest {
  return (oneShot ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex')) as Digest;
}

/** Files at least this big are streamed instead of read whole. */
const STREAM_THRESHOLD = 64 * 1024 * 1024;

export async function hashFile(path: string, size?: number): Promise<Digest> {
  if ((size ?? statSync(path).size) < STREAM_THRESHOLD) return hashBytes(await readFile(path));
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex') as Digest;
}

export function hashFileSync(path: string): Digest {
  return hashBytes(readFileSync(path));
}

/**
 * JSON with object keys sorted at every level and no whitespace, so equal values always
 * serialize (and hash) the same. Numbers use JavaScript's shortest round-trip form, as in
 * RFC 8785. Undefined properties are dropped, as JSON.stringify does. `known` holds the
 * canonical JSON of objects the caller has serialized before and guarantees unchanged.
 */
export function canonicalJson(value: unknown, known?: WeakMap<object, string>): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`cannot hash non-finite number ${value}`);
    return JSON.stringify(value) ?? 'null';
  }
  const serialized = known?.get(value);
  if (serialized !== undefined) return serialized;
  // Loops and string appends rather than entries/filter/sort/map/join: a no-op run hashes a
  // fingerprint per stage, and the intermediate arrays were most of its garbage.
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i) out += ',';
      // A hole in a sparse array stays empty, as Array.prototype.join wrote it before.
      if (!(i in value)) continue;
      const item: unknown = value[i];
      out += canonicalJson(item === undefined ? null : item, known);
    }
    return out + ']';
  }
  const record = value as Record<string, unknown>;
  // Default sort order is by UTF-16 code units, as `<` compares strings.
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += JSON.stringify(key) + ':' + canonicalJson(item, known);
  }
  return out + '}';
}

export function hashJson(value: unknown): Digest {
  return hashBytes(canonicalJson(value));
}

/** What identifies one version of a file on disk without reading it. */
export interface FileIdentity {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

export function identityOf(stats: Stats): FileIdentity {
  return { ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}
