import { existsSync, readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { displayPath } from '../runner/fsutil.js';
import { ParseCache } from '../runner/caching/parse-cache.js';
import { formatDiagnostic, type PipelineError } from '../runner/diagnostics.js';
import type { Reporter } from '../runner/logging/events.js';
import { PlainReporter } from '../runner/logging/plain.js';
import { loadPipeline, type Plan } from '../runner/plan.js';
import { findWorkspaceRoot, workspaceAt, type Workspace } from '../runner/workspace.js';

/** Exit codes, as documented in the README. */
export const EXIT = { ok: 0, failed: 1, invalid: 2, interrupted: 130 } as const;

/** A command line that cannot be carried out as written: exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * One option of a command, as data: cli.ts turns it into the parser's option and the shell
 * completion scripts list it, so neither depends on how the other is written.
 */
export interface OptionSpec {
  /** `--name`, `-j, --jobs <N>`, `--force [STAGES]` (an optional value), as commander writes them. */
  readonly flags: string;
  readonly description: string;
  /** Given several times, its values collect into a list (`--set a=1 --set b=2`). */
  readonly repeatable?: boolean;
  readonly choices?: readonly string[];
}

/** One subcommand: its arguments, options and what it does; `run` resolves to the exit code. */
export interface Command {
  readonly name: string;
  /** Positional arguments: `<file>` required, `[file]` optional, `[stages...]` the rest. */
  readonly args: string;
  readonly describe: string;
  readonly options: readonly OptionSpec[];
  run(args: Args): Promise<number>;
}

/** What was parsed: the positional arguments in order, and the options by camel-cased name. */
export interface Args {
  readonly positionals: readonly string[];
  readonly options: Readonly<Record<string, unknown>>;
}

export function stringOption(args: Args, name: string): string | undefined {
  const value = args.options[name];
  return value === undefined || value === true ? undefined : String(value);
}

export function flag(args: Args, name: string): boolean {
  return Boolean(args.options[name]);
}

export function listOption(args: Args, name: string): string[] {
  const value = args.options[name];
  return value === undefined ? [] : (Array.isArray(value) ? value : [value]).map(String);
}

/** An integer option's value, `fallback` when it is absent; a usage error below `min`. */
export function integerOption(value: unknown, flag: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} expects an integer ≥ ${min}, got '${String(value)}'`);
  return n;
}

export interface LoadOptions {
  readonly overrides?: readonly string[];
  /** Only commands that may write into the workspace remember parsed pipelines and plans. */
  readonly writeParseCache?: boolean;
  readonly ignoreUnknownOverrides?: boolean;
  readonly allowOutsideModules?: boolean;
  readonly onFullLoad?: () => void;
}

export async function load(file: string | undefined, options: LoadOptions = {}): Promise<Plan> {
  if (!file) throw new UsageError('missing pipeline FILE');
  const workspace = workspaceAt(findWorkspaceRoot(dirname(resolve(file))));
  return loadPipeline(file, {
    overrides: options.overrides ?? [],
    ignoreUnknownOverrides: options.ignoreUnknownOverrides ?? false,
    allowOutsideModules: options.allowOutsideModules ?? false,
    parseCache: new ParseCache(workspace.parsedDir, options.writeParseCache ?? false),
    onFullLoad: options.onFullLoad,
  });
}

/** The named pipeline files, or, with none named, every one in the workspace's pipelines/ folder (sorted). */
export function pipelineFiles(named: readonly string[]): string[] {
  if (named.length) return [...named];
  const dir = resolve(findWorkspaceRoot(process.cwd()), 'pipelines');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)) : [];
  if (!files.length) throw new UsageError(`no pipeline files in ${displayPath(dir)}`);
  return files.sort().map((f) => displayPath(resolve(dir, f)));
}

export function workspaceFor(plan: Plan): Workspace {
  return workspaceAt(findWorkspaceRoot(dirname(plan.file)));
}

/** Most stages a live display shows; bigger runs get the line-per-event log, which scales. */
const LIVE_DISPLAY_MAX_STAGES = 100;

export async function makeReporter(plan: Plan, plain: boolean): Promise<Reporter> {
  const live = !plain && process.stdout.isTTY && !process.env.CI && plan.instances.length <= LIVE_DISPLAY_MAX_STAGES;
  if (!live) return new PlainReporter(process.stdout);
  const { ListrReporter } = await import('../runner/logging/listr.js');
  return new ListrReporter(process.stdout);
}

export function printDiagnostics(error: PipelineError): void {
  const n = error.diagnostics.length;
  for (const d of error.diagnostics) console.error(formatDiagnostic(d, error.sourceText));
  console.error(`\n${n} error${n === 1 ? '' : 's'}; nothing was run.`);
}

/** Options several commands share. */
export const setOption: OptionSpec = {
  flags: '--set <NAME=VALUE>',
  description: 'override a pipeline param (repeatable); the value is read as YAML',
  repeatable: true,
};
export const allowOutsideOption: OptionSpec = {
  flags: '--allow-outside-modules',
  description: 'import stage modules from outside the workspace (their top level runs)',
};
