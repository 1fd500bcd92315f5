import { readFileSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SHELL_COMMAND_FORMAT, type OutputPaths, type Scalar, type StageKind, type Variant } from '../core/contract.js';
import type { ParseCache } from './caching/parse-cache.js';
import { planCacheKey, recallPlan, rememberPlan, type PlanCacheInputs, type RecalledPlan } from './caching/plan-cache.js';
import { builtinKindNames, loadStageKind, resolveStageRef, type StageRef } from '../core/registry.js';
import { findCycle, topologicalOrder, type DependencyGraph } from './dag.js';
import { PipelineError, type Diagnostic } from './diagnostics.js';
import { hashBytes, hashJson, type Digest } from './hashing.js';
import { interpolate, interpolateShellCommand, type InterpolationError, type InterpolationScope } from './interpolate.js';
import { pathParamValues, propertiesWithFormat } from './param-formats.js';
import { PipelineSchema, type PipelineSpec, type StageSpec } from './pipeline-schema.js';
import { isInside } from './caching/confine.js';
import { schemaDiagnostics } from './schema-check.js';
import { yaml } from './lazy-packages.js';
import { YamlSource } from './source.js';
import { nearestName } from './suggest.js';
import { findWorkspaceRoot } from './workspace.js';

/** How an instance receives one input. */
export type InputBinding =
  | { readonly type: 'single'; readonly from: string; readonly output?: string }
  | { readonly type: 'gather'; readonly from: readonly { readonly id: string; readonly variant: Variant }[]; readonly output?: string };

/** One concrete unit of work: a stage, or one variant of a matrix stage. */
export interface StageInstance {
  /** `stage` or `stage[key=value,…]`; unique in the plan. */
  readonly id: string;
  readonly stage: string;
  readonly variant: Variant;
  readonly ref: StageRef;
  readonly kind: StageKind;
  /** `with:` after interpolation and schema defaults. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, InputBinding>>;
  readonly outputs: OutputPaths;
  readonly metricsFile: string | undefined;
  /** Absolute paths of the files and directories its params name (`format: 'path'`: shell `deps`, a dataset's `path`). */
  readonly fileDeps: readonly string[];
  /** Where outputs are materialized, relative to the workspace: artifacts/<pipeline>/<stage>[/<variant>]. */
  readonly artifactDir: string;
  /** Threads its run uses (its kind's `threads(params)`, else 1): the runner holds that many slots. */
  readonly threads: number;
  /** Extra attempts after a failure (`retries:`). Not part of the fingerprint: it cannot change a result. */
  readonly retries: number;
}

export interface Plan {
  readonly name: string;
  readonly file: string;
  readonly dir: string;
  readonly source: YamlSource;
  readonly params: Readonly<Record<string, unknown>>;
  /** Matrix keys declared as replicates (`replicates: [seed]`): views aggregate over them. */
  readonly replicates: readonly string[];
  /** Stage names, dependencies first. */
  readonly stageNames: readonly string[];
  /** Instances, dependencies first. */
  readonly instances: readonly StageInstance[];
  readonly byId: ReadonlyMap<string, StageInstance>;
  /** Instance id → ids it depends on. */
  readonly graph: DependencyGraph;
}

export interface InputRef {
  readonly stage: string;
  readonly gather: boolean;
  /** `stage[key=value,…]`: only the upstream variants with these values (compared as text). */
  readonly select?: Readonly<Record<string, string>>;
  readonly output?: string;
}

/** `stage`, `stage[*]`, `stage[key=value,…]`, each optionally followed by `.output`. */
export function parseInputRef(text: string): InputRef {
  const m = /^([A-Za-z_][A-Za-z0-9_-]*)(?:\[([^\]]*)\])?(?:\.(.+))?$/.exec(text);
  if (!m) throw new Error(`invalid input reference '${text}'`);
  const bracket = m[2];
  const select =
    bracket && bracket !== '*' ? Object.fromEntries(bracket.split(',').map((pair) => pair.split('=', 2) as [string, string])) : undefined;
  return { stage: m[1]!, gather: bracket === '*', ...(select ? { select } : {}), ...(m[3] ? { output: m[3] } : {}) };
}

