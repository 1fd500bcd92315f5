/**
 * Convolution layers whose bias and relu run inside the convolution's kernel while a training
 * step records gradients. tfjs-layers' Conv2D hands bias and activation to tfjs-core's fused
 * conv2d, which unfuses them whenever gradients are recorded (`shouldFuse`), and Conv2DTranspose
 * never fuses them; either way each layer costs a convolution, an Add and a Relu forward, and a
 * ReluGrad and a Sum backward: four extra passes over its activations per step. Here a layer
 * is one kernel each way:
 *   forward   y = act(conv(x, W) + b)            CONV_LAYER_KERNEL / DECONV_LAYER_KERNEL
 *   backward  dz = dy · act'(y), db = Σ dz       RELU_GRAD_SUM_KERNEL (for relu; linear: dz = dy)
 *             then the convolution's own gradients of dz, as tfjs computes them.
 * Only the native route registers these kernels (native-kernels.ts); every other route keeps
 * the layers' own call. The kernels perform the same float32 operations in the same order as
 * the ops they replace, so a model trains to the same bits as before the fusion
 * (test/fused-conv.test.ts compares both, forward and every gradient).
 * The layers stay tfjs-layers' Conv2D and Conv2DTranspose: model.json keeps their class names
 * and any tfjs or Keras loader reads the saved models.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import type { Tf } from './backend.js';

/** y = act(conv2d(x, filter) + bias); inputs x, filter, bias; attrs FusedLayerAttrs. */
export const CONV_LAYER_KERNEL = 'AblateConv2DLayer';
/** y = act(conv2dTranspose(x, filter) + bias); inputs x, filter, bias; attrs FusedLayerAttrs with outputShape. */
export const DECONV_LAYER_KERNEL = 'AblateConv2DTransposeLayer';
/** [dz, dBias] of y = relu(z): inputs dy, y, both [..., C]; dz = dy · step(y), dBias [C] = Σ dz over the other axes. */
export const RELU_GRAD_SUM_KERNEL = 'AblateReluGradSum';

export type FusedActivation = 'linear' | 'relu';

export interface FusedLayerAttrs {
  readonly strides: [number, number];
  readonly pad: 'same' | 'valid';
  readonly activation: FusedActivation;
  /** The transposed convolution's output [N, H, W, C] (its forward is conv2d's input gradient). */
  readonly outputShape?: [number, number, number, number];
}

/** The part of tfjs-core the gradients use. */
type Core = Pick<typeof TfCore, 'registerGradient' | 'engine' | 'sum' | 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter'>;

/**
 * dz and dBias of a fused layer, computed once for its three inputs' gradients: in gradFunc,
 * not in a closure, since the tape disposes what each closure makes except what it returns.
 */
function activationGradient(core: Core, dy: TfCore.Tensor, y: TfCore.Tensor, activation: FusedActivation) {
  if (activation === 'linear') return { dz: dy, dBias: core.sum(dy, [0, 1, 2]) };
  const [dz, dBias] = core.engine().runKernel(RELU_GRAD_SUM_KERNEL, { dy, y }) as TfCore.Tensor[];
  return { dz: dz!, dBias: dBias! };
}

/**
 * The two layer kernels' gradients, as tfjs-core's conv2d, conv2dTranspose, Add and Relu
 * gradients compose them (the same kernels on the same tensors). Each input's gradient is a
 * closure the tape calls only when something needs it (the first layer's image needs none).
 */
