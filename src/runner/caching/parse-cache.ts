import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil.js';
import type { Digest } from '../hashing.js';

/**
 * Pipeline files already parsed and checked against the pipeline schema, by digest of
 * (file text, schema). Parsing YAML dominates a no-op run of a big pipeline; a hit skips
 * it, and because the key is the content, a hit is never stale. Only files that made a
 * valid plan are stored, so a hit also means the YAML and schema checks passed.
 */
export class ParseCache {
  constructor(
    private readonly dir: string,
    /** Read-only callers (status, --dry-run) must not write into the workspace. */
    private readonly writable: boolean,
  ) {}

  get(key: Digest): unknown {
    try {
      return JSON.parse(readFileSync(join(this.dir, `${key}.json`), 'utf8')) as unknown;
    } catch {
      return undefined;
    }
  }

  set(key: Digest, value: unknown): void {
    if (this.writable) writeFileAtomic(join(this.dir, `${key}.json`), JSON.stringify(value));
  }
}