/** Identifies one fan-out reference: the same stage may be bound twice with different selections. */
function refKey(ref: InputRef): string {
  return ref.select
    ? `${ref.stage}[${Object.entries(ref.select)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}]`
    : ref.stage;
}

function matchesSelection(variant: Variant, select: Readonly<Record<string, string>> | undefined): boolean {
  return !select || Object.entries(select).every(([k, v]) => Object.hasOwn(variant, k) && String(variant[k]) === v);
}

/** A selected key is fixed by the reference, so the consumer does not inherit it as a matrix key. */
function withoutSelected(variant: Variant, select: Readonly<Record<string, string>> | undefined): Variant {
  return select ? Object.fromEntries(Object.entries(variant).filter(([k]) => !Object.hasOwn(select, k))) : variant;
}

/** Renders a variant as the `key=value,…` used in ids and artifact folder names. */
export function variantLabel(variant: Variant): string {
  return Object.entries(variant)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
}

export function instanceId(stage: string, variant: Variant): string {
  return Object.keys(variant).length ? `${stage}[${variantLabel(variant)}]` : stage;
}

/**
 * The inverse of instanceId, for readers that have only ids (a lockfile from another git
 * revision, whose pipeline may have changed). Matrix keys are identifiers, so a value ends
 * where `,key=` begins; values read back as the scalars they print as (`4` → 4, `true` → true).
 */
export function parseInstanceId(id: string): { stage: string; variant: Variant } {
  const open = id.indexOf('[');
  if (open < 0 || !id.endsWith(']')) return { stage: id, variant: {} };
  const pairs = id.slice(open + 1, -1).split(/,(?=[A-Za-z_][A-Za-z0-9_]*=)/);
  const variant: Record<string, Scalar> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 0) return { stage: id, variant: {} };
    variant[pair.slice(0, eq)] = scalarFromText(pair.slice(eq + 1));
  }
  return { stage: id.slice(0, open), variant };
}

function scalarFromText(text: string): Scalar {
  if (text === 'true' || text === 'false') return text === 'true';
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) && String(n) === text ? n : text;
}

/** Longest file name (in bytes) ext4, XFS and APFS take. */
const MAX_FOLDER_BYTES = 255;

/**
 * Folder-safe: keeps the readable `latent_dim=2,beta=4`, escapes what a filesystem would
 * misread. One path segment whatever the values: '/' is escaped, and it starts with `key=`,
 * so it is never `.` or `..`.
 */
