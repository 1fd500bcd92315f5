import { displayPath } from '../runner/fsutil.js';
import { existsSync, readFileSync } from 'node:fs';
import type { ReplicateGroup } from '../core/stats.js';
import { lockfilePathFor, readLockfile } from '../runner/lockfile.js';
import { byStage, pipelineHeader, lockfileResults, replicateGroups, type InstanceResult } from '../runner/results.js';
import { EXIT, flag, stringOption, UsageError, type Command } from './shared.js';
import { csvLine } from '../core/csv.js';
import { cellText, keyText, textTable } from './table.js';

export const showCommand: Command = {
  name: 'show',
  args: '<file>',
  describe: "every stage instance's varying params and headline metrics, from the lockfile (nothing runs)",
  options: [
    { flags: '--json', description: 'every instance with its variant, params and metrics, for scripts' },
    { flags: '--csv', description: 'one CSV row per instance' },
    { flags: '--sort <METRIC>', description: 'order each table by this metric, ascending (-METRIC: descending)' },
  ],
  async run(args) {
    const { pipelineFile, lockfilePath } = resultFiles(args.positionals[0]);
    const lockfile = readLockfile(lockfilePath);
    if (!lockfile) throw new UsageError(`no results yet: ${displayPath(lockfilePath)} does not exist (ablate run ${args.positionals[0]})`);
    const replicates = existsSync(pipelineFile) ? pipelineHeader(readFileSync(pipelineFile, 'utf8')).replicates : [];
    const results = lockfileResults(lockfile);
    const sort = stringOption(args, 'sort');
    if (flag(args, 'json')) {
      process.stdout.write(JSON.stringify(showJson(lockfile.pipeline, lockfilePath, results, replicates), null, 2) + '\n');
    } else if (flag(args, 'csv')) {
      process.stdout.write(showCsv(results));
    } else {
      const width = process.stdout.isTTY ? process.stdout.columns : undefined;
      process.stdout.write(showText(lockfile.pipeline, displayPath(lockfilePath), results, replicates, { sort, width }));
    }
    return EXIT.ok;
  },
};

/** `pipelines/x.yaml` or `pipelines/x.lock.json`: both name the same results. */
export function resultFiles(file: string | undefined): { pipelineFile: string; lockfilePath: string } {
  if (!file) throw new UsageError('missing pipeline FILE');
  if (file.endsWith('.lock.json')) return { pipelineFile: file.replace(/\.lock\.json$/, '.yaml'), lockfilePath: file };
  return { pipelineFile: file, lockfilePath: lockfilePathFor(file) };
}

interface TextOptions {
  readonly sort?: string | undefined;
  readonly width?: number | undefined;
}

/** A table per stage that has metrics, its replicate summary under it, and one line for the rest. */
export function showText(
  pipeline: string,
  lockfilePath: string,
  results: readonly InstanceResult[],
  replicates: readonly string[],
  options: TextOptions = {},
): string {
  const out: string[] = [`${pipeline} · ${lockfilePath} · ${results.length} instances`];
  const quiet: string[] = [];
  const omitted = new Set<string>();
  for (const [stage, instances] of byStage(results)) {
    const metricKeys = [...new Set(instances.flatMap((r) => Object.keys(r.metrics)))];
    if (metricKeys.length === 0) {
      quiet.push(instances.length > 1 ? `${stage} ×${instances.length}` : stage);
      continue;
    }
    const variantKeys = [...new Set(instances.flatMap((r) => Object.keys(r.variant)))];
    const paramKeys = [...new Set(instances.flatMap((r) => Object.keys(r.params)))];
    const keyColumns = variantKeys.length + paramKeys.length ? [...variantKeys, ...paramKeys] : ['id'];
    const rows = sortedBy(instances, options.sort, (r, m) => r.metrics[m]).map((r) => [
      ...(variantKeys.length + paramKeys.length
        ? [...variantKeys.map((k) => keyText(r.variant[k])), ...paramKeys.map((k) => keyText(r.params[k]))]
        : [r.id]),
      ...metricKeys.map((m) => cellText(r.metrics[m])),
    ]);
    const table = textTable([...keyColumns, ...metricKeys], rows, options.width, keyColumns.length);
    table.omitted.forEach((c) => omitted.add(c));
    out.push('', `${stage} (${instances[0]!.kind}, ${instances.length} instance${instances.length > 1 ? 's' : ''})`, table.text.trimEnd());
    const groups = replicateGroups(instances, replicates);
    if (groups) out.push('', `${stage}: mean ± 95 % CI over ${replicates.join(', ')}`, groupTable(groups, metricKeys, options).trimEnd());
  }
  if (quiet.length) out.push('', `without metrics: ${quiet.join(', ')}`);
  const warned = results.filter((r) => r.warnings.length);
  if (warned.length) out.push('', ...warned.flatMap((r) => r.warnings.map((w) => `⚠ ${r.id}: ${w}`)));
  if (omitted.size)
    out.push(
      `(${omitted.size} more columns do not fit the terminal: ${[...omitted].slice(0, 6).join(', ')}${omitted.size > 6 ? ', …' : ''}; --json or --csv has them all)`,
    );
  return out.join('\n') + '\n';
}

