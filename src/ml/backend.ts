/**
 * Loads TensorFlow.js on the fastest backend installed here, says which and why, once.
 *   tensorflow  @tensorflow/tfjs-node (native libtensorflow), when its native binding loads;
 *   native      the wasm backend with ablate's oneDNN addon for convolutions and matrix
 *               products (native-kernels.ts), when the addon was built at install time;
 *   wasm        @tensorflow/tfjs-backend-wasm with SIMD, plus ablate's training kernels;
 *   cpu         the pure-JS backend: minutes per training step, only on explicit request.
 * tfjs-node is an optionalDependency whose install downloads libtensorflow; offline that
 * fails and npm skips it, or leaves a folder whose binding is missing. So detection is a
 * real import, never a look at node_modules.
 */
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import { loadNativeAddon, nativeKernelsIdentity, onednnVersion, type NativeAddon } from './native-addon.js';

export type BackendName = 'tensorflow' | 'native' | 'wasm' | 'cpu';
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
export const BackendParam = Type.Union(
  [Type.Literal('auto'), Type.Literal('tensorflow'), Type.Literal('native'), Type.Literal('wasm'), Type.Literal('cpu')],
  {
    default: 'auto',
    description: 'auto: tfjs-node if it loads, else native (wasm + oneDNN) if built, else wasm. cpu takes minutes per training step.',
  },
);

/**
 * The `threads` param of the stages that run TensorFlow.js kernels on several cores. A param,
 * not the cores that happen to be free: oneDNN splits its reductions by thread count, so the
 * count changes the bytes and must be in the fingerprint.
 */
export const ThreadsParam = Type.Integer({
  minimum: 1,
  maximum: 256,
  default: 1,
  description:
    'Threads for the native kernels; part of the fingerprint, as oneDNN sums in another order on another count. The runner holds this many of its -j slots while the stage runs. The wasm route runs on one thread whatever this says.',
});

/**
 * Numbers differ in the last bits between backends: the resolved backend enters the
 * fingerprint, and for the native one the oneDNN version, the kernels' source digest and the
 * instruction set oneDNN dispatches to here (`cpu`): AVX2 and AVX-512 kernels block and order
 * their sums differently, so two such machines never share a cache entry. tfjs-node's
 * libtensorflow dispatches on the CPU too, by the best vector extension it finds. The wasm and
 * cpu routes compute the same bits on any x86 CPU (wasm SIMD has no fused multiply-add), so
 * they get no `cpu` fact and machines of different classes share their entries.
 */
export async function backendEnvironment(params: { backend: BackendChoice }): Promise<Record<string, string>> {
  const backend = await resolveBackend(params.backend);
  if (backend === 'tensorflow') return { backend, cpu: vectorExtension() };
  const native = backend === 'native' ? loadNativeAddon() : undefined;
  return native && 'addon' in native ? { backend, kernels: nativeKernelsIdentity(native.addon), cpu: native.addon.cpuIsa() } : { backend };
}

/** The widest x86 vector extension this CPU reports (`avx512`, `avx2`, `avx`, `sse4`), or the architecture elsewhere. */
function vectorExtension(): string {
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    return process.arch;
  }
  const has = (flag: string) => new RegExp(`\\b${flag}\\b`).test(flags);
  return has('avx512f') ? 'avx512' : has('avx2') ? 'avx2' : has('avx') ? 'avx' : has('sse4_2') ? 'sse4' : process.arch;
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
  if ((await nativeUnavailable()) === undefined) return 'tensorflow';
  return 'addon' in loadNativeAddon() ? 'native' : 'wasm';
}

let loading: Promise<Tf> | undefined;
let nativeAddon: NativeAddon | undefined;

/**
 * Bounds the threads the native kernels use from now on. A worker process runs many stages
 * in turn, so every loadTf sets it. The other backends run on one thread in Node anyway.
 */
function setComputeThreads(threads: number): void {
  nativeAddon?.setThreads(threads);
}
let loadedChoice: BackendChoice | undefined;

/** TensorFlow.js on `choice`, its kernels bounded to `threads` cores (the stage's ctx.threads). */
export async function loadTf(choice: BackendChoice, threads: number): Promise<Tf> {
  if (loading && loadedChoice !== choice)
    throw new Error(`TensorFlow.js is already loaded with backend ${loadedChoice}; one backend per process`);
  loadedChoice = choice;
  const tf = await (loading ??= load(choice));
  setComputeThreads(threads);
  return tf;
}

async function load(choice: BackendChoice): Promise<Tf> {
  const nativeError = choice === 'auto' || choice === 'tensorflow' ? await nativeUnavailable() : 'not requested';
  if (choice === 'tensorflow' && nativeError)
    throw new Error(`backend 'tensorflow' requested but @tensorflow/tfjs-node does not load: ${nativeError}`);
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
    const addon = choice === 'auto' || choice === 'native' ? loadNativeAddon() : { error: 'wasm requested' };
    if (choice === 'native' && 'error' in addon) throw new Error(`backend 'native' requested but ${addon.error}`);
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // tfjs spawns no worker threads in Node; one thread is what it runs on.
    wasm.setThreadsCount(1);
    if (!(await core.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
    const { registerWasmTrainingKernels } = await import('./wasm-kernels.js');
    registerWasmTrainingKernels(core.backend());
    const simd = await core.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const why = choice === 'auto' ? `@tensorflow/tfjs-node unavailable (${nativeError}); ` : '';
    if ('addon' in addon) {
      const { registerNativeKernels } = await import('./native-kernels.js');
      registerNativeKernels(addon.addon, core.backend());
      nativeAddon = addon.addon;
      backend = 'native';
      reason = `${why}wasm${simd ? ' with SIMD' : ''} + ablate's oneDNN kernels (${onednnVersion(addon.addon)})`;
    } else {
      backend = 'wasm';
      reason = `${why}${addon.error}; wasm${simd ? ' with SIMD' : ' without SIMD'} + ablate training kernels`;
    }
  }
  await core.ready();
  return {
    core,
    layers,
    backend,
    reason,
    versions: { '@tensorflow/tfjs-core': core.version_core, '@tensorflow/tfjs-layers': layers.version_layers },
  };
}
