import { existsSync, realpathSync } from 'node:fs';
import type { StageKind } from '../../core/contract.js';
import { loadStageKind, type StageRef } from '../../core/registry.js';
import { packageRoot } from '../../package-root.js';
import { codeDigest, runnerCodeIdentity } from '../code-digest.js';
import { hashBytes, hashJson, type Digest } from '../hashing.js';
import type { Plan, StageInstance } from '../plan.js';
import type { ParseCache } from './parse-cache.js';

/**
 * An expanded plan remembered across runs. Expanding a big pipeline (matrix products,
 * interpolation, each instance's params checked against its kind's schema) was a fifth of a
 * no-op run of 1000 stages; a hit replaces it by one JSON read.
 *
 * The plan is a function of the inputs named in the key (planCacheKey) and of the code of
 * the user stage modules it uses. Those modules are only known once the pipeline is read, so
 * the entry lists them with their code digests (the same digest a fingerprint trusts to say a
 * stage's code is unchanged), and a hit whose modules changed is a miss.
 */
interface StoredPlan {
  readonly format: typeof STORED_PLAN_FORMAT;
  readonly modules: readonly StoredModule[];
  readonly name: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly replicates: readonly string[];
  readonly stageNames: readonly string[];
  readonly instances: readonly Omit<StageInstance, 'kind'>[];
}

/** A plan's parts that do not depend on where its file is: what plan.ts assembles a Plan from. */
export type RecalledPlan = Pick<Plan, 'name' | 'params' | 'replicates' | 'stageNames' | 'instances'>;

interface StoredModule {
  readonly ref: StageRef;
  /** Where it resolved through symlinks: the outside-the-workspace check looked at this path. */
  readonly realPath: string;
  readonly code: Digest;
}

const STORED_PLAN_FORMAT = 1;

/** Everything besides user modules' code that a plan is computed from. */
export interface PlanCacheInputs {
  readonly text: string;
  /** Absolute: `deps` and dataset paths resolve against its directory. */
  readonly file: string;
  /** Real path: user stage modules outside it are refused unless allowed. */
  readonly workspaceRoot: string;
  readonly overrides: readonly string[];
  readonly ignoreUnknownOverrides: boolean;
  readonly allowOutsideModules: boolean;
  readonly maxInstances: number;
}

/**
 * The key: the pipeline's bytes, the options that change its expansion, and the runner's own
 * code (which holds the built-in kinds' schemas, defaults and outputs, and the expansion rules).
 */
export function planCacheKey(inputs: PlanCacheInputs): Digest {
  return hashJson({
    entry: 'plan',
    text: hashBytes(inputs.text),
    file: inputs.file,
    workspaceRoot: inputs.workspaceRoot,
    overrides: inputs.overrides,
    ignoreUnknownOverrides: inputs.ignoreUnknownOverrides,
    allowOutsideModules: inputs.allowOutsideModules,
    maxInstances: inputs.maxInstances,
    runner: runnerCodeIdentity(),
    // Built-in kinds' refs name their source files under it: another installation of the same
    // code has the same identity but other paths.
    runnerRoot: packageRoot,
  });
}

function moduleCode(ref: StageRef): Digest {
  return hashJson(codeDigest(ref.sourceFile, ref.codeRoot));
}

/** Remembers a plan that was just built (and so is valid). */
export function rememberPlan(cache: ParseCache, key: Digest, plan: Plan): void {
  const modules = new Map<string, StoredModule>();
  for (const { ref } of plan.instances) {
    if (ref.type !== 'module' || modules.has(ref.sourceFile)) continue;
    modules.set(ref.sourceFile, { ref, realPath: realpathSync(ref.sourceFile), code: moduleCode(ref) });
  }
  const stored: StoredPlan = {
    format: STORED_PLAN_FORMAT,
    modules: [...modules.values()],
    name: plan.name,
    params: plan.params,
    replicates: plan.replicates,
    stageNames: plan.stageNames,
    instances: plan.instances.map(({ kind: _kind, ...rest }) => rest),
  };
  cache.set(key, stored);
}

/** The remembered plan, its kinds loaded; undefined when there is none or a module it used changed. */
export async function recallPlan(cache: ParseCache, key: Digest): Promise<RecalledPlan | undefined> {
  const stored = cache.get(key) as StoredPlan | undefined;
  if (stored?.format !== STORED_PLAN_FORMAT) return undefined;
  for (const { ref, realPath, code } of stored.modules) {
    if (!existsSync(ref.sourceFile) || realpathSync(ref.sourceFile) !== realPath || moduleCode(ref) !== code) return undefined;
  }
  const kinds = new Map<string, StageKind>();
  try {
    for (const { ref } of stored.instances) if (!kinds.has(ref.sourceFile)) kinds.set(ref.sourceFile, await loadStageKind(ref));
  } catch {
    // A module that no longer imports: the full load reports it at its `uses:` line.
    return undefined;
  }
  return {
    name: stored.name,
    params: stored.params,
    replicates: stored.replicates,
    stageNames: stored.stageNames,
    instances: stored.instances.map((instance) => ({ ...instance, kind: kinds.get(instance.ref.sourceFile)! })),
  };
}
