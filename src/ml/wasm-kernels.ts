/**
 * Training kernels for the tfjs wasm backend. Stock wasm has no Conv2DBackpropFilter (so it
 * cannot train a conv net at all), and its Conv2DBackpropInput and transposed BatchMatMul
 * are scalar loops. Each kernel here is rewritten in terms of wasm's fast XNNPACK-backed
 * kernels (Conv2D, BatchMatMul, Transpose, PadV2, Slice), so the heavy lifting stays in SIMD
 * code; JavaScript only moves memory where no kernel does (sub-kernels, interleaving phases).
 * Every kernel is tested against the cpu backend (test/wasm-kernels.test.ts).
 * Identity and a cast to the tensor's own dtype share the input's buffer, as they do on the
 * cpu backend, instead of copying it: tensors are immutable (a Variable's assign swaps its
 * buffer, it never writes into one), and a training step made ~30 such copies of activations.
 */
import {
  backend_util,
  BatchMatMul,
  Cast,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  getKernel,
  Identity,
  registerKernel,
  unregisterKernel,
  type BatchMatMulAttrs,
  type CastAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

/** The part of the wasm backend these kernels use (it is not exported as a type we can import cheaply). */
interface WasmBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
}

type Call = (name: string, inputs: NamedTensorInfoMap, attrs?: NamedAttrMap) => TensorInfo;

/** Runs another registered wasm kernel on TensorInfos. */
function caller(backend: WasmBackend, original: ReadonlyMap<string, KernelFunc>): Call {
  return (name, inputs, attrs = {}) => {
    const kernel = original.get(name) ?? getKernel(name, 'wasm')?.kernelFunc;
    if (!kernel) throw new Error(`wasm kernel ${name} is not registered`);
    return kernel({ inputs, attrs, backend: backend as never }) as TensorInfo;
  };
}

/**
 * dW[p,q,ci,co] = Σ_{b,i,j} xpad[b, p + s·i, q + s·j, ci] · dy[b,i,j,co]
 * is a convolution of x (batch ↔ channels swapped) with dy as the filter, dilated by the
 * stride: conv2d(transpose(xpad) [ci,H,W,b], transpose(dy) [OH,OW,b,co], dilation s) →
 * [ci,KH,KW,co], then cropped to the filter size and transposed to [KH,KW,ci,co].
 */
