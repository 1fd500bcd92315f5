/**
 * Native kernels for the tfjs wasm backend, in ablate's addon (native/ablate_native.cc), on
 * views of the wasm heap with no copies: oneDNN's convolutions (forward, both gradients) and
 * matrix products; and on the addon's OpenMP threads, bias sums, the float32 element-wise ops
 * and Adam (wasm's bits), the fused conv layers' epilogues (fused-conv.ts) and the Bernoulli
 * loss (bernoulli-nll.ts). Every other op stays in wasm's SIMD kernels. Why the wasm backend
 * and not the cpu one: the cpu backend's element-wise ops are JavaScript loops (a broadcast
 * bias add over a 128×28×28×32 batch takes longer than the whole native convolution), while
 * wasm's are XNNPACK, so native convolutions on wasm are the fastest mix (bench: training).
 */
import {
  _FusedMatMul,
  Abs,
  Add,
  backend_util,
  BatchMatMul,
  cast,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  engine,
  FusedConv2D,
  getBackend,
  getKernel,
  mul,
  Multiply,
  neg,
  Neg,
  RealDiv,
  registerGradient,
  registerKernel,
  Relu,
  reshape,
  Sqrt,
  Square,
  step,
  Step,
  Sub,
  sum,
  Sum,
  unregisterKernel,
  util,
  type _FusedMatMulAttrs,
  type BatchMatMulAttrs,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type FusedConv2DAttrs,
  type StepAttrs,
  type SumAttrs,
  type KernelFunc,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { ADAM_KERNEL, type AdamAttrs } from './adam.js';
import { BERNOULLI_NLL_GRAD_KERNEL, BERNOULLI_NLL_KERNEL, registerBernoulliNllGradient } from './bernoulli-nll.js';
import {
  CONV_LAYER_KERNEL,
  DECONV_LAYER_KERNEL,
  registerFusedConvGradients,
  RELU_GRAD_SUM_KERNEL,
  type FusedLayerAttrs,
} from './fused-conv.js';
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

/** y = act(conv2d(x, filter) + bias) on the addon; no bias and code 0 (linear) for a plain convolution. */
function convForward(
  addon: NativeAddon,
  backend: WasmBackend,
  x: TensorInfo,
  filter: TensorInfo,
  attrs: Conv2DAttrs,
  fused: { bias: TensorInfo | undefined; activation: number; alpha: number } = { bias: undefined, activation: 0, alpha: 0 },
): TensorInfo {
  const info = convInfo(x.shape, filter.shape, attrs);
  const y = backend.makeOutput(info.outShape, 'float32');
  addon.conv2d(
    backend.typedArrayFromHeap(x),
    backend.typedArrayFromHeap(filter),
    fused.bias ? backend.typedArrayFromHeap(fused.bias) : null,
    backend.typedArrayFromHeap(y),
    convShape(info),
    fused.activation,
    fused.alpha,
  );
  return y;
}

function conv2DKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs, attrs }) => {
    const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
    return convForward(addon, backend, x, filter, attrs as unknown as Conv2DAttrs);
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
    return convForward(addon, backend, x, filter, attrs, { bias, activation: code, alpha: attrs.leakyreluAlpha ?? 0.2 });
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

/** Binary op codes of the addon (native/ablate_native.cc, BinaryOp). */
const binaryCodes = { [Add]: 0, [Sub]: 1, [Multiply]: 2, [RealDiv]: 3 } as const;

/**
 * How one operand of a broadcast binary op lines up with the output: 0 when it has the
 * output's shape, 1 when it is a single value, p when its p values repeat along the leading
 * axes (its shape, leading 1s dropped, ends the output's); undefined for any other broadcast.
 */
export function broadcastPeriod(shape: number[], outShape: number[]): number | undefined {
  const size = util.sizeFromShape(shape);
  // A valid broadcast of equal size only adds or drops axes of 1: the same layout.
  if (size === util.sizeFromShape(outShape)) return 0;
  if (size === 1) return 1;
  const trimmed = shape.slice(shape.findIndex((d) => d !== 1));
  return util.arraysEqual(trimmed, outShape.slice(outShape.length - trimmed.length)) ? size : undefined;
}

function binaryKernel(addon: NativeAddon, backend: WasmBackend, code: number, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
    const outShape = backend_util.assertAndGetBroadcastShape([...a.shape], [...b.shape]);
    const periodA = broadcastPeriod(a.shape, outShape);
    const periodB = broadcastPeriod(b.shape, outShape);
    // Both repeating (an outer product of shapes) is a broadcast the addon does not do.
    if (periodA === undefined || periodB === undefined || (periodA > 1 && periodB > 1)) return fallback(args);
    const out = backend.makeOutput(outShape, 'float32');
    const n = util.sizeFromShape(outShape);
    addon.binary(
      backend.typedArrayFromHeap(a),
      backend.typedArrayFromHeap(b),
      backend.typedArrayFromHeap(out),
      Int32Array.of(code, n, periodA, periodB),
    );
    return out;
  };
}

