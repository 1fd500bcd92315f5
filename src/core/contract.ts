import type { Static, TObject } from '@sinclair/typebox';

/**
 * The contract every stage kind implements, built-in or user-written (`uses: ./my-stage.ts`).
 * A stage module's default export is a StageKind. Keep a module's top level light (schemas,
 * small helpers): the runner imports it to validate params; heavy libraries belong in a
 * dynamic `import()` inside `run`.
 */

export type Scalar = string | number | boolean;

/** The matrix values that name one instance of a stage, e.g. { latent_dim: 2, beta: 4 }. */
export type Variant = Readonly<Record<string, Scalar>>;

export interface InputDecl {
  readonly description: string;
  /** The stage can run without it. */
  readonly optional?: boolean;
  /** Expects a gather reference (`stage[*]`): every variant of a matrix stage at once. */
  readonly gather?: boolean;
}

/** Output name → path relative to the stage's output directory; a trailing '/' marks a directory. */
export type OutputPaths = Readonly<Record<string, string>>;

/** One variant of a gathered input. */
export interface GatheredInput {
  readonly id: string;
  readonly variant: Variant;
  readonly path: string;
}

/**
 * An upstream stage instance, as the plan defines it. Nothing about how a run went (which
 * stages ran or came from the cache, how long they took): an output must be a function of the
 * fingerprint alone, and run history is not in it.
 */
export interface ProvenanceEntry {
  readonly id: string;
  readonly stage: string;
  readonly kind: string;
  readonly variant: Variant;
  /** Instance ids it depends on. */
  readonly dependsOn: readonly string[];
}

export interface StageContext<P> {
  /** Instance id, e.g. `vae[latent_dim=2,beta=4]`. */
  readonly stageId: string;
  readonly variant: Variant;
  readonly params: P;
  /** Empty directory the stage writes its outputs into; moved into the cache only if `run` resolves. */
  readonly outDir: string;
  /** Directory of the pipeline file: where relative paths in params are resolved. */
  readonly pipelineDir: string;
  /** Every bound input: a path, or the variants of a gathered input. */
  readonly inputs: Readonly<Record<string, string | readonly GatheredInput[]>>;
  /** Path of a single (non-gathered) input: the upstream output directory or named output. */
  input(name: string): string;
  /** Whether an optional input was bound. */
  hasInput(name: string): boolean;
  /** Every variant of a gathered input, in the upstream matrix's order. */
  gather(name: string): readonly GatheredInput[];
  /** Seed of this instance: the `seed` param when there is one, else derived from the stage id. */
  readonly seed: number;
  /** Uniform [0, 1) generator seeded with `seed`. */
  readonly random: () => number;
  /** Shown under the stage's line in the progress display (e.g. `epoch 3/15 loss 152.3`). */
  progress(message: string, fraction?: number): void;
  /** Appended to the stage's log file (.ablate/logs/…). */
  log(line: string): void;
  /** That log file, for stages that stream a child process's output into it. */
  readonly logFile: string;
  /** Aborted on Ctrl-C or when the run is cancelled; long loops should check it. */
  readonly signal: AbortSignal;
  /** Every instance this one depends on, directly or not — for reports. */
  readonly provenance: readonly ProvenanceEntry[];
  /** The same instances as an indented text tree of their dependencies, as `ablate dag` draws it. */
  readonly provenanceTree: string;
  /**
   * Every regular file below `dir` (an input, say), as '/'-separated paths relative to it, sorted.
   * The runner's own walk, so stages need not import runner code (whose every refactor would
   * then change their code digest).
   */
  listFiles(dir: string): readonly string[];
  /** Threads the stage runs on: its kind's `threads(params)`, 1 if it has none. */
  readonly threads: number;
}

/**
 * Schema formats the runner acts on. A string param (or an array of them) with
 * `format: 'path'` names a file or directory relative to the pipeline: its content digest
 * enters the fingerprint, so editing the data behind it reruns the stage. A string param with
 * `format: 'shell-command'` is code for /bin/sh: `${params.NAME}` and `${matrix.KEY}` in it
 * are never pasted into its text but become `${ABLATE_PARAM_NAME}` / `${ABLATE_MATRIX_KEY}`,
 * whose values the runner puts into the stage's `vars` param (so they are fingerprinted), for
 * the kind to export as environment variables.
 */
export const PATH_FORMAT = 'path';
export const SHELL_COMMAND_FORMAT = 'shell-command';

export interface StageKind<S extends TObject = TObject> {
  readonly name: string;
  readonly description: string;
  /** JSON Schema (TypeBox) of the `with:` params; also their TypeScript type. */
  readonly params: S;
  /** Declared inputs, or 'any' for kinds that take whatever the pipeline binds (shell). */
  readonly inputs: Readonly<Record<string, InputDecl>> | 'any';
  /** Outputs this instance will write, given its params. */
  outputs(params: Static<S>): OutputPaths;
  /** Path (within the output directory) of a flat JSON object of headline numbers, recorded in the lockfile. */
  metrics?(params: Static<S>): string | undefined;
  /**
   * Facts about this machine that change the result (e.g. which numeric backend will run it),
   * resolved before the stage runs so a cache entry made elsewhere is not reused by mistake.
   */
  environment?(params: Static<S>): Promise<Readonly<Record<string, string>>>;
  /**
   * Threads its run uses (ctx.threads), from its params alone. Multithreaded kernels split
   * their sums by thread count, so the count changes the bytes: it must be a fact the
   * fingerprint sees (a param), never whatever cores happen to be free. The runner holds
   * that many slots while the stage runs, so parallel stages never oversubscribe the cores.
   */
  threads?(params: Static<S>): number;
  run(ctx: StageContext<Static<S>>): Promise<void>;
}

/** Identity function that gives a stage module its types from its params schema. */
export function defineStage<S extends TObject>(kind: StageKind<S>): StageKind<S> {
  return kind;
}

/**
 * A failure the stage explains fully in its message (a command's exit code, a bad input
 * file): shown to the user without a stack trace. Any other error is logged with its stack.
 */
export class StageError extends Error {
  override readonly name = 'StageError';
}
