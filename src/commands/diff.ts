import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { filesAtRevision, gitRoot, isRevision, resolveRevision, showAtRevision } from '../runner/git.js';
import { lockfilePathFor, parseLockfile } from '../runner/lockfile.js';
import { findLockfiles } from '../runner/maintenance.js';
import { lockfileResults, pipelineHeader, type InstanceResult } from '../runner/results.js';
import { diffResults, type InstanceDiff } from '../runner/results-diff.js';
import { EXIT, flag, stringOption, UsageError, type Command } from './shared.js';
import { cellText, keyText, textTable } from './table.js';

/** One side of a diff: a commit, or the files as they are now. */
export interface Side {
  /** `HEAD (5ecfe17)`, `working tree`. */
  readonly label: string;
  /** Undefined for the working tree. */
  readonly commit?: string;
}

export interface LockfileDiff {
  /** From the repository's top. */
  readonly lockfile: string;
  readonly instances: readonly InstanceDiff[];
  /** Results of each side, for views that draw them (diff --html). */
  readonly before: readonly InstanceResult[];
  readonly after: readonly InstanceResult[];
}

export const diffCommand: Command = {
  name: 'diff',
  args: '[revisions-and-files...]',
  describe: 'params and metrics of every instance between two git revisions (default: HEAD vs the working tree), from the lockfiles',
  options: [
    { flags: '--json', description: 'every instance: status, changed params, every metric with old, new, change and relative change' },
    {
      flags: '--html <OUT>',
      description: "an offline page: the changes, both revisions' metrics side by side and training curves overlaid (from the cache)",
    },
    {
      flags: '--md',
      description:
        'Markdown for a pull-request comment: the changed metrics with relative change; replicated stages as mean ± 95 % CI, and whether each change is outside it',
    },
  ],
  async run(args) {
    const root = gitRoot(process.cwd());
    if (!root) throw new UsageError('ablate diff compares git revisions: run it inside a git repository');
    const { revisions, files } = splitArguments(root, args.positionals);
    const [a, b] = [side(root, revisions[0] ?? 'HEAD'), revisions[1] === undefined ? { label: 'working tree' } : side(root, revisions[1])];
    const lockfiles = files.length
      ? files.map((f) => relative(root, resolve(f.endsWith('.lock.json') ? f : lockfilePathFor(f))))
      : allLockfiles(root, a, b);
    const diffs = lockfiles.map((lockfile) => diffLockfile(root, lockfile, a, b));
    const html = stringOption(args, 'html');
    if (html) {
      const { writeDiffPage } = await import('./diff-page.js');
      const missing = await writeDiffPage(html, root, a, b, diffs);
      console.log(`wrote ${html}${missing.length ? `; not in this cache, so not drawn: ${missing.join(', ')}` : ''}`);
    } else if (flag(args, 'md')) {
      const { diffMarkdown } = await import('./diff-markdown.js');
      process.stdout.write(diffMarkdown(a, b, diffs, (lockfile) => replicatesAt(root, lockfile, b, a)));
    } else if (flag(args, 'json')) {
      const json = { a, b, lockfiles: diffs.map((d) => ({ lockfile: d.lockfile, instances: d.instances })) };
      process.stdout.write(JSON.stringify(json, null, 2) + '\n');
    } else {
      process.stdout.write(diffText(a, b, diffs));
    }
    return EXIT.ok;
  },
};

/** Revisions are what git resolves to a commit; files are what exists or looks like a pipeline. */
function splitArguments(root: string, positionals: readonly string[]): { revisions: string[]; files: string[] } {
  const revisions: string[] = [];
  const files: string[] = [];
  for (const arg of positionals) {
    if (existsSync(arg) || /\.(ya?ml|lock\.json)$/.test(arg)) files.push(arg);
    else if (isRevision(root, arg)) revisions.push(arg);
    else throw new UsageError(`'${arg}' is neither a file nor a git revision`);
  }
  if (revisions.length > 2) throw new UsageError(`at most two revisions, got ${revisions.join(', ')}`);
  return { revisions, files };
}