function conv2DBackpropFilterKernel(call: Call, backend: WasmBackend): KernelFunc {
  return ({ inputs, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
    if (dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
    const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
    const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow, inHeight, inWidth } = info;
    const needH = kh + sh * (oh - 1);
    const needW = kw + sw * (ow - 1);
    const padded = call(
      'PadV2',
      { x },
      {
        paddings: [
          [0, 0],
          [info.padInfo.top, Math.max(0, needH - inHeight - info.padInfo.top)],
          [info.padInfo.left, Math.max(0, needW - inWidth - info.padInfo.left)],
          [0, 0],
        ],
        constantValue: 0,
      },
    );
    const xT = call('Transpose', { x: padded }, { perm: [3, 1, 2, 0] });
    const dyT = call('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const conv = call(
      'Conv2D',
      { x: xT, filter: dyT },
      { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [sh, sw], dimRoundingMode: undefined as never },
    );
    const cropped = call('Slice', { x: conv }, { begin: [0, 0, 0, 0], size: [-1, kh, kw, -1] });
    const dW = call('Transpose', { x: cropped }, { perm: [1, 2, 0, 3] });
    for (const t of [padded, xT, dyT, conv, cropped]) backend.disposeData(t.dataId);
    return dW;
  };
}

/**
 * dx by phase decomposition. Along one axis, dx[u] = Σ_k dy[m − k]·W[r + s·k] with
 * r = (u + pad) mod s and m = ⌊(u + pad) / s⌋: each of the s×s output phases is a stride-1
 * "full" convolution of dy with the sub-kernel W[r::s] (flipped, in/out channels swapped),
 * done by wasm's Conv2D on dy padded by the sub-kernel size − 1; JS then interleaves the
 * phases into dx, copying whole channel runs. Unlike zero insertion, no multiply-add is spent
 * on zeros (for stride 2: a quarter of the work).
 */
function conv2DBackpropInputKernel(call: Call, backend: WasmBackend): KernelFunc {
  return ({ inputs, attrs }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
    if (dataFormat !== 'NHWC') throw new Error('Conv2DBackpropInput on wasm supports NHWC only');
    const info = backend_util.computeConv2DInfo(
      inputShape,
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const {
      batchSize: n,
      strideHeight: sh,
      strideWidth: sw,
      filterHeight: kh,
      filterWidth: kw,
      outHeight: oh,
      outWidth: ow,
      outChannels: co,
      inChannels: ci,
      inHeight,
      inWidth,
    } = info;
    const { top, left } = info.padInfo;
    const dx = backend.makeOutput([n, inHeight, inWidth, ci], 'float32');
    backend.typedArrayFromHeap(dx).fill(0);
    for (let rh = 0; rh < sh; rh++) {
      const khr = Math.ceil((kh - rh) / sh);
      for (let rw = 0; rw < sw; rw++) {
        const kwr = Math.ceil((kw - rw) / sw);
        if (khr <= 0 || kwr <= 0) continue;
        // Sub-kernel W[rh::sh, rw::sw], flipped spatially, as [khr, kwr, co, ci].
        const sub = backend.makeOutput([khr, kwr, co, ci], 'float32');
        {
          const w = backend.typedArrayFromHeap(filter);
          const out = backend.typedArrayFromHeap(sub);
          for (let a = 0; a < khr; a++) {
            for (let b = 0; b < kwr; b++) {
              const p = rh + sh * (khr - 1 - a);
              const q = rw + sw * (kwr - 1 - b);
              for (let i = 0; i < ci; i++) {
                for (let o = 0; o < co; o++) out[((a * kwr + b) * co + o) * ci + i] = w[((p * kw + q) * ci + i) * co + o]!;
              }
            }
          }
        }
        const padded = call(
          'PadV2',
          { x: dy },
          {
            paddings: [
              [0, 0],
              [khr - 1, khr - 1],
              [kwr - 1, kwr - 1],
              [0, 0],
            ],
            constantValue: 0,
          },
        );
        const phase = call(
          'Conv2D',
          { x: padded, filter: sub },
          { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined as never },
        );
        // phase[b, m, k] → dx[b, m·sh + rh − top, k·sw + rw − left] where inside dx.
        const ph = oh + khr - 1;
        const pw = ow + kwr - 1;
        const src = backend.typedArrayFromHeap(phase);
        const dst = backend.typedArrayFromHeap(dx);
        for (let b = 0; b < n; b++) {
          for (let m = 0; m < ph; m++) {
            const u = m * sh + rh - top;
            if (u < 0 || u >= inHeight) continue;
            for (let k = 0; k < pw; k++) {
              const v = k * sw + rw - left;
              if (v < 0 || v >= inWidth) continue;
              const from = ((b * ph + m) * pw + k) * ci;
              dst.set(src.subarray(from, from + ci), ((b * inHeight + u) * inWidth + v) * ci);
            }
          }
        }
        for (const t of [sub, padded, phase]) backend.disposeData(t.dataId);
      }
    }
    return dx;
  };
}

/** Transposes operands explicitly (wasm Transpose is fast) and calls the fast untransposed BatchMatMul. */
function batchMatMulKernel(call: Call, backend: WasmBackend, original: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    if (!transposeA && !transposeB) return original(args);
    const swapLast = (t: TensorInfo) => {
      const perm = t.shape.map((_, i) => i);
      [perm[perm.length - 1], perm[perm.length - 2]] = [perm[perm.length - 2]!, perm[perm.length - 1]!];
      return call('Transpose', { x: t }, { perm });
    };
    const a2 = transposeA ? swapLast(a) : a;
    const b2 = transposeB ? swapLast(b) : b;
    const out = original({
      ...args,
      inputs: { a: a2, b: b2 },
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    }) as TensorInfo;
    if (transposeA) backend.disposeData(a2.dataId);
    if (transposeB) backend.disposeData(b2.dataId);
    return out;
  };
}

/** The input itself, under one more reference (wasm's own Identity copies it). */
function sharedIdentityKernel(backend: WasmBackend, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return fallback(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

/** A cast to the dtype a tensor already has (relu's gradient casts step's float32 output) shares it. */
function castKernel(identity: KernelFunc, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    return x.dtype === (args.attrs as unknown as CastAttrs).dtype ? identity(args) : fallback(args);
  };
}

let registered = false;

/** Registers these kernels on the wasm backend (once per process). */
export function registerWasmTrainingKernels(backend: object): void {
  if (registered) return;
  registered = true;
  const wasm = backend as WasmBackend;
  const originalBatchMatMul = getKernel(BatchMatMul, 'wasm')!.kernelFunc;
  const originals = new Map<string, KernelFunc>([[BatchMatMul, originalBatchMatMul]]);
  const call = caller(wasm, originals);
  const replace = (name: string, kernelFunc: KernelFunc) => {
    if (getKernel(name, 'wasm')) unregisterKernel(name, 'wasm');
    registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  };
  replace(Conv2DBackpropFilter, conv2DBackpropFilterKernel(call, wasm));
  replace(Conv2DBackpropInput, conv2DBackpropInputKernel(call, wasm));
  replace(BatchMatMul, batchMatMulKernel(call, wasm, originalBatchMatMul));
  const identity = sharedIdentityKernel(wasm, getKernel(Identity, 'wasm')!.kernelFunc);
  replace(Identity, identity);
  replace(Cast, castKernel(identity, getKernel(Cast, 'wasm')!.kernelFunc));
}
