import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import { loadTf, type Tf } from '../src/ml/backend.js';
import { CONV_LAYER_KERNEL, DECONV_LAYER_KERNEL, RELU_GRAD_SUM_KERNEL, withFusedKernels } from '../src/ml/fused-conv.js';
import { loadNativeAddon } from '../src/ml/native-addon.js';

interface LayerCase {
  readonly transposed: boolean;
  readonly input: [number, number, number, number];
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: 'same' | 'valid';
  readonly activation: 'relu' | 'linear' | 'sigmoid';
}

const cases: LayerCase[] = [
  { transposed: false, input: [5, 12, 12, 3], filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' },
  { transposed: false, input: [3, 9, 11, 4], filters: 6, kernelSize: 3, strides: 1, padding: 'valid', activation: 'linear' },
  { transposed: true, input: [5, 6, 6, 8], filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' },
  { transposed: true, input: [3, 7, 5, 6], filters: 1, kernelSize: 3, strides: 1, padding: 'same', activation: 'linear' },
  { transposed: true, input: [2, 5, 4, 3], filters: 5, kernelSize: 4, strides: 2, padding: 'valid', activation: 'relu' },
  // The layers' own call: tfjs runs a linear Conv2D as one FusedConv2D even under a gradient tape; sigmoid is not fused.
  { transposed: false, input: [2, 9, 9, 3], filters: 4, kernelSize: 3, strides: 1, padding: 'same', activation: 'sigmoid' },
  { transposed: true, input: [2, 4, 4, 3], filters: 2, kernelSize: 3, strides: 2, padding: 'same', activation: 'sigmoid' },
];

/** Deterministic values in [−1, 1), a quarter of them exactly 0 (relu's edge). */
function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, (_, i) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return i % 4 === 0 ? 0 : s / 2 ** 30 - 1;
  });
}

function label(c: LayerCase): string {
  const kind = c.transposed ? 'Conv2DTranspose' : 'Conv2D';
  return `${kind} ${c.input.join('×')} → ${c.filters}, k${c.kernelSize} s${c.strides} ${c.padding} ${c.activation}`;
}

/** The layer built on x's shape, its weights set to fixed values. */
function makeLayer(tf: Tf, c: LayerCase, fused: boolean, name: string): TfLayers.layers.Layer {
  const args = {
    name,
    filters: c.filters,
    kernelSize: c.kernelSize,
    strides: c.strides,
    padding: c.padding,
    activation: c.activation,
  };
  const layer = c.transposed ? tf.layers.layers.conv2dTranspose(args) : tf.layers.layers.conv2d(args);
  layer.build(c.input);
  layer.setWeights(
    layer.weights.map((w, i) =>
      tf.core.tensor(
        values(
          (w.shape as number[]).reduce((a, b) => a * b, 1),
          7 + i,
        ),
        w.shape as number[],
      ),
    ),
  );
  return fused ? withFusedKernels(tf, layer, c.transposed) : layer;
}

/** The layer's output, and the gradients of Σ y·probe with respect to x, the filter and the bias. */
async function forwardAndGradients(tf: Tf, layer: TfLayers.layers.Layer, c: LayerCase, seed: number) {
  const core = tf.core;
  const x = core.variable(
    core.tensor(
      values(
        c.input.reduce((a, b) => a * b, 1),
        seed,
      ),
      c.input,
    ),
    true,
  );
  const [kernel, bias] = layer.weights.map((w) => w.read() as TfCore.Variable);
  const outShape = (layer.apply(x) as TfCore.Tensor).shape;
  const probe = core.tensor(
    values(
      outShape.reduce((a, b) => a * b, 1),
      seed + 1,
    ),
    outShape,
  );
  const profile = await core.profile(() => {
    const { value, grads } = core.variableGrads(() => core.sum(core.mul(layer.apply(x) as TfCore.Tensor, probe)), [x, kernel!, bias!]);
    return [value, grads[x.name]!, grads[kernel!.name]!, grads[bias!.name]!];
  });
  const { value, grads } = core.variableGrads(() => core.sum(core.mul(layer.apply(x) as TfCore.Tensor, probe)), [x, kernel!, bias!]);
  const inference = layer.apply(x) as TfCore.Tensor;
  const bits = (t: TfCore.Tensor) => Buffer.from((t.dataSync() as Float32Array).buffer);
  return {
    kernels: profile.kernelNames,
    inference: bits(inference),
    loss: bits(value),
    dx: bits(grads[x.name]!),
    dFilter: bits(grads[kernel!.name]!),
    dBias: bits(grads[bias!.name]!),
  };
}

const loaded = loadNativeAddon();
const skip = 'error' in loaded && !process.env.ABLATE_REQUIRE_NATIVE ? loaded.error : false;

for (const threads of [1, 2]) {
  describe(`fused conv layers on the native kernels, ${threads} thread(s): the same bits as tfjs-layers' own`, () => {
    cases.forEach((c, i) => {
      it(label(c), { skip }, async () => {
        const tf = await loadTf('native', threads);
        const own = await forwardAndGradients(tf, makeLayer(tf, c, false, `own${threads}_${i}`), c, 100 + i);
        const fused = await forwardAndGradients(tf, makeLayer(tf, c, true, `fused${threads}_${i}`), c, 100 + i);
        for (const key of ['inference', 'loss', 'dx', 'dFilter', 'dBias'] as const)
          assert.ok(own[key].equals(fused[key]), `${key} differs between the fused and the unfused layer`);
        const fusable = c.activation === 'relu' || (c.transposed && c.activation === 'linear');
        const layerKernel = c.transposed ? DECONV_LAYER_KERNEL : CONV_LAYER_KERNEL;
        assert.equal(fused.kernels.includes(layerKernel), fusable, `kernels run: ${fused.kernels.join(', ')}`);
        assert.ok(!own.kernels.includes(layerKernel));
        if (fusable) {
          // What the fusion removes: the bias Add and, for relu, the activation and its gradient.
          assert.ok(own.kernels.includes('Add') && !fused.kernels.includes('Add'), fused.kernels.join(', '));
          if (c.activation === 'relu') {
            assert.ok(own.kernels.includes('Relu') && !fused.kernels.includes('Relu'), fused.kernels.join(', '));
            assert.ok(fused.kernels.includes(RELU_GRAD_SUM_KERNEL), fused.kernels.join(', '));
          }
        }
      });
    });
  });
}
