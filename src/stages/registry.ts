import { existsSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../package-root.js';
import type { StageKind } from './contract.js';
import compareMetrics from './compare-metrics.js';
import evaluate from './evaluate.js';
import fashionMnist from './fashion-mnist.js';
import interpolations from './interpolations.js';
import latentScatter from './latent-scatter.js';
import manifold from './manifold.js';
import mnist from './mnist.js';
import pca from './pca.js';
import preprocess from './preprocess.js';
import priorSamples from './prior-samples.js';
import reconstructions from './reconstructions.js';
import report from './report.js';
import shell from './shell.js';
import trainVae from './train-vae.js';
import trainingCurves from './training-curves.js';
import traversals from './traversals.js';
import tsne from './tsne.js';
import umap from './umap.js';
import variantChart from './variant-chart.js';

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
 * Built-in kinds by name, with their module's file name in src/stages/. Imported statically:
 * a stage module's top level is light by contract (heavy libraries load inside `run`).
 */
const BUILTINS: Readonly<Record<string, { readonly kind: StageKind; readonly file: string }>> = {
  shell: { kind: shell, file: 'shell.ts' },
  mnist: { kind: mnist, file: 'mnist.ts' },
  'fashion-mnist': { kind: fashionMnist, file: 'fashion-mnist.ts' },
  preprocess: { kind: preprocess, file: 'preprocess.ts' },
  'train-vae': { kind: trainVae, file: 'train-vae.ts' },
  evaluate: { kind: evaluate, file: 'evaluate.ts' },
  'compare-metrics': { kind: compareMetrics, file: 'compare-metrics.ts' },
  reconstructions: { kind: reconstructions, file: 'reconstructions.ts' },
  'prior-samples': { kind: priorSamples, file: 'prior-samples.ts' },
  interpolations: { kind: interpolations, file: 'interpolations.ts' },
  manifold: { kind: manifold, file: 'manifold.ts' },
  traversals: { kind: traversals, file: 'traversals.ts' },
  'latent-scatter': { kind: latentScatter, file: 'latent-scatter.ts' },
  'training-curves': { kind: trainingCurves, file: 'training-curves.ts' },
  'variant-chart': { kind: variantChart, file: 'variant-chart.ts' },
  pca: { kind: pca, file: 'pca.ts' },
  tsne: { kind: tsne, file: 'tsne.ts' },
  umap: { kind: umap, file: 'umap.ts' },
  report: { kind: report, file: 'report.ts' },
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
  return builtin ? { type: 'builtin', name: uses, sourceFile: resolve(packageRoot, 'src', 'stages', builtin.file), codeRoot: packageRoot } : undefined;
}

const loaded = new Map<string, Promise<StageKind>>();

/** The stage kind behind a ref; a user module is imported once per process and checked. */
export function loadStageKind(ref: StageRef): Promise<StageKind> {
  const builtin = ref.type === 'builtin' ? BUILTINS[ref.name] : undefined;
  if (builtin) return Promise.resolve(builtin.kind);
  let kind = loaded.get(ref.sourceFile);
  if (!kind) {
    kind = importUserKind(ref.sourceFile);
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
