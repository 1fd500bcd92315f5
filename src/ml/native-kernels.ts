/**
 * oneDNN kernels for the tfjs wasm backend: convolutions (forward, both gradients) and
 * matrix products run in ablate's native addon (native/ablate_native.cc) on views of the wasm
 * heap, with no copies; every other op stays in wasm's SIMD kernels. Why the wasm backend
 * and not the cpu one: the cpu backend's element-wise ops are JavaScript loops (a broadcast
 * bias add over a 128×28×28×32 batch takes longer than the whole native convolution), while
 * wasm's are XNNPACK, so native convolutions on wasm are the fastest mix (bench: training).
 */
import {
  _FusedMatMul,
  backend_util,
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  FusedConv2D,
  getKernel,
  registerKernel,
  Sum,
  unregisterKernel,
  util,
  type _FusedMatMulAttrs,
  type BatchMatMulAttrs,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type FusedConv2DAttrs,
  type SumAttrs,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { NativeAddon } from './native-addon.js';

/** The part of the wasm backend these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

/** Fused activations the addon applies itself; others fall back to wasm's own kernel. */
const activationCodes: Readonly<Record<string, number>> = { linear: 0, relu: 1, sigmoid: 2, elu: 3, relu6: 4, leakyrelu: 5 };

/** The addon's 17 shape fields for one convolution. */
export function convShape(info: backend_util.Conv2DInfo): Int32Array {
  const { padInfo: p } = info;
  return Int32Array.of(
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.outHeight,
    info.outWidth,
    info.strideHeight,
    info.strideWidth,
    info.dilationHeight,
    info.dilationWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
  );
}

function convInfo(x: readonly number[], filter: readonly number[], attrs: Conv2DAttrs): backend_util.Conv2DInfo {
  if (attrs.dataFormat !== 'NHWC') throw new Error('native convolutions support NHWC only');
  return backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    filter as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

function conv2DKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs, attrs }) => {
    const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
    const info = convInfo(x.shape, filter.shape, attrs as unknown as Conv2DAttrs);
    const y = backend.makeOutput(info.outShape, 'float32');
    addon.conv2d(
      backend.typedArrayFromHeap(x),
      backend.typedArrayFromHeap(filter),
      null,
      backend.typedArrayFromHeap(y),
      convShape(info),
      0,
      0,
    );
    return y;
  };
}

function fusedConv2DKernel(addon: NativeAddon, backend: WasmBackend, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as {
      x: TensorInfo;
      filter: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const attrs = args.attrs as unknown as FusedConv2DAttrs;
    const code = activationCodes[attrs.activation];
    const outChannels = filter.shape[3]!;
    if (code === undefined || preluActivationWeights || (bias && util.sizeFromShape(bias.shape) !== outChannels)) return fallback(args);
    const info = convInfo(x.shape, filter.shape, attrs);
    const y = backend.makeOutput(info.outShape, 'float32');
    const biasValues = bias ? backend.typedArrayFromHeap(bias) : null;
    addon.conv2d(
      backend.typedArrayFromHeap(x),
      backend.typedArrayFromHeap(filter),
      biasValues,
      backend.typedArrayFromHeap(y),
      convShape(info),
      code,
      attrs.leakyreluAlpha ?? 0.2,
    );
    return y;
  };
}

function conv2DBackpropInputKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs, attrs }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as Conv2DBackpropInputAttrs;
    const info = convInfo(a.inputShape, filter.shape, { ...a, dilations: 1 });
    const dx = backend.makeOutput([...a.inputShape], 'float32');
    addon.conv2dBackwardData(
      backend.typedArrayFromHeap(dy),
      backend.typedArrayFromHeap(filter),
      backend.typedArrayFromHeap(dx),
      convShape(info),
    );
    return dx;
  };
}

function conv2DBackpropFilterKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const a = attrs as unknown as Conv2DBackpropFilterAttrs;
    const info = convInfo(x.shape, a.filterShape, { ...a, dilations: 1 });
    const dW = backend.makeOutput([...a.filterShape], 'float32');
    addon.conv2dBackwardWeights(
      backend.typedArrayFromHeap(x),
      backend.typedArrayFromHeap(dy),
      backend.typedArrayFromHeap(dW),
      convShape(info),
    );
    return dW;
  };
}

/**
 * [..., m, k] · [..., k, n] with either side transposed and batch dims broadcast when one
 * side has batch 1; `fused` adds a bias over the last axis and an activation (_FusedMatMul,
 * which Dense layers use outside gradient tapes).
 */