function groupTable(groups: readonly ReplicateGroup[], metricKeys: readonly string[], options: TextOptions): string {
  const keys = [...new Set(groups.flatMap((g) => Object.keys(g.variant)))];
  const rows = sortedBy(groups, options.sort, (g, m) => g.summaries[m]?.mean).map((g) => [
    ...keys.map((k) => keyText(g.variant[k])),
    String(g.runs.length),
    ...metricKeys.map((m) => {
      const s = g.summaries[m];
      return s ? (s.ci95 === null ? cellText(s.mean) : `${cellText(s.mean)} ± ${cellText(s.ci95)}`) : '';
    }),
  ]);
  return textTable(
    [...(keys.length ? keys : ['group']), 'n', ...metricKeys],
    keys.length ? rows : rows.map((r) => ['all', ...r]),
    options.width,
    keys.length + 1,
  ).text;
}

/** `--sort psnr` ascending, `--sort -psnr` descending; rows without the metric go last. */
function sortedBy<T>(rows: readonly T[], sort: string | undefined, value: (row: T, metric: string) => number | undefined): T[] {
  if (!sort) return [...rows];
  const descending = sort.startsWith('-');
  const metric = descending ? sort.slice(1) : sort;
  const key = (row: T) => value(row, metric) ?? Number.NaN;
  return [...rows].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    if (Number.isNaN(x) || Number.isNaN(y)) return Number(Number.isNaN(x)) - Number(Number.isNaN(y));
    return descending ? y - x : x - y;
  });
}

export function showJson(pipeline: string, lockfilePath: string, results: readonly InstanceResult[], replicates: readonly string[]) {
  return {
    pipeline,
    lockfile: lockfilePath,
    replicates,
    instances: results.map((r) => ({
      id: r.id,
      stage: r.stage,
      kind: r.kind,
      variant: r.variant,
      params: r.params,
      metrics: r.metrics,
      ...(r.warnings.length ? { warnings: r.warnings } : {}),
    })),
    aggregates: [...byStage(results)].flatMap(([stage, instances]) => {
      const groups = replicateGroups(instances, replicates);
      return groups ? [{ stage, over: replicates, groups }] : [];
    }),
  };
}

function showCsv(results: readonly InstanceResult[]): string {
  const variantKeys = [...new Set(results.flatMap((r) => Object.keys(r.variant)))];
  const paramKeys = [...new Set(results.flatMap((r) => Object.keys(r.params)))].filter((k) => !variantKeys.includes(k));
  const metricKeys = [...new Set(results.flatMap((r) => Object.keys(r.metrics)))];
  const full = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const lines = [
    csvLine(['id', 'stage', ...variantKeys, ...paramKeys, ...metricKeys]),
    ...results.map((r) =>
      csvLine([
        r.id,
        r.stage,
        ...variantKeys.map((k) => full(r.variant[k])),
        ...paramKeys.map((k) => full(r.params[k])),
        ...metricKeys.map((m) => full(r.metrics[m])),
      ]),
    ),
  ];
  return lines.join('\n') + '\n';
}
