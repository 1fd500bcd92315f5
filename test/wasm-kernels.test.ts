import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-layers registers every gradient (tfjs-core alone registers none).
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../src/ml/wasm-kernels.js';

/** Deterministic pseudo-random values in [−1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Max |a−b| / max(1, max|b|): relative to the result's scale, as the issue asks (< 1e-5). */
function relativeError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

async function onBoth(run: () => tf.Tensor): Promise<{ cpu: Float32Array; wasm: Float32Array }> {
  await tf.setBackend('cpu');
  const cpu = tf.tidy(run).dataSync() as Float32Array;
  await tf.setBackend('wasm');
  registerWasmTrainingKernels(tf.backend());
  const wasm = tf.tidy(run).dataSync() as Float32Array;
  return { cpu, wasm };
}

interface ConvCase {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: [number, number];
  s: [number, number];
  pad: 'same' | 'valid';
}

const cases: ConvCase[] = [
  { n: 2, h: 28, w: 28, ci: 1, co: 32, k: [3, 3], s: [2, 2], pad: 'same' },
  { n: 3, h: 14, w: 14, ci: 32, co: 64, k: [3, 3], s: [2, 2], pad: 'same' },
  { n: 2, h: 7, w: 7, ci: 64, co: 64, k: [3, 3], s: [1, 1], pad: 'same' },
  { n: 1, h: 9, w: 11, ci: 3, co: 5, k: [3, 2], s: [2, 3], pad: 'valid' },
  { n: 2, h: 13, w: 8, ci: 4, co: 6, k: [5, 3], s: [3, 2], pad: 'same' },
  { n: 1, h: 6, w: 6, ci: 2, co: 3, k: [1, 1], s: [1, 1], pad: 'valid' },
  { n: 2, h: 32, w: 32, ci: 1, co: 8, k: [3, 3], s: [2, 2], pad: 'same' },
];

describe('wasm training kernels match the cpu backend (relative error < 1e-5)', () => {
  for (const [index, c] of cases.entries()) {
    const label = `${c.n}×${c.h}×${c.w}×${c.ci} → ${c.co}, kernel ${c.k.join('×')}, stride ${c.s.join('×')}, ${c.pad}`;
    const xShape: [number, number, number, number] = [c.n, c.h, c.w, c.ci];
    const wShape: [number, number, number, number] = [c.k[0], c.k[1], c.ci, c.co];
    const outH = c.pad === 'same' ? Math.ceil(c.h / c.s[0]) : Math.ceil((c.h - c.k[0] + 1) / c.s[0]);
    const outW = c.pad === 'same' ? Math.ceil(c.w / c.s[1]) : Math.ceil((c.w - c.k[1] + 1) / c.s[1]);
    const dyShape: [number, number, number, number] = [c.n, outH, outW, c.co];
    const x = values(xShape.reduce((a, b) => a * b), 1 + index);
    const w = values(wShape.reduce((a, b) => a * b), 100 + index);
    const dy = values(dyShape.reduce((a, b) => a * b), 200 + index);

    it(`Conv2D forward (reference check) ${label}`, async () => {
      const r = await onBoth(() => tf.conv2d(tf.tensor4d(x, xShape), tf.tensor4d(w, wShape), c.s, c.pad));
      assert.ok(relativeError(r.wasm, r.cpu) < 1e-5);
    });
    it(`Conv2DBackpropFilter (dW) ${label}`, async () => {
      const r = await onBoth(() =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(x, xShape), dy: tf.tensor4d(dy, dyShape) }, { strides: c.s, pad: c.pad, dataFormat: 'NHWC', filterShape: wShape }) as tf.Tensor,
      );
      const error = relativeError(r.wasm, r.cpu);
      assert.ok(error < 1e-5, `relative error ${error}`);
    });
    it(`Conv2DBackpropInput (dx) ${label}`, async () => {
      const r = await onBoth(() =>
        tf.engine().runKernel('Conv2DBackpropInput', { dy: tf.tensor4d(dy, dyShape), filter: tf.tensor4d(w, wShape) }, { strides: c.s, pad: c.pad, dataFormat: 'NHWC', inputShape: xShape }) as tf.Tensor,
      );
      const error = relativeError(r.wasm, r.cpu);
      assert.ok(error < 1e-5, `relative error ${error}`);
    });
  }

  for (const [ta, tb] of [
    [true, false],
    [false, true],
    [true, true],
    [false, false],
  ] as const) {
    it(`BatchMatMul transposeA=${ta} transposeB=${tb}`, async () => {
      const a = values(2 * 37 * 19, 7);
      const b = values(2 * 19 * 23, 8);
      const aShape: [number, number, number] = ta ? [2, 19, 37] : [2, 37, 19];
      const bShape: [number, number, number] = tb ? [2, 23, 19] : [2, 19, 23];
      const r = await onBoth(() => tf.matMul(tf.tensor3d(a, aShape), tf.tensor3d(b, bShape), ta, tb));
      assert.ok(relativeError(r.wasm, r.cpu) < 1e-5);
    });
  }

  it('gradients through a conv → dense network agree', async () => {
    const xs = values(4 * 28 * 28, 11);
    const w1 = values(3 * 3 * 1 * 8, 12);
    const w2 = values(14 * 14 * 8 * 5, 13);
    const grads = () => {
      const x = tf.tensor4d(xs, [4, 28, 28, 1]);
      const f1 = tf.variable(tf.tensor4d(w1, [3, 3, 1, 8]));
      const f2 = tf.variable(tf.tensor2d(w2, [14 * 14 * 8, 5]));
      const { grads: g } = tf.variableGrads(() => tf.sum(tf.square(tf.matMul(tf.reshape(tf.relu(tf.conv2d(x, f1, 2, 'same')), [4, -1]), f2))), [f1, f2]);
      return tf.concat([tf.reshape(g[f1.name]!, [-1]), tf.reshape(g[f2.name]!, [-1])]);
    };
    const r = await onBoth(grads);
    assert.ok(relativeError(r.wasm, r.cpu) < 1e-5, `relative error ${relativeError(r.wasm, r.cpu)}`);
  });
});