/** Unary op codes of the addon (native/ablate_native.cc, UnaryOp). */
const unaryCodes = { [Relu]: 0, [Step]: 1, [Sqrt]: 2, [Square]: 3, [Neg]: 4, [Abs]: 5 } as const;

function unaryKernel(addon: NativeAddon, backend: WasmBackend, code: number, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return fallback(args);
    const out = backend.makeOutput([...x.shape], 'float32');
    const alpha = code === unaryCodes[Step] ? ((args.attrs as unknown as StepAttrs).alpha ?? 0) : 0;
    addon.unary(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), Int32Array.of(code, util.sizeFromShape(x.shape)), alpha);
    return out;
  };
}

/** relu's gradient in one kernel: dy · step(x) (native/ablate_native.cc, ReluGrad). */
const RELU_GRAD_KERNEL = 'AblateReluGrad';

function reluGradKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs }) => {
    const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
    const dx = backend.makeOutput([...x.shape], 'float32');
    addon.reluGrad(
      backend.typedArrayFromHeap(dy),
      backend.typedArrayFromHeap(x),
      backend.typedArrayFromHeap(dx),
      Int32Array.of(util.sizeFromShape(x.shape)),
    );
    return dx;
  };
}

/** The addon's biasRelu codes (native/ablate_native.cc, Activation). */
const layerActivationCodes = { linear: 0, relu: 1 } as const;

/** One conv layer, bias and activation in one kernel (fused-conv.ts): the convolution, then the epilogue in place. */
function convLayerKernel(addon: NativeAddon, backend: WasmBackend, transposed: boolean): KernelFunc {
  return ({ inputs, attrs }) => {
    const { x, filter, bias } = inputs as { x: TensorInfo; filter: TensorInfo; bias: TensorInfo };
    const a = attrs as unknown as FusedLayerAttrs;
    const convAttrs = { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined } as const;
    let y: TensorInfo;
    if (transposed) {
      // conv2dTranspose(x) is the input gradient of a conv2d whose output has x's shape.
      const info = convInfo(a.outputShape!, filter.shape, convAttrs);
      y = backend.makeOutput([...a.outputShape!], 'float32');
      addon.conv2dBackwardData(
        backend.typedArrayFromHeap(x),
        backend.typedArrayFromHeap(filter),
        backend.typedArrayFromHeap(y),
        convShape(info),
      );
    } else {
      y = convForward(addon, backend, x, filter, convAttrs);
    }
    const channels = y.shape[3]!;
    addon.biasRelu(
      backend.typedArrayFromHeap(y),
      backend.typedArrayFromHeap(bias),
      Int32Array.of(util.sizeFromShape(y.shape) / channels, channels, layerActivationCodes[a.activation]),
    );
    return y;
  };
}

/** Inputs dy, y → outputs [dz, dBias] (native/ablate_native.cc, ReluGradSum). */
function reluGradSumKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs }) => {
    const { dy, y } = inputs as { dy: TensorInfo; y: TensorInfo };
    const channels = y.shape[y.shape.length - 1]!;
    const dz = backend.makeOutput([...y.shape], 'float32');
    const dBias = backend.makeOutput([channels], 'float32');
    addon.reluGradSum(
      backend.typedArrayFromHeap(dy),
      backend.typedArrayFromHeap(y),
      backend.typedArrayFromHeap(dz),
      backend.typedArrayFromHeap(dBias),
      Int32Array.of(util.sizeFromShape(y.shape) / channels, channels),
    );
    return [dz, dBias];
  };
}

/** Inputs value, m, v, g → outputs [value', m', v'] (native/ablate_native.cc, Adam). */
function adamKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs, attrs }) => {
    const { value, m, v, g } = inputs as { value: TensorInfo; m: TensorInfo; v: TensorInfo; g: TensorInfo };
    const outputs = [value, m, v].map((t) => backend.makeOutput([...t.shape], 'float32'));
    addon.adam(
      backend.typedArrayFromHeap(value),
      backend.typedArrayFromHeap(m),
      backend.typedArrayFromHeap(v),
      backend.typedArrayFromHeap(g),
      ...(outputs.map((t) => backend.typedArrayFromHeap(t)) as [Float32Array, Float32Array, Float32Array]),
      Int32Array.of(util.sizeFromShape(value.shape)),
      (attrs as unknown as AdamAttrs).scalars,
    );
    return outputs;
  };
}

