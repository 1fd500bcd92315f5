/**
 * Loads TensorFlow.js on the fastest backend installed here, says which and why, once.
 *   tensorflow  @tensorflow/tfjs-node (native libtensorflow), when its native binding loads;
 *   wasm        @tensorflow/tfjs-backend-wasm with SIMD, plus ablate's training kernels;
 *   cpu         the pure-JS backend: minutes per training step, only on explicit request.
 * tfjs-node is an optionalDependency whose install downloads libtensorflow; offline that
 * fails and npm skips it, or leaves a folder whose binding is missing. So detection is a
 * real import, never a look at node_modules.
 */
import { Type } from '@sinclair/typebox';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = 'auto' | BackendName;

export interface Tf {
  readonly core: typeof TfCore;
  readonly layers: typeof TfLayers;
  readonly backend: BackendName;
  /** Why this backend, for the run info and the log. */
  readonly reason: string;
  readonly versions: Readonly<Record<string, string>>;
}

/** The `backend` param of every stage that runs TensorFlow.js. */
export const BackendParam = Type.Union([Type.Literal('auto'), Type.Literal('tensorflow'), Type.Literal('wasm'), Type.Literal('cpu')], {
  default: 'auto',
  description: 'auto: tfjs-node if it loads, else wasm. cpu takes minutes per training step.',
});

/** Numbers differ in the last bits between backends: the resolved backend enters the fingerprint. */
export async function backendEnvironment(params: { backend: BackendChoice }): Promise<Record<string, string>> {
  return { backend: await resolveBackend(params.backend) };
}

let nativeProbe: Promise<string | undefined> | undefined;

/** Undefined when @tensorflow/tfjs-node loads; otherwise why not (once per process). */
function nativeUnavailable(): Promise<string | undefined> {
  return (nativeProbe ??= import('@tensorflow/tfjs-node' as string).then(
    () => undefined,
    (error: Error) => error.message.split('\n')[0] ?? 'failed to load',
  ));
}

/** The backend `choice` will run on, without loading TensorFlow.js itself (for fingerprints). */
export async function resolveBackend(choice: BackendChoice): Promise<BackendName> {
  if (choice !== 'auto') return choice;
  return (await nativeUnavailable()) === undefined ? 'tensorflow' : 'wasm';
}

let loading: Promise<Tf> | undefined;
let loadedChoice: BackendChoice | undefined;

export function loadTf(choice: BackendChoice = 'auto'): Promise<Tf> {
  if (loading && loadedChoice !== choice) throw new Error(`TensorFlow.js is already loaded with backend ${loadedChoice}; one backend per process`);
  loadedChoice = choice;
  return (loading ??= load(choice));
}

async function load(choice: BackendChoice): Promise<Tf> {
  const nativeError = choice === 'auto' || choice === 'tensorflow' ? await nativeUnavailable() : 'not requested';
  if (choice === 'tensorflow' && nativeError) throw new Error(`backend 'tensorflow' requested but @tensorflow/tfjs-node does not load: ${nativeError}`);
  const core = await import('@tensorflow/tfjs-core');
  // tfjs-layers also registers every gradient function (tfjs-core alone registers none).
  const layers = await import('@tensorflow/tfjs-layers');
  let backend: BackendName;
  let reason: string;
  if (!nativeError && (choice === 'auto' || choice === 'tensorflow') && (await core.setBackend('tensorflow'))) {
    backend = 'tensorflow';
    reason = '@tensorflow/tfjs-node loaded (native TensorFlow)';
  } else if (choice === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    await core.setBackend('cpu');
    backend = 'cpu';
    reason = 'cpu backend requested';
  } else {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // tfjs spawns no worker threads in Node; one thread is what it runs on.
    wasm.setThreadsCount(1);
    if (!(await core.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
    const { registerWasmTrainingKernels } = await import('./wasm-kernels.js');
    registerWasmTrainingKernels(core.backend());
    backend = 'wasm';
    const simd = await core.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    reason = `${choice === 'wasm' ? 'wasm requested' : `@tensorflow/tfjs-node unavailable (${nativeError})`}; wasm${simd ? ' with SIMD' : ' without SIMD'} + ablate training kernels`;
  }
  await core.ready();
  return { core, layers, backend, reason, versions: { '@tensorflow/tfjs-core': core.version_core, '@tensorflow/tfjs-layers': layers.version_layers } };
}
