import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil.js';
import type { Digest } from '../hashing.js';

/**
 * Work on pipeline files remembered by content digest, as JSON files in .ablate/parsed/: the
 * parsed value of a text already checked against the pipeline schema, and the expanded plan
 * (plan-cache.ts) of a text with its options. Parsing YAML, then expanding and checking every
 * instance, dominated a no-op run of a big pipeline; because each key is a digest of what the
 * entry is computed from, a hit is never stale. Only files that made a valid plan are stored,
 * so a hit also means every check passed.
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
