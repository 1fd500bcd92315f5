import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import { defineStage, PATH_FORMAT, SHELL_COMMAND_FORMAT, StageError } from '../core/contract.js';

/**
 * A command, like a DVC cmd stage. It runs with /bin/sh in the pipeline's directory with:
 *   $ABLATE_OUT          the directory to write outputs into (declared in `outs`)
 *   $ABLATE_IN_<NAME>    the path of each input (gathered inputs: paths separated by newlines)
 *   $ABLATE_PARAM_<NAME> / $ABLATE_MATRIX_<KEY>  each `${params.NAME}` / `${matrix.KEY}` the
 *                        command refers to: the runner rewrites the reference into this
 *                        variable, so a value is never parsed by the shell as code
 * Files it reads from the workspace are declared in `deps`, so editing them reruns it.
 */
export default defineStage({
  name: 'shell',
  description: 'Run a shell command with declared dependency files and outputs.',
  params: Type.Object(
    {
      cmd: Type.String({
        minLength: 1,
        format: SHELL_COMMAND_FORMAT,
        description:
          'Command run by /bin/sh -c in the pipeline directory. ${params.NAME} and ${matrix.KEY} become the variables ${ABLATE_PARAM_NAME} and ${ABLATE_MATRIX_KEY}: quote them ("${params.NAME}") as any shell variable.',
      }),
      deps: Type.Optional(
        Type.Array(Type.String({ minLength: 1, format: PATH_FORMAT }), {
          description:
            'Workspace files or directories the command reads (relative to the pipeline file); their contents are fingerprinted.',
        }),
      ),
      outs: Type.Optional(
        Type.Array(Type.String({ minLength: 1, pattern: '^[^/]' }), {
          description: "Outputs the command writes under $ABLATE_OUT; each must exist afterwards. A trailing '/' marks a directory.",
        }),
      ),
      metrics: Type.Optional(Type.String({ description: 'A flat JSON file of numbers under $ABLATE_OUT, recorded in the lockfile.' })),
      env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String())),
      vars: Type.Optional(
        Type.Record(Type.String({ pattern: '^ABLATE_(PARAM|MATRIX)_[A-Za-z0-9_]+$' }), Type.String(), {
          description: 'Filled by the runner from the ${params.*} / ${matrix.*} references in cmd; exported as environment variables.',
        }),
      ),
    },
    { additionalProperties: false },
  ),
  inputs: 'any',
  outputs: (params) => Object.fromEntries((params.outs ?? []).map((out) => [out.replace(/\/$/, ''), out])),
  metrics: (params) => params.metrics,
  async run(ctx) {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...ctx.params.env,
      ...ctx.params.vars,
      ABLATE_OUT: ctx.outDir,
      ABLATE_STAGE: ctx.stageId,
    };
    for (const [name, value] of Object.entries(ctx.inputs)) {
      env[`ABLATE_IN_${name.toUpperCase()}`] = typeof value === 'string' ? value : value.map((v) => v.path).join('\n');
    }
    // The command writes straight into the log (opened for appending), not through pipes this
    // process would copy from: a third less CPU per command here (0.64 ms against 1.0 ms), and
    // the stage ends when the command does, even if something it left running holds the log open.
    const log = openSync(ctx.logFile, 'a');
    await new Promise<void>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', ctx.params.cmd], {
        cwd: ctx.pipelineDir,
        env,
        stdio: ['ignore', log, log],
        // Own process group, so an abort stops the command and everything it started.
        detached: true,
      });
      const onAbort = () => {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        ctx.signal.removeEventListener('abort', onAbort);
        if (code === 0) resolve();
        else reject(new StageError(signal ? `command killed by ${signal}` : `command exited with code ${code}`));
      });
    }).finally(() => closeSync(log));
  },
});