function variantFolder(variant: Variant): string {
  return variantLabel(variant).replace(/[/\\:*?"<>|\0]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface LoadOptions {
  /** `--set NAME=VALUE` from the command line; the value is read as YAML (so `5` is a number). */
  readonly overrides?: readonly string[];
  /** Where already-validated pipeline texts are remembered; without one, every load parses. */
  readonly parseCache?: ParseCache;
  /** Skip `--set` names this pipeline has no param for (running several pipelines at once). */
  readonly ignoreUnknownOverrides?: boolean;
  /**
   * Import stage modules that lie outside the workspace (`uses: ../../elsewhere/stage.mjs`).
   * Off by default: importing a module runs its top-level code, already during `validate`.
   * Also ABLATE_ALLOW_OUTSIDE_MODULES=1.
   */
  readonly allowOutsideModules?: boolean;
  /** Most instances one stage may expand to (default DEFAULT_MAX_INSTANCES, or ABLATE_MAX_INSTANCES). */
  readonly maxInstances?: number;
  /**
   * Called when the plan cannot be recalled (a new or edited pipeline, changed code, other
   * `--set` values), before the slow path of parsing and planning: a run that gets here
   * usually has stages to run, and can start what they need meanwhile.
   */
  readonly onFullLoad?: () => void;
}

/**
 * A matrix is a cartesian product: three axes of 100 values are a million instances, which
 * take a minute and a gigabyte to plan before anything runs. Past this, a typo is likelier
 * than an intent, so the plan stops and says how big it would be.
 */
export const DEFAULT_MAX_INSTANCES = 10_000;

let schemaDigestMemo: Digest | undefined;
function schemaDigest(): Digest {
  return (schemaDigestMemo ??= hashJson(PipelineSchema));
}

/**
 * Reads, validates and expands a pipeline file into a plan of stage instances.
 * Throws PipelineError with every problem found, each at file:line:col.
 */
export async function loadPipeline(file: string, options: LoadOptions = {}): Promise<Plan> {
  const absFile = resolve(file);
  let text: string;
  try {
    text = readFileSync(absFile, 'utf8');
  } catch (error) {
    throw new PipelineError([{ file, keyPath: '', message: `cannot read pipeline file: ${(error as Error).message}` }]);
  }
  try {
    const source = new YamlSource(file, text);
    const cache = options.parseCache;
    const workspaceRoot = realpathSync(findWorkspaceRoot(dirname(absFile)));
    const planKey = cache && planCacheKey(planCacheInputs(text, absFile, workspaceRoot, options));
    const recalled = planKey && (await recallPlan(cache, planKey));
    if (recalled) return assemblePlan(recalled, source, dirname(absFile), absFile);
    options.onFullLoad?.();
    const key = cache && hashJson([hashBytes(text), schemaDigest()]);
    let value = key && cache.get(key);
    const hit = value !== undefined;
    if (!hit) {
      const parsed = source.parseValue();
      if (parsed.diagnostics.length) throw new PipelineError(parsed.diagnostics);
      const shapeErrors = schemaDiagnostics(source, PipelineSchema, parsed.value);
      if (shapeErrors.length) throw new PipelineError(shapeErrors);
      value = parsed.value;
    }
    const plan = await buildPlan(value as PipelineSpec, source, dirname(absFile), absFile, workspaceRoot, options);
    // Remembered only once the whole pipeline is valid: invalid input leaves no trace.
    if (key && !hit) cache.set(key, value);
    if (planKey) rememberPlan(cache, planKey, plan);
    return plan;
  } catch (error) {
    if (error instanceof PipelineError) error.sourceText = text;
    throw error;
  }
}

async function buildPlan(
  spec: PipelineSpec,
  source: YamlSource,
  dir: string,
  file: string,
  workspaceRoot: string,
  options: LoadOptions,
): Promise<Plan> {
  const diagnostics: Diagnostic[] = [];
  const params = applyOverrides(spec.params ?? {}, options.overrides ?? [], source, diagnostics, options.ignoreUnknownOverrides ?? false);
  const stageNames = Object.keys(spec.stages);

  // Kinds: resolve every `uses:` and import each module once (only modules inside the workspace).
  const allowOutside = allowsOutsideModules(options);
  const kinds = new Map<string, { ref: StageRef; kind: StageKind }>();
  await Promise.all(
    stageNames.map(async (name) => {
      const uses = spec.stages[name]!.uses;
      const ref = resolveStageRef(uses, dir);
      if (!ref) {
        const isPath = uses.startsWith('.') || uses.startsWith('/');
        const suggestion = isPath ? undefined : nearestName(uses, builtinKindNames);
        diagnostics.push(
          source.diagnostic(
            ['stages', name, 'uses'],
            isPath
              ? `stage module '${uses}' not found (resolved to ${resolve(dir, uses)})`
              : `unknown stage kind '${uses}'; built-in kinds: ${builtinKindNames.join(', ')}`,
            { at: 'value', ...(suggestion ? { suggestion } : {}) },
          ),
        );
        return;
      }
      if (ref.type === 'module' && !allowOutside && !isInside(workspaceRoot, realpathSync(ref.sourceFile))) {
        diagnostics.push(
          source.diagnostic(
            ['stages', name, 'uses'],
            `stage module '${uses}' is outside the workspace ${workspaceRoot} (resolved to ${realpathSync(ref.sourceFile)}); it was not imported, since importing runs its code. Move it into the workspace, or pass --allow-outside-modules (ABLATE_ALLOW_OUTSIDE_MODULES=1) if you trust it`,
            { at: 'value' },
          ),
        );
        return;
      }
      try {
        kinds.set(name, { ref, kind: await loadStageKind(ref) });
      } catch (error) {
        diagnostics.push(
          source.diagnostic(['stages', name, 'uses'], `cannot load stage module '${uses}': ${(error as Error).message}`, { at: 'value' }),
        );
      }
    }),
  );

  // References between stages, then the stage-level graph and its cycles.
  const refs = new Map<string, Map<string, InputRef>>();
  const stageGraph = new Map<string, string[]>();
  for (const name of stageNames) {
    const stageRefs = new Map<string, InputRef>();
    for (const [input, text] of Object.entries(spec.stages[name]!.in ?? {})) {
      const ref = parseInputRef(text);
      if (!Object.hasOwn(spec.stages, ref.stage)) {
        const suggestion = nearestName(
          ref.stage,
          stageNames.filter((n) => n !== name),
        );
        diagnostics.push(
          source.diagnostic(['stages', name, 'in', input], `input '${input}' refers to unknown stage '${ref.stage}'`, {
            at: 'value',
            ...(suggestion ? { suggestion } : {}),
          }),
        );
        continue;
      }
      stageRefs.set(input, ref);
    }
    refs.set(name, stageRefs);
    stageGraph.set(name, [...new Set([...stageRefs.values()].map((r) => r.stage))]);
  }
  const cycle = findCycle(stageGraph);
  if (cycle) {
    const [from, to] = [cycle[cycle.length - 2]!, cycle[cycle.length - 1]!];
    const input = [...refs.get(from)!].find(([, r]) => r.stage === to)![0];
    diagnostics.push(source.diagnostic(['stages', from, 'in', input], `dependency cycle: ${cycle.join(' → ')}`, { at: 'value' }));
    throw new PipelineError(diagnostics);
  }
  for (const [name, { kind }] of kinds) checkDeclaredInputs(name, kind, refs.get(name)!, spec.stages[name]!, source, diagnostics);
  // Every problem at once: a bad kind or reference does not stop the params of the other
  // stages (and of this one) from being checked; only a cycle leaves no order to expand in.

  // Expansion, dependencies first: each stage fans out over its upstream variants and its own matrix.
  const maxInstances = maxInstancesOf(options);
  const order = topologicalOrder(stageGraph);
  const instancesOf = new Map<string, StageInstance[]>();
  const seen = new Set<string>();
  const report = (d: Diagnostic) => {
    const key = `${d.keyPath}|${d.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      diagnostics.push(d);
    }
  };
  for (const name of order) {
    const stage = spec.stages[name]!;
    const loaded = kinds.get(name);
    if (!loaded) continue;
    const { ref, kind } = loaded;
    const stageRefs = refs.get(name)!;
    const fanOut = [...new Map([...stageRefs].filter(([, r]) => !r.gather).map(([input, r]) => [refKey(r), { input, ref: r }])).values()];
    let combos: { variant: Record<string, Scalar>; picks: Map<string, StageInstance> }[] = [{ variant: {}, picks: new Map() }];
    for (const { input, ref: r } of fanOut) {
      const upstream = instancesOf.get(r.stage) ?? [];
      const selected = upstream.filter((u) => matchesSelection(u.variant, r.select));
      if (r.select && !selected.length) {
        const keys = [...new Set(upstream.flatMap((u) => Object.keys(u.variant)))];
        const unknown = Object.keys(r.select).find((k) => !keys.includes(k));
        const suggestion = unknown ? nearestName(unknown, keys) : undefined;
        const message = unknown
          ? `stage '${r.stage}' has no matrix key '${unknown}' to select on (its keys: ${keys.join(', ') || 'none'})`
          : `no variant of '${r.stage}' matches ${refKey(r)}; its variants: ${upstream.map((u) => u.id).join(', ')}`;
        report(source.diagnostic(['stages', name, 'in', input], message, { at: 'value', ...(suggestion ? { suggestion } : {}) }));
        combos = [];
        continue;
      }
      combos = combos.flatMap((combo) =>
        selected
          .map((u) => ({ u, inherited: withoutSelected(u.variant, r.select) }))
          .filter(({ inherited }) => consistent(combo.variant, inherited))
          .map(({ u, inherited }) => ({ variant: { ...combo.variant, ...inherited }, picks: new Map(combo.picks).set(refKey(r), u) })),
      );
    }
    const inherited = new Set(combos.flatMap((c) => Object.keys(c.variant)));
    const matrix = stage.matrix ?? {};
    for (const [key, values] of Object.entries(matrix)) {
      if (inherited.has(key)) {
        report(
          source.diagnostic(
            ['stages', name, 'matrix', key],
            `matrix key '${key}' collides with the same key inherited from an upstream matrix stage; rename one of them`,
          ),
        );
      }
      const labels = values.map((v) => String(v));
      const dup = labels.findIndex((l, i) => labels.indexOf(l) !== i);
      if (dup >= 0) {
        report(
          source.diagnostic(
            ['stages', name, 'matrix', key, dup],
            `matrix value ${JSON.stringify(values[dup])} of '${key}' collides with an earlier value (variants would share the name '${key}=${labels[dup]}')`,
            { at: 'value' },
          ),
        );
      }
    }
    const count = Object.values(matrix).reduce((n, values) => n * values.length, combos.length);
    if (count > maxInstances) {
      const axes = [
        ...(combos.length > 1 ? [`${combos.length} upstream variants`] : []),
        ...Object.entries(matrix).map(([key, values]) => `${key} ${values.length}`),
      ];
      report(
        source.diagnostic(
          ['stages', name, 'matrix'],
          `stage '${name}' would expand to ${count.toLocaleString('en-US')} instances (${axes.join(' × ')}), over the limit of ${maxInstances.toLocaleString('en-US')}; shrink an axis, or set ABLATE_MAX_INSTANCES to allow more`,
        ),
      );
      combos = [];
    }
    for (const [key, values] of Object.entries(matrix)) {
      combos = combos.flatMap((combo) => values.map((v) => ({ variant: { ...combo.variant, [key]: v }, picks: combo.picks })));
    }

    const instances: StageInstance[] = [];
    for (const combo of combos) {
      const interpolationErrors: InterpolationError[] = [];
      const resolvedWith = resolveParams(kind, stage.with ?? {}, { params, matrix: combo.variant }, interpolationErrors);
      for (const e of interpolationErrors) {
        report(
          source.diagnostic(['stages', name, 'with', ...e.path], e.message, {
            at: 'value',
            ...(e.suggestion ? { suggestion: e.suggestion } : {}),
          }),
        );
      }
      // A param whose reference did not resolve still holds the text `${…}`: its type error would only repeat the first.
      const unresolved = interpolationErrors.map((e) => ['stages', name, 'with', ...e.path].join('.'));
      const paramErrors = schemaDiagnostics(source, kind.params, resolvedWith, ['stages', name, 'with'], {
        what: 'param',
        owner: `of stage kind '${stage.uses}'`,
      }).filter((d) => !unresolved.some((path) => d.keyPath === path || d.keyPath.startsWith(`${path}.`)));
      paramErrors.forEach(report);
      if (interpolationErrors.length || paramErrors.length) continue;

      const inputs: Record<string, InputBinding> = {};
      for (const [input, r] of stageRefs) {
        const upstreamInstances = r.gather
          ? (instancesOf.get(r.stage) ?? []).filter((u) => consistent(combo.variant, u.variant))
          : [combo.picks.get(refKey(r))!];
        if (r.output !== undefined) {
          const declared = upstreamInstances[0]?.outputs ?? {};
          if (!Object.hasOwn(declared, r.output)) {
            const suggestion = nearestName(r.output, Object.keys(declared));
            report(
              source.diagnostic(
                ['stages', name, 'in', input],
                `stage '${r.stage}' has no output '${r.output}'; its outputs: ${Object.keys(declared).join(', ') || '(none named)'}`,
                { at: 'value', ...(suggestion ? { suggestion } : {}) },
              ),
            );
            continue;
          }
        }
        const output = r.output !== undefined ? { output: r.output } : {};
        inputs[input] = r.gather
          ? { type: 'gather', from: upstreamInstances.map((u) => ({ id: u.id, variant: u.variant })), ...output }
          : { type: 'single', from: upstreamInstances[0]!.id, ...output };
      }
      const variant: Variant = combo.variant;
      const folderName = variantFolder(variant);
      if (Buffer.byteLength(folderName) > MAX_FOLDER_BYTES) {
        report(
          source.diagnostic(
            ['stages', name, 'matrix'],
            `the variant folder '${folderName.slice(0, 60)}…' is ${Buffer.byteLength(folderName)} bytes, over the ${MAX_FOLDER_BYTES} a file system allows in one name; use shorter matrix values`,
          ),
        );
        continue;
      }
      const folder = Object.keys(variant).length ? `/${folderName}` : '';
      instances.push({
        id: instanceId(name, variant),
        stage: name,
        variant,
        ref,
        kind,
        params: resolvedWith,
        inputs,
        outputs: kind.outputs(resolvedWith),
        metricsFile: kind.metrics?.(resolvedWith),
        fileDeps: pathParamValues(kind.params, resolvedWith).map((p) => resolve(dir, p)),
        artifactDir: `artifacts/${spec.pipeline}/${name}${folder}`,
        threads: kind.threads?.(resolvedWith) ?? 1,
        retries: stage.retries ?? 0,
      });
    }
    instancesOf.set(name, instances);
  }
  const matrixKeys = new Set(stageNames.flatMap((name) => Object.keys(spec.stages[name]!.matrix ?? {})));
  (spec.replicates ?? []).forEach((key, i) => {
    if (!matrixKeys.has(key)) {
      const suggestion = nearestName(key, [...matrixKeys]);
      diagnostics.push(
        source.diagnostic(
          ['replicates', i],
          `replicate key '${key}' is no stage's matrix key (matrix keys: ${[...matrixKeys].join(', ') || 'none'})`,
          {
            at: 'value',
            ...(suggestion ? { suggestion } : {}),
          },
        ),
      );
    }
  });
  if (diagnostics.length) throw new PipelineError(diagnostics);

  const instances = order.flatMap((name) => instancesOf.get(name)!);
  return assemblePlan({ name: spec.pipeline, params, replicates: spec.replicates ?? [], stageNames: order, instances }, source, dir, file);
}

