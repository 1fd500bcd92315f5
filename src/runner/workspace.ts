import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findUp } from './fsutil.js';

/** Where ablate keeps its state for one project. */
export interface Workspace {
  /** The project root: artifacts/ and .ablate/ live here. */
  readonly root: string;
  readonly cacheDir: string;
  readonly logsDir: string;
  readonly locksDir: string;
  /** Stage outputs being written; moved into the cache only on success. */
  readonly tmpDir: string;
  readonly statCacheFile: string;
  /** Validated pipeline texts and expanded plans (see ParseCache). */
  readonly parsedDir: string;
  /** One JSON line per run and pipeline (see history.ts). */
  readonly historyDir: string;
}

/**
 * The nearest directory at or above `start` that has `.ablate/`, `.git` or `package.json`
 * (the project root, like DVC's repo root); `start` itself if none does.
 */
export function findWorkspaceRoot(start: string): string {
  return findUp(start, (dir) => ['.ablate', '.git', 'package.json'].some((marker) => existsSync(join(dir, marker)))) ?? resolve(start);
}

export function workspaceAt(root: string): Workspace {
  const state = join(root, '.ablate');
  return {
    root,
    // A team's shared store (a mounted path) replaces the per-project one for every command.
    cacheDir: process.env.ABLATE_CACHE_DIR ? resolve(process.env.ABLATE_CACHE_DIR) : join(state, 'cache'),
    logsDir: join(state, 'logs'),
    locksDir: join(state, 'locks'),
    tmpDir: join(state, 'tmp'),
    statCacheFile: join(state, 'stat-cache.json'),
    parsedDir: join(state, 'parsed'),
    historyDir: join(state, 'history'),
  };
}