function side(root: string, rev: string): Side {
  const commit = resolveRevision(root, rev);
  return { label: commit.startsWith(rev) ? commit.slice(0, 7) : `${rev} (${commit.slice(0, 7)})`, commit };
}

function allLockfiles(root: string, a: Side, b: Side): string[] {
  const at = (s: Side) => (s.commit ? filesAtRevision(root, s.commit, '.lock.json') : findLockfiles(root).map((f) => relative(root, f)));
  return [...new Set([...at(a), ...at(b)])].sort();
}

/** A file's text at one side (git's copy at a commit, the file on disk for the working tree); undefined where it does not exist. */
function textAt(root: string, s: Side, path: string): string | undefined {
  if (s.commit) return showAtRevision(root, s.commit, path);
  return existsSync(join(root, path)) ? readFileSync(join(root, path), 'utf8') : undefined;
}

function readSide(root: string, s: Side, lockfile: string): InstanceResult[] {
  const text = textAt(root, s, lockfile);
  return text === undefined ? [] : lockfileResults(parseLockfile(text, s.commit ? `${s.label}:${lockfile}` : lockfile));
}

/** The `replicates:` of the pipeline beside a lockfile, as the first side that has the pipeline file says. */
function replicatesAt(root: string, lockfile: string, ...sides: Side[]): string[] {
  const base = lockfile.replace(/\.lock\.json$/, '');
  for (const s of sides)
    for (const file of [`${base}.yaml`, `${base}.yml`]) {
      const text = textAt(root, s, file);
      if (text !== undefined) return pipelineHeader(text).replicates;
    }
  return [];
}

export function diffLockfile(root: string, lockfile: string, a: Side, b: Side): LockfileDiff {
  const before = readSide(root, a, lockfile);
  const after = readSide(root, b, lockfile);
  return { lockfile, instances: diffResults(before, after), before, after };
}

/**
 * What changed in one instance, as table rows (instance, what, old, new, change, relative):
 * added/removed, each changed param, each changed metric, or why it changed when no number
 * did. The instance is named on its first row only. The text and the HTML diff share them.
 */
export function changeRows(i: InstanceDiff): string[][] {
  const rows: string[][] = [];
  if (i.status === 'added' || i.status === 'removed') rows.push(['', i.status, '', '', '', '']);
  for (const p of i.params) rows.push(['', `param ${p.name}`, keyText(p.old), keyText(p.new), '', '']);
  for (const m of i.metrics) {
    if (i.status === 'changed' && m.change === 0) continue;
    const relativeText = m.relative === null ? '' : `${m.relative >= 0 ? '+' : ''}${cellText(m.relative * 100)} %`;
    rows.push(['', m.metric, cellText(m.old), cellText(m.new), m.change === null ? '' : cellText(m.change), relativeText]);
  }
  if (rows.length === 0)
    rows.push(['', i.outputsChanged ? 'outputs changed (no metric did)' : 'fingerprint changed, same outputs', '', '', '', '']);
  rows[0]![0] = i.id;
  return rows;
}

/** Per lockfile: a row per changed param and metric of each changed instance; the rest counted. */
export function diffText(a: Side, b: Side, diffs: readonly LockfileDiff[]): string {
  const out = [`ablate diff: ${a.label} → ${b.label}`];
  for (const d of diffs) {
    const changed = d.instances.filter((i) => i.status !== 'unchanged');
    out.push('', `${d.lockfile}`);
    if (changed.length === 0) {
      out.push(`  no change (${d.instances.length} instances)`);
      continue;
    }
    const rows = changed.flatMap(changeRows);
    const table = textTable(['instance', 'what', 'old', 'new', 'change', 'relative'], rows);
    out.push(
      ...table.text
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`),
    );
    const same = d.instances.length - changed.length;
    if (same) out.push(`  ${same} instance${same > 1 ? 's' : ''} unchanged`);
  }
  return out.join('\n') + '\n';
}
