import { displayPath } from '../runner/fsutil.js';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { historyFile, readHistory, type HistoryEntry } from '../runner/history.js';
import { readLockfile } from '../runner/lockfile.js';
import { pipelineHeader } from '../runner/results.js';
import { findWorkspaceRoot, workspaceAt } from '../runner/workspace.js';
import { EXIT, flag, integerOption, listOption, UsageError, type Command } from './shared.js';
import { resultFiles } from './show.js';
import { cellText, textTable } from './table.js';

export const logCommand: Command = {
  name: 'log',
  args: '<file>',
  describe: 'the runs of a pipeline: when, at which commit, what ran, and (--metric) how a metric moved',
  options: [
    { flags: '--metric <NAME>', description: 'a column per instance that records this metric (repeatable)', repeatable: true },
    { flags: '-n, --last <N>', description: 'only the last N runs' },
    { flags: '--json', description: 'the entries as recorded, one JSON array' },
  ],
  async run(args) {
    const { pipelineFile, lockfilePath } = resultFiles(args.positionals[0]);
    const name = pipelineName(pipelineFile, lockfilePath);
    const workspace = workspaceAt(findWorkspaceRoot(dirname(resolve(pipelineFile))));
    const last = args.options.last === undefined ? undefined : integerOption(args.options.last, '--last', 1);
    const entries = readHistory(workspace.historyDir, name).slice(-(last ?? Infinity));
    if (flag(args, 'json')) {
      process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
      return EXIT.ok;
    }
    const file = displayPath(historyFile(workspace.historyDir, name));
    process.stdout.write(logText(name, file, entries, listOption(args, 'metric')));
    return EXIT.ok;
  },
};

function pipelineName(pipelineFile: string, lockfilePath: string): string {
  const fromPipeline = existsSync(pipelineFile) ? pipelineHeader(readFileSync(pipelineFile, 'utf8')).name : undefined;
  const name = fromPipeline ?? readLockfile(lockfilePath)?.pipeline;
  if (!name) throw new UsageError(`${pipelineFile}: no pipeline of that name to show the runs of`);
  return name;
}

/** A row per run, oldest first; a `*` after the commit marks a tree with uncommitted edits. */
export function logText(pipeline: string, file: string, entries: readonly HistoryEntry[], metrics: readonly string[]): string {
  if (entries.length === 0) return `${pipeline}: no runs recorded yet (${file})\n`;
  const metricColumns = metrics.flatMap((metric) => {
    const ids = [...new Set(entries.flatMap((e) => Object.keys(e.metrics).filter((id) => metric in e.metrics[id]!)))];
    if (ids.length === 0) throw new UsageError(`no recorded run of ${pipeline} has a metric '${metric}'`);
    return ids.map((id) => ({ id, metric }));
  });
  const rows = entries.map((e) => [
    e.time.replace('T', ' ').replace(/\.\d+Z$/, ''),
    e.commit === null ? '(no git)' : `${e.commit.slice(0, 7)}${e.dirty ? '*' : ''}`,
    String(e.ran.length),
    String(e.restored.length),
    String(e.upToDate),
    e.failed.length ? `${e.failed.length} (${e.failed.join(', ')})` : '0',
    cellText(e.seconds),
    ...metricColumns.map(({ id, metric }) => cellText(e.metrics[id]?.[metric])),
  ]);
  const header = [
    'finished (UTC)',
    'commit',
    'ran',
    'restored',
    'up to date',
    'failed',
    'seconds',
    ...metricColumns.map((c) => `${c.id} ${c.metric}`),
  ];
  const note = entries.some((e) => e.dirty) ? '\n* the working tree had uncommitted edits\n' : '';
  return `${pipeline} · ${entries.length} run${entries.length > 1 ? 's' : ''} (${file})\n\n${textTable(header, rows).text}${note}`;
}