export function registerFusedConvGradients(core: Core): void {
  for (const transposed of [false, true])
    core.registerGradient({
      kernelName: transposed ? DECONV_LAYER_KERNEL : CONV_LAYER_KERNEL,
      inputsToSave: ['x', 'filter'],
      outputsToSave: [true],
      gradFunc: (dy, saved, attrs) => {
        const [x, filter, y] = saved as [TfCore.Tensor4D, TfCore.Tensor4D, TfCore.Tensor4D];
        const a = attrs as unknown as FusedLayerAttrs;
        const { dz, dBias } = activationGradient(core, dy as TfCore.Tensor, y, a.activation);
        const run = (kernel: string, inputs: TfCore.NamedTensorMap, extra: object) =>
          core.engine().runKernel(kernel, inputs, {
            strides: a.strides,
            pad: a.pad,
            dataFormat: 'NHWC',
            ...extra,
          } as TfCore.NamedAttrMap) as TfCore.Tensor;
        const filterShape = { filterShape: filter.shape };
        // A transposed convolution is conv2d's input gradient: its gradients are a conv2d and a filter gradient with x and dz swapped.
        return transposed
          ? {
              x: () => run(core.Conv2D, { x: dz, filter }, { dilations: 1 }),
              filter: () => run(core.Conv2DBackpropFilter, { x: dz, dy: x }, filterShape),
              bias: () => dBias,
            }
          : {
              x: () => run(core.Conv2DBackpropInput, { dy: dz, filter }, { inputShape: x.shape }),
              filter: () => run(core.Conv2DBackpropFilter, { x, dy: dz }, filterShape),
              bias: () => dBias,
            };
      },
    });
}

/** What a conv layer's config must say for the fused kernels to compute exactly its call. */
function fusableAttrs(config: TfCore.serialization.ConfigDict): Omit<FusedLayerAttrs, 'outputShape'> | undefined {
  const pair = (v: unknown) => (Array.isArray(v) ? (v as number[]) : [v as number, v as number]);
  const [sh, sw] = pair(config.strides);
  const dilations = pair(config.dilationRate ?? 1);
  const { padding, activation } = config;
  if (config.dataFormat !== 'channelsLast' || config.useBias !== true || dilations.some((d) => d !== 1)) return undefined;
  if ((padding !== 'same' && padding !== 'valid') || (activation !== 'relu' && activation !== 'linear')) return undefined;
  return { strides: [sh!, sw!], pad: padding, activation };
}

/** A transposed convolution's output side, as tfjs-layers computes it (deconvLength). */
function deconvSide(side: number, stride: number, kernel: number, pad: 'same' | 'valid'): number {
  return pad === 'same' ? side * stride : side * stride + Math.max(kernel - stride, 0);
}

/**
 * Gives a Conv2D or Conv2DTranspose layer the fused kernels where the backend has them. A
 * Conv2D keeps its own call where tfjs already runs one fused oneDNN kernel, bias and
 * activation as post-ops (bits of their own): outside gradient recording, and for a linear
 * activation always. A transposed one always takes the fused kernel, whose bits equal its
 * own three ops'.
 */
export function withFusedKernels<L extends TfLayers.layers.Layer>(tf: Tf, layer: L, transposed: boolean): L {
  const attrs = fusableAttrs(layer.getConfig());
  if (!attrs || (!transposed && attrs.activation !== 'relu')) return layer;
  const core = tf.core;
  const kernelName = transposed ? DECONV_LAYER_KERNEL : CONV_LAYER_KERNEL;
  const own = layer.call.bind(layer);
  layer.call = (inputs, kwargs) => {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as TfCore.Tensor4D;
    const fused =
      x.rank === 4 &&
      x.dtype === 'float32' &&
      (transposed || core.engine().state.gradientDepth > 0) &&
      core.getKernel(kernelName, core.getBackend()) !== undefined;
    if (!fused) return own(inputs, kwargs);
    const [filter, bias] = layer.weights.map((w) => w.read()) as [TfCore.Tensor4D, TfCore.Tensor1D];
    const [kh, kw, outChannels] = filter.shape;
    const outputShape: FusedLayerAttrs['outputShape'] = transposed
      ? [
          x.shape[0],
          deconvSide(x.shape[1], attrs.strides[0], kh, attrs.pad),
          deconvSide(x.shape[2], attrs.strides[1], kw, attrs.pad),
          outChannels,
        ]
      : undefined;
    const layerAttrs: FusedLayerAttrs = outputShape ? { ...attrs, outputShape } : attrs;
    return core.engine().runKernel(kernelName, { x, filter, bias }, layerAttrs as unknown as TfCore.NamedAttrMap) as TfCore.Tensor;
  };
  return layer;
}
