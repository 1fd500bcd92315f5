/**
 * ablate's native addon (native/ablate_native.cc: oneDNN convolutions and SGEMM), compiled
 * at install time by scripts/build-native.mjs when oneDNN's headers are there
 * (`apt-get install -y libdnnl-dev`). Without it, ablate runs the pure-wasm route and says
 * why. This module stays free of TensorFlow.js so that fingerprinting can ask cheaply.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';

/** The addon's functions (see native/ablate_native.cc for their contracts). */
export interface NativeAddon {
  conv2d(
    x: Float32Array,
    filter: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    shape: Int32Array,
    activation: number,
    alpha: number,
  ): void;
  conv2dBackwardData(dy: Float32Array, filter: Float32Array, dx: Float32Array, shape: Int32Array): void;
  conv2dBackwardWeights(x: Float32Array, dy: Float32Array, dFilter: Float32Array, shape: Int32Array): void;
  matmul(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    shape: Int32Array,
    bias: Float32Array | null,
    activation: number,
    alpha: number,
  ): void;
  sumLeading(x: Float32Array, out: Float32Array, shape: Int32Array): void;
  /** out = a op b; shape is [op, n, periodA, periodB] (period 0: full size; p: repeats every p). */
  binary(a: Float32Array, b: Float32Array, out: Float32Array, shape: Int32Array): void;
  /** out = op(x); shape is [op, n]; alpha is step's value at and below 0. */
  unary(x: Float32Array, out: Float32Array, shape: Int32Array, alpha: number): void;
  /** dx = dy · step(x): relu's gradient; size is [n]. */
  reluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, size: Int32Array): void;
  /** dz = dy · step(y) and dBias = Σ over rows of dz; shape is [rows, channels]. */
  reluGradSum(dy: Float32Array, y: Float32Array, dz: Float32Array, dBias: Float32Array, shape: Int32Array): void;
  /** y = act(y + bias) in place over rows of channels; shape is [rows, channels, activation (0 linear, 1 relu)]. */
  biasRelu(y: Float32Array, bias: Float32Array | null, shape: Int32Array): void;
  /** out[n] = Σ over image n's pixels of the binary cross-entropy from logits; shape is [images, pixels]. */
  bernoulliNll(logits: Float32Array, x: Float32Array, out: Float32Array, shape: Int32Array): void;
  /** dLogits = dy[n] · (σ(logits) − x) over image n's pixels; shape is [images, pixels]. */
  bernoulliNllGrad(dy: Float32Array, logits: Float32Array, x: Float32Array, dLogits: Float32Array, shape: Int32Array): void;
  /** One Adam step of one variable: scalars are [β1, 1−β1, β2, 1−β2, 1−β1^t, 1−β2^t, ε, −lr]. */
  adam(
    value: Float32Array,
    m: Float32Array,
    v: Float32Array,
    g: Float32Array,
    newValue: Float32Array,
    newM: Float32Array,
    newV: Float32Array,
    size: Int32Array,
    scalars: Float32Array,
  ): void;
  setThreads(threads: number): void;
  /** oneDNN's dispatched instruction set here, e.g. 'avx2', 'avx512_core' (after DNNL_MAX_CPU_ISA). */
  cpuIsa(): string;
  info(): string;
  implementations(shape: Int32Array): string;
}

export const addonPath = join(packageRoot, 'native', 'build', 'Release', 'ablate_native.node');

/** What the addon is compiled from: the kernels' source and binding.gyp, whose flags (-ffp-contract=off) decide rounding too. */
export const addonSources = ['ablate_native.cc', 'binding.gyp'].map((file) => join(packageRoot, 'native', file));

/** 'oneDNN 2.6.3': the library the addon was linked against. */
export function onednnVersion(addon: NativeAddon): string {
  return addon.info().split(',')[0]!;
}

let sourceDigest: string | undefined;

/** oneDNN's version and a digest of what the addon is compiled from: what decides the numbers. */
export function nativeKernelsIdentity(addon: NativeAddon): string {
  if (sourceDigest === undefined) {
    const hash = createHash('sha256');
    for (const file of addonSources) hash.update(readFileSync(file));
    sourceDigest = hash.digest('hex').slice(0, 16);
  }
  return `${onednnVersion(addon)} · source ${sourceDigest}`;
}

let loaded: { addon: NativeAddon } | { error: string } | undefined;

/** The addon, or why it is unavailable (once per process). */
export function loadNativeAddon(): { addon: NativeAddon } | { error: string } {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    loaded = { error: 'native kernels not built (install libdnnl-dev, then npm run build:native)' };
  } else {
    try {
      loaded = { addon: createRequire(import.meta.url)(addonPath) as NativeAddon };
    } catch (error) {
      loaded = { error: `native kernels failed to load: ${(error as Error).message.split('\n')[0]}` };
    }
  }
  return loaded;
}
