import { existsSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

/** Built-in kind name → module file name in src/stages/. */
const BUILTINS: Readonly<Record<string, string>> = {
  shell: 'shell',
};

export const builtinKindNames: readonly string[] = Object.keys(BUILTINS);

/** src/stages/, whether this code runs compiled from dist/ or as TypeScript from src/. */
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
const sourceDir = resolve(packageRoot, 'src', 'stages');
const runningFromSource = import.meta.url.endsWith('.ts');

export function isModuleRef(uses: string): boolean {
  return uses.startsWith('./') || uses.startsWith('../') || isAbsolute(uses);
}

/** Resolves `uses:`; undefined when it names no built-in and no existing file. */
export function resolveStageRef(uses: string, pipelineDir: string): StageRef | undefined {
  if (isModuleRef(uses)) {
    const file = resolve(pipelineDir, uses);
    return existsSync(file) ? { type: 'module', name: uses, sourceFile: file, codeRoot: pipelineDir } : undefined;
  }
  const base = BUILTINS[uses];
  return base ? { type: 'builtin', name: uses, sourceFile: resolve(sourceDir, `${base}.ts`), codeRoot: packageRoot } : undefined;
}

const loaded = new Map<string, Promise<StageKind>>();

/** Imports the module behind a ref (once per process) and checks it exports a stage kind. */
export function loadStageKind(ref: StageRef): Promise<StageKind> {
  let kind = loaded.get(ref.sourceFile);
  if (!kind) {
    kind = importKind(ref);
    loaded.set(ref.sourceFile, kind);
  }
  return kind;
}

async function importKind(ref: StageRef): Promise<StageKind> {
  const mod = (await importModule(moduleFileOf(ref))) as { default?: unknown };
  // A .ts file in a CommonJS package arrives as { default: { default: kind } }.
  const inner = (mod.default as { default?: unknown } | undefined)?.default;
  const kind = isStageKind(mod.default) ? mod.default : inner;
  if (!isStageKind(kind)) {
    throw new Error(
      `${ref.sourceFile}: the default export is not a stage kind (expected an object with name, params, inputs, outputs() and run(); use defineStage from ablate)`,
    );
  }
  return kind;
}

function moduleFileOf(ref: StageRef): string {
  if (ref.type === 'module' || runningFromSource) return ref.sourceFile;
  return resolve(packageRoot, 'dist', 'stages', `${BUILTINS[ref.name]}.js`);
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