/** [images, pixels] of a tensor whose first axis is the image. */
function imagesAndPixels(t: TensorInfo): Int32Array {
  const images = t.shape[0]!;
  return Int32Array.of(images, images === 0 ? 0 : util.sizeFromShape(t.shape) / images);
}

/** Inputs logits, x [N, ...] → [N] (native/ablate_native.cc, BernoulliNll). */
function bernoulliNllKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs }) => {
    const { logits, x } = inputs as { logits: TensorInfo; x: TensorInfo };
    const out = backend.makeOutput([logits.shape[0]!], 'float32');
    addon.bernoulliNll(
      backend.typedArrayFromHeap(logits),
      backend.typedArrayFromHeap(x),
      backend.typedArrayFromHeap(out),
      imagesAndPixels(logits),
    );
    return out;
  };
}

/** Inputs dy [N], logits, x [N, ...] → ∂/∂logits (native/ablate_native.cc, BernoulliNllGrad). */
function bernoulliNllGradKernel(addon: NativeAddon, backend: WasmBackend): KernelFunc {
  return ({ inputs }) => {
    const { dy, logits, x } = inputs as { dy: TensorInfo; logits: TensorInfo; x: TensorInfo };
    const dLogits = backend.makeOutput([...logits.shape], 'float32');
    addon.bernoulliNllGrad(
      backend.typedArrayFromHeap(dy),
      backend.typedArrayFromHeap(logits),
      backend.typedArrayFromHeap(x),
      backend.typedArrayFromHeap(dLogits),
      imagesAndPixels(logits),
    );
    return dLogits;
  };
}

let registered = false;

/** Registers the addon's kernels for the wasm backend, in place of wasm's where it has one (once per process). */
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
  for (const [name, code] of Object.entries(binaryCodes))
    replace(name, binaryKernel(addon, wasm, code, getKernel(name, 'wasm')!.kernelFunc));
  for (const [name, code] of Object.entries(unaryCodes)) replace(name, unaryKernel(addon, wasm, code, getKernel(name, 'wasm')!.kernelFunc));
  replace(ADAM_KERNEL, adamKernel(addon, wasm));
  replace(RELU_GRAD_KERNEL, reluGradKernel(addon, wasm));
  replace(CONV_LAYER_KERNEL, convLayerKernel(addon, wasm, false));
  replace(DECONV_LAYER_KERNEL, convLayerKernel(addon, wasm, true));
  replace(RELU_GRAD_SUM_KERNEL, reluGradSumKernel(addon, wasm));
  replace(BERNOULLI_NLL_KERNEL, bernoulliNllKernel(addon, wasm));
  replace(BERNOULLI_NLL_GRAD_KERNEL, bernoulliNllGradKernel(addon, wasm));
  registerFusedConvGradients({ registerGradient, engine, sum, Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter });
  registerBernoulliNllGradient({ registerGradient, engine, mul, neg, reshape });
  // tfjs's own gradient is mul(dy, cast(step(x))): three passes and kernel calls for one product.
  // Gradients are registered for every backend: on another one (a process may switch, as the
  // parity tests do), or for a tensor that is not float32, tfjs's composition runs instead.
  registerGradient({
    kernelName: Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const x = saved[0]!;
      const g = dy as Tensor;
      const fused = x.dtype === 'float32' && g.dtype === 'float32' && getKernel(RELU_GRAD_KERNEL, getBackend()) !== undefined;
      return { x: () => (fused ? (engine().runKernel(RELU_GRAD_KERNEL, { dy: g, x }) as Tensor) : mul(g, cast(step(x), 'float32'))) };
    },
  });
}

/** Names of the kernels registerNativeKernels replaces, for `ablate doctor`. */
export const nativeKernelNames = [
  Conv2D,
  FusedConv2D,
  Conv2DBackpropInput,
  Conv2DBackpropFilter,
  BatchMatMul,
  _FusedMatMul,
  Sum,
  ...Object.keys(binaryCodes),
  ...Object.keys(unaryCodes),
  ADAM_KERNEL,
  RELU_GRAD_KERNEL,
  CONV_LAYER_KERNEL,
  DECONV_LAYER_KERNEL,
  RELU_GRAD_SUM_KERNEL,
  BERNOULLI_NLL_KERNEL,
  BERNOULLI_NLL_GRAD_KERNEL,
] as const;