function assemblePlan(parts: RecalledPlan, source: YamlSource, dir: string, file: string): Plan {
  return {
    ...parts,
    file,
    dir,
    source,
    byId: new Map(parts.instances.map((i) => [i.id, i])),
    graph: new Map(parts.instances.map((i) => [i.id, dependenciesOf(i)])),
  };
}

function planCacheInputs(text: string, file: string, workspaceRoot: string, options: LoadOptions): PlanCacheInputs {
  return {
    text,
    file,
    workspaceRoot,
    overrides: options.overrides ?? [],
    ignoreUnknownOverrides: options.ignoreUnknownOverrides ?? false,
    allowOutsideModules: allowsOutsideModules(options),
    maxInstances: maxInstancesOf(options),
  };
}

function allowsOutsideModules(options: LoadOptions): boolean {
  return options.allowOutsideModules ?? process.env.ABLATE_ALLOW_OUTSIDE_MODULES === '1';
}

function maxInstancesOf(options: LoadOptions): number {
  return options.maxInstances ?? (Number(process.env.ABLATE_MAX_INSTANCES) || DEFAULT_MAX_INSTANCES);
}

/**
 * `with:` after interpolation. Params the kind marks as shell code get their references
 * turned into variables (interpolateShellCommand), whose values go to the `vars` param.
 */
