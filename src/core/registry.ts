import { existsSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../package-root.js';
import type { StageKind } from './contract.js';

/**
 * Where a stage kind's code lives. Built-ins are modules of this package; user stages are
 * files next to the pipeline (`uses: ./stages/my-stage.ts`).
 */
export interface StageRef {
  readonly type: 'builtin' | 'module';
  /** As written in `uses:`. */
  readonly name: string;
  /** The module's source file: what the code digest starts from. */
  readonly sourceFile: string;
  /** Directory its code files are named relative to in fingerprints: the ablate package, or the pipeline's directory. */
  readonly codeRoot: string;
}

/**
 * Built-in kinds by name: module file in src/stages/ and how to import it. Imported on first
 * use, so a run pays only for the kinds its pipeline uses (a module's top level is light by
 * contract; heavy libraries load inside `run`).
 */
const BUILTINS: Readonly<Record<string, { readonly file: string; readonly load: () => Promise<{ default: StageKind }> }>> = {
  shell: { file: 'shell.ts', load: () => import('../stages/shell.js') },
  mnist: { file: 'mnist.ts', load: () => import('../stages/mnist.js') },
  'fashion-mnist': { file: 'fashion-mnist.ts', load: () => import('../stages/fashion-mnist.js') },
  'image-folder': { file: 'image-folder.ts', load: () => import('../stages/image-folder.js') },
  npy: { file: 'npy.ts', load: () => import('../stages/npy.js') },
  preprocess: { file: 'preprocess.ts', load: () => import('../stages/preprocess.js') },
  'train-vae': { file: 'train-vae.ts', load: () => import('../stages/train-vae.js') },
  evaluate: { file: 'evaluate.ts', load: () => import('../stages/evaluate.js') },
  'compare-metrics': { file: 'compare-metrics.ts', load: () => import('../stages/compare-metrics.js') },
  reconstructions: { file: 'reconstructions.ts', load: () => import('../stages/reconstructions.js') },
  'prior-samples': { file: 'prior-samples.ts', load: () => import('../stages/prior-samples.js') },
  interpolations: { file: 'interpolations.ts', load: () => import('../stages/interpolations.js') },
  manifold: { file: 'manifold.ts', load: () => import('../stages/manifold.js') },
  traversals: { file: 'traversals.ts', load: () => import('../stages/traversals.js') },
  'latent-scatter': { file: 'latent-scatter.ts', load: () => import('../stages/latent-scatter.js') },
  'training-curves': { file: 'training-curves.ts', load: () => import('../stages/training-curves.js') },
  'variant-chart': { file: 'variant-chart.ts', load: () => import('../stages/variant-chart.js') },
  pca: { file: 'pca.ts', load: () => import('../stages/pca.js') },
  tsne: { file: 'tsne.ts', load: () => import('../stages/tsne.js') },
  umap: { file: 'umap.ts', load: () => import('../stages/umap.js') },
  report: { file: 'report.ts', load: () => import('../stages/report.js') },
};

export const builtinKindNames: readonly string[] = Object.keys(BUILTINS);

export function isModuleRef(uses: string): boolean {
  return uses.startsWith('./') || uses.startsWith('../') || isAbsolute(uses);
}

/** Resolves `uses:`; undefined when it names no built-in and no existing file. */
export function resolveStageRef(uses: string, pipelineDir: string): StageRef | undefined {
  if (isModuleRef(uses)) {
    const file = resolve(pipelineDir, uses);
    return existsSync(file) ? { type: 'module', name: uses, sourceFile: file, codeRoot: pipelineDir } : undefined;
  }
  const builtin = BUILTINS[uses];
  return builtin
    ? { type: 'builtin', name: uses, sourceFile: resolve(packageRoot, 'src', 'stages', builtin.file), codeRoot: packageRoot }
    : undefined;
}

const loaded = new Map<string, Promise<StageKind>>();

/** The stage kind behind a ref, imported once per process; a user module is checked. */
export function loadStageKind(ref: StageRef): Promise<StageKind> {
  let kind = loaded.get(ref.sourceFile);
  if (!kind) {
    const builtin = ref.type === 'builtin' ? BUILTINS[ref.name] : undefined;
    kind = builtin ? builtin.load().then((m) => m.default) : importUserKind(ref.sourceFile);
    loaded.set(ref.sourceFile, kind);
  }
  return kind;
}

async function importUserKind(file: string): Promise<StageKind> {
  const mod = (await importModule(file)) as { default?: unknown };
  // A .ts file in a CommonJS package arrives as { default: { default: kind } }.
  const inner = (mod.default as { default?: unknown } | undefined)?.default;
  const kind = isStageKind(mod.default) ? mod.default : inner;
  if (!isStageKind(kind)) {
    throw new Error(
      `${file}: the default export is not a stage kind (expected an object with name, params, inputs, outputs() and run(); use defineStage from ablate)`,
    );
  }
  return kind;
}

async function importModule(file: string): Promise<unknown> {
  const ext = extname(file);
  if (ext === '.ts' || ext === '.mts' || ext === '.cts' || ext === '.tsx') {
    const { tsImport } = await import('tsx/esm/api');
    return tsImport(pathToFileURL(file).href, import.meta.url);
  }
  return import(pathToFileURL(file).href);
}

function isStageKind(value: unknown): value is StageKind {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.name === 'string' &&
    typeof v.params === 'object' &&
    (v.inputs === 'any' || typeof v.inputs === 'object') &&
    typeof v.outputs === 'function' &&
    typeof v.run === 'function'
  );
}
