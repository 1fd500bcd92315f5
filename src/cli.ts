/**
 * The `ablate` command line: commander parses (per-command --help, --version, did-you-mean for
 * commands, typed options); each command lives in src/commands/ as data plus a `run`. This file
 * builds the parser from them, prints completion scripts from the same data, and turns every
 * error into one line and an exit code. commander rather than yargs: yargs gave completion for
 * free but added about 100 ms to every start, and the CLI is on the path of every no-op run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command as Program, CommanderError, Option } from 'commander';
import { completionScript } from './commands/completion.js';
import { normalizeForce, runCommand } from './commands/run.js';
import { EXIT, printDiagnostics, UsageError, type Command } from './commands/shared.js';
import { statusCommand } from './commands/status.js';
import { packageRoot } from './package-root.js';
import { PipelineError } from './runner/diagnostics.js';
import { WorkspaceBusyError } from './runner/maintenance.js';
import { UnknownTargetError } from './runner/scheduler.js';

export { EXIT } from './commands/shared.js';

/**
 * Every command, in the order help lists them. A module is loaded only when its command runs
 * (help, completion and a mistyped name load them all): `run` and `status`, on the path of
 * every no-op, are loaded with this file, and the rest stay out of their start-up, with
 * what they bring (`show`'s statistics package alone is 138 KB of the bundle).
 */
const COMMANDS: Readonly<Record<string, () => Command | Promise<Command>>> = {
  run: () => runCommand,
  status: () => statusCommand,
  show: async () => (await import('./commands/show.js')).showCommand,
  diff: async () => (await import('./commands/diff.js')).diffCommand,
  log: async () => (await import('./commands/log.js')).logCommand,
  dag: async () => (await import('./commands/dag.js')).dagCommand,
  validate: async () => (await import('./commands/validate.js')).validateCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  gc: async () => (await import('./commands/gc.js')).gcCommand,
  cache: async () => (await import('./commands/cache.js')).cacheCommand,
  worker: async () => (await import('./commands/worker.js')).workerCommand,
  doctor: async () => (await import('./commands/doctor.js')).doctorCommand,
};

const isCommandName = (name: string | undefined): name is string => name !== undefined && Object.hasOwn(COMMANDS, name);

/** The commands the parser needs for this command line: the one named, or all of them. */
async function commandsFor(name: string | undefined): Promise<Command[]> {
  if (isCommandName(name)) return [await COMMANDS[name]!()];
  return Promise.all(Object.values(COMMANDS).map((load) => load()));
}

const EPILOGUE = '\nExit codes: 0 ok, 1 a stage failed or verify found a mismatch, 2 invalid pipeline or usage, 130 interrupted.';

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The parser; `done` receives the exit code of the command that ran. */
function parser(commands: readonly Command[], done: (code: number) => void): Program {
  const program = new Program('ablate')
    .description('YAML pipelines of ML stages, run incrementally with a content-addressed cache')
    .version(version(), '-V, --version')
    .exitOverride()
    .showSuggestionAfterError()
    .addHelpText('after', EPILOGUE);
  for (const spec of commands) {
    const command = program
      .command(`${spec.name} ${spec.args}`.trim())
      .description(spec.describe)
      .exitOverride()
      .addHelpText('after', EPILOGUE);
    for (const o of spec.options) {
      const option = new Option(o.flags, o.description);
      if (o.choices) option.choices([...o.choices]);
      if (o.repeatable) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
      command.addOption(option);
    }
    command.action(async (...received: unknown[]) => {
      const self = received[received.length - 1] as Program;
      done(await spec.run({ positionals: self.args, options: self.opts() }));
    });
  }
  program
    .command('completion')
    .argument('[shell]', 'bash or zsh', 'bash')
    .description('print a completion script: ablate completion bash >> ~/.bashrc (or zsh >> ~/.zshrc)')
    .exitOverride()
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`completion: bash or zsh, not '${shell}'`);
      process.stdout.write(completionScript(shell, commands));
      done(EXIT.ok);
    });
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  let code: number = EXIT.ok;
  const command = argv.find((a) => !a.startsWith('-'));
  const program = parser(await commandsFor(command), (c) => (code = c));
  if (!argv.length) {
    process.stdout.write(program.helpInformation());
    return EXIT.invalid;
  }
  try {
    await program.parseAsync(normalizeForce(argv), { from: 'user' });
    return code;
  } catch (error) {
    // commander has printed its own message (unknown option, missing argument, "Did you mean").
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.invalid;
    if (error instanceof PipelineError) {
      printDiagnostics(error);
      return EXIT.invalid;
    }
    if (error instanceof UsageError || error instanceof UnknownTargetError || (error instanceof Error && error.name === 'LockfileError')) {
      const known = isCommandName(command);
      // The --help hint only where the command line itself is wrong.
      const hint = known && error instanceof UsageError ? ` (ablate ${command} --help)` : '';
      console.error(`ablate${known ? ` ${command}` : ''}: ${error.message}${hint}`);
      return EXIT.invalid;
    }
    if (
      error instanceof WorkspaceBusyError ||
      (error instanceof Error && (error.name === 'UnsafePathError' || error.name === 'StaleBundleError' || error.name === 'ArchiveError'))
    ) {
      console.error(`ablate ${command}: ${error.message}`);
      return EXIT.failed;
    }
    if (error instanceof Error && error.name === 'RedisUnreachableError') {
      console.error(`ablate: ${error.message}; nothing was run`);
      return EXIT.failed;
    }
    // Anything else is ablate's own fault: one line, and the stack on request.
    if (process.env.ABLATE_DEBUG === '1') throw error;
    console.error(
      `ablate${command ? ` ${command}` : ''}: ${error instanceof Error ? error.message : String(error)} (ABLATE_DEBUG=1 shows where)`,
    );
    return EXIT.failed;
  }
}