function resolveParams(
  kind: StageKind,
  spec: Readonly<Record<string, unknown>>,
  scope: InterpolationScope,
  errors: InterpolationError[],
): Record<string, unknown> {
  const commands = propertiesWithFormat(kind.params, SHELL_COMMAND_FORMAT).filter((key) => typeof spec[key] === 'string');
  const rest = Object.fromEntries(Object.entries(spec).filter(([key]) => !commands.includes(key)));
  const resolved = interpolate(rest, scope, errors) as Record<string, unknown>;
  for (const key of commands) {
    const command = interpolateShellCommand(spec[key] as string, scope, errors, [key]);
    resolved[key] = command.text;
    if (Object.keys(command.vars).length) resolved.vars = { ...(resolved.vars as Record<string, string> | undefined), ...command.vars };
  }
  return resolved;
}

export function dependenciesOf(instance: StageInstance): string[] {
  const deps = Object.values(instance.inputs).flatMap((b) => (b.type === 'single' ? [b.from] : b.from.map((f) => f.id)));
  return [...new Set(deps)];
}

function consistent(a: Variant, b: Variant): boolean {
  for (const [k, v] of Object.entries(b)) if (Object.hasOwn(a, k) && a[k] !== v) return false;
  return true;
}

function checkDeclaredInputs(
  name: string,
  kind: StageKind,
  stageRefs: ReadonlyMap<string, InputRef>,
  stage: StageSpec,
  source: YamlSource,
  diagnostics: Diagnostic[],
): void {
  if (kind.inputs === 'any') return;
  const declared = kind.inputs;
  const suggested = new Set<string>();
  for (const [input, ref] of stageRefs) {
    const decl = declared[input];
    if (!decl) {
      const suggestion = nearestName(input, Object.keys(declared));
      if (suggestion) suggested.add(suggestion);
      const names = Object.keys(declared);
      diagnostics.push(
        source.diagnostic(
          ['stages', name, 'in', input],
          `stage kind '${stage.uses}' has no input '${input}'; its inputs: ${names.join(', ') || '(none)'}`,
          suggestion ? { suggestion } : {},
        ),
      );
    } else if (decl.gather && !ref.gather) {
      diagnostics.push(
        source.diagnostic(['stages', name, 'in', input], `input '${input}' gathers every variant: write '${ref.stage}[*]'`, {
          at: 'value',
        }),
      );
    } else if (!decl.gather && ref.gather) {
      diagnostics.push(
        source.diagnostic(
          ['stages', name, 'in', input],
          `input '${input}' takes one variant, not a gather: write '${ref.stage}' (the stage then fans out over '${ref.stage}''s variants)`,
          { at: 'value' },
        ),
      );
    }
  }
  for (const [input, decl] of Object.entries(declared)) {
    // A misspelt input already got a 'did you mean' pointing here; saying it is missing too would be noise.
    if (!decl.optional && !stageRefs.has(input) && !Object.hasOwn(stage.in ?? {}, input) && !suggested.has(input)) {
      diagnostics.push(
        source.diagnostic(
          ['stages', name, stage.in ? 'in' : 'uses'],
          `stage kind '${stage.uses}' needs input '${input}' (${decl.description})`,
        ),
      );
    }
  }
}

