import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findUp } from './fsutil.js';

/**
 * The few git facts ablate reads: a file at a revision (`git show REV:path`, no checkout),
 * the commit a run started from and whether the tree had edits. Every call is a plain git
 * command, so a repository git can read is one ablate can read; outside one, they say so.
 */

export class GitError extends Error {
  override readonly name = 'GitError';
}

function git(cwd: string, args: readonly string[]): string {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new GitError(`git ${args.join(' ')}: ${stderr.split('\n')[0] || (error as Error).message}`);
  }
}

/** The repository's top folder, or undefined outside a git work tree (or without git). */
export function gitRoot(cwd: string): string | undefined {
  try {
    return git(cwd, ['rev-parse', '--show-toplevel']).trim();
  } catch {
    return undefined;
  }
}

/** The full commit id a revision names (`HEAD~1`, a branch, a tag); a GitError if none. */
export function resolveRevision(root: string, rev: string): string {
  return git(root, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]).trim();
}

/** Whether `rev` names a commit. */
export function isRevision(root: string, rev: string): boolean {
  try {
    resolveRevision(root, rev);
    return true;
  } catch {
    return false;
  }
}

/** A file's text at a revision; undefined where the revision has no such file. */
export function showAtRevision(root: string, rev: string, pathFromRoot: string): string | undefined {
  const exists = git(root, ['ls-tree', '--name-only', rev, '--', pathFromRoot]).trim();
  return exists ? git(root, ['show', `${rev}:${pathFromRoot}`]) : undefined;
}

/** Every path at a revision that ends in `suffix` (paths from the repository's top). */
export function filesAtRevision(root: string, rev: string, suffix: string): string[] {
  return git(root, ['ls-tree', '-r', '--name-only', rev])
    .split('\n')
    .filter((p) => p.endsWith(suffix));
}

/** HEAD's commit and whether tracked files differ from it; undefined outside a repository. */
export function headState(cwd: string): { commit: string; dirty: boolean } | undefined {
  if (!mayBeInRepository(cwd)) return undefined;
  // One git process instead of three (top folder, HEAD, status): every run records this.
  let status: string;
  try {
    status = git(cwd, ['status', '--porcelain=v2', '--branch', '--untracked-files=no']);
  } catch {
    // Not a git work tree, or no git.
    return undefined;
  }
  const commit = /^# branch\.oid ([0-9a-f]{40,64})$/m.exec(status)?.[1];
  // `(initial)`: a repository without a commit yet.
  if (!commit) return undefined;
  return { commit, dirty: status.split('\n').some((line) => line !== '' && !line.startsWith('#')) };
}

/**
 * Whether git could find a repository from `cwd`: a `.git` (folder or file) here or above, or
 * GIT_DIR set. Saves starting git where it can only say "not a git repository": 7 ms of
 * every run outside a repository (measured in a no-op run of 1000 stages).
 */
function mayBeInRepository(cwd: string): boolean {
  return Boolean(process.env.GIT_DIR) || findUp(cwd, (dir) => existsSync(join(dir, '.git'))) !== undefined;
}