function matMul(
  addon: NativeAddon,
  backend: WasmBackend,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  fused?: { bias: TensorInfo | undefined; activation: number; alpha: number },
): TensorInfo {
  const rankA = a.shape.length;
  const rankB = b.shape.length;
  const m = transposeA ? a.shape[rankA - 1]! : a.shape[rankA - 2]!;
  const k = transposeA ? a.shape[rankA - 2]! : a.shape[rankA - 1]!;
  const n = transposeB ? b.shape[rankB - 2]! : b.shape[rankB - 1]!;
  const batchA = util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = util.sizeFromShape(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1)
    throw new Error(`BatchMatMul: batch sizes ${batchA} and ${batchB} do not broadcast`);
  const batchShape = (batchA >= batchB ? a : b).shape.slice(0, -2);
  const c = backend.makeOutput([...batchShape, m, n], 'float32');
  const batch = Math.max(batchA, batchB);
  const shape = Int32Array.of(
    batch,
    m,
    n,
    k,
    transposeA ? 1 : 0,
    transposeB ? 1 : 0,
    batchA === 1 && batch > 1 ? 1 : 0,
    batchB === 1 && batch > 1 ? 1 : 0,
  );
  const bias = fused?.bias ? backend.typedArrayFromHeap(fused.bias) : null;
  addon.matmul(
    backend.typedArrayFromHeap(a),
    backend.typedArrayFromHeap(b),
    backend.typedArrayFromHeap(c),
    shape,
    bias,
    fused?.activation ?? 0,
    fused?.alpha ?? 0,
  );
  return c;
}

function batchMatMulKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs, attrs }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
    return matMul(addon, backend, a, b, transposeA, transposeB);
  };
}

function fusedMatMulKernel(addon: NativeAddon, backend: WasmBackend, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as {
      a: TensorInfo;
      b: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const attrs = args.attrs as unknown as _FusedMatMulAttrs;
    const code = activationCodes[attrs.activation];
    const n = attrs.transposeB ? b.shape[b.shape.length - 2]! : b.shape[b.shape.length - 1]!;
    if (code === undefined || preluActivationWeights || (bias && util.sizeFromShape(bias.shape) !== n)) return fallback(args);
    return matMul(addon, backend, a, b, attrs.transposeA, attrs.transposeB, { bias, activation: code, alpha: attrs.leakyreluAlpha ?? 0.2 });
  };
}

/** Sum over leading axes (bias gradients) natively; any other reduction stays with wasm. */
function sumKernel(addon: NativeAddon, backend: WasmBackend, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as SumAttrs;
    const axes = util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const leading = axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading || axes.length === 0) return fallback(args);
    const kept = x.shape.slice(axes.length);
    const outShape = keepDims ? [...axes.map(() => 1), ...kept] : kept;
    const out = backend.makeOutput(outShape, 'float32');
    const outer = util.sizeFromShape(x.shape.slice(0, axes.length));
    addon.sumLeading(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), Int32Array.of(outer, util.sizeFromShape(kept)));
    return out;
  };
}

let registered = false;

/** Replaces wasm's convolution and matrix-product kernels by the addon's (once per process). */
export function registerNativeKernels(addon: NativeAddon, backend: object): void {
  if (registered) return;
  registered = true;
  const wasm = backend as WasmBackend;
  const fusedFallback = getKernel(FusedConv2D, 'wasm')!.kernelFunc;
  const sumFallback = getKernel(Sum, 'wasm')!.kernelFunc;
  const fusedMatMulFallback = getKernel(_FusedMatMul, 'wasm')!.kernelFunc;
  const replace = (name: string, kernelFunc: KernelFunc) => {
    if (getKernel(name, 'wasm')) unregisterKernel(name, 'wasm');
    registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  };
  replace(Conv2D, conv2DKernel(addon, wasm));
  replace(FusedConv2D, fusedConv2DKernel(addon, wasm, fusedFallback));
  replace(Conv2DBackpropInput, conv2DBackpropInputKernel(addon, wasm));
  replace(Conv2DBackpropFilter, conv2DBackpropFilterKernel(addon, wasm));
  replace(BatchMatMul, batchMatMulKernel(addon, wasm));
  replace(_FusedMatMul, fusedMatMulKernel(addon, wasm, fusedMatMulFallback));
  replace(Sum, sumKernel(addon, wasm, sumFallback));
}

/** Names of the kernels registerNativeKernels replaces, for `ablate doctor`. */
export const nativeKernelNames = [Conv2D, FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter, BatchMatMul, _FusedMatMul, Sum] as const;