function applyOverrides(
  defaults: Readonly<Record<string, unknown>>,
  overrides: readonly string[],
  source: YamlSource,
  diagnostics: Diagnostic[],
  ignoreUnknown: boolean,
): Record<string, unknown> {
  const params: Record<string, unknown> = { ...defaults };
  for (const assignment of overrides) {
    const eq = assignment.indexOf('=');
    const name = eq > 0 ? assignment.slice(0, eq) : '';
    if (!name) {
      diagnostics.push({ file: source.file, keyPath: 'params', message: `--set '${assignment}': expected NAME=VALUE` });
      continue;
    }
    if (!Object.hasOwn(defaults, name)) {
      if (ignoreUnknown) continue;
      const suggestion = nearestName(name, Object.keys(defaults));
      diagnostics.push({
        ...source.diagnostic(
          ['params'],
          `--set ${assignment}: the pipeline has no param '${name}' (params: ${Object.keys(defaults).join(', ') || 'none'})`,
        ),
        ...(suggestion ? { suggestion } : {}),
      });
      continue;
    }
    try {
      params[name] = yaml().parse(assignment.slice(eq + 1)) as unknown;
    } catch (error) {
      const why = (error as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      diagnostics.push({
        file: source.file,
        keyPath: 'params',
        message: `--set ${assignment}: the value is not valid YAML (${why}); quote it to pass a string: --set '${name}="${assignment.slice(eq + 1).replace(/"/g, '\\"')}"'`,
      });
    }
  }
  return params;
}
