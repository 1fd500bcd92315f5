// The Bernoulli loss as a training step and an evaluation call it: through bceFromLogits on
// the native route, which must run the two fused kernels (the addon's own checks of them are
// in native-kernels.test.ts) and give tfjs's gradient of the exact formula. Its own process,
// since a process loads TensorFlow.js with one backend.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Tensor } from '@tensorflow/tfjs-core';
import { loadTf } from '../src/ml/backend.js';
import { BERNOULLI_NLL_GRAD_KERNEL, BERNOULLI_NLL_KERNEL } from '../src/ml/bernoulli-nll.js';
import { loadNativeAddon } from '../src/ml/native-addon.js';
import { bceFromLogits } from '../src/ml/vae/loss.js';
import { bernoulliSlope, bernoulliTerm } from './helpers.js';

const nativeMissing = 'error' in loadNativeAddon() && !process.env.ABLATE_REQUIRE_NATIVE ? 'native kernels not built' : false;

describe('the Bernoulli loss on the native route', () => {
  it('runs as the two fused kernels, value and gradient to float rounding of the exact formula', { skip: nativeMissing }, async () => {
    const { core } = await loadTf('native', 2);
    const logits = core.randomNormal([16, 28, 28, 1], 0, 4, 'float32', 3);
    const x = core.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 4);
    const lossAndGrad = core.valueAndGrad((l: Tensor) => core.sum(bceFromLogits(core, l, x)));
    const profile = await core.profile(() => {
      const { value, grad } = lossAndGrad(logits);
      return [value, grad];
    });
    const ran = profile.kernels.map((k) => k.name);
    assert.ok(ran.includes(BERNOULLI_NLL_KERNEL) && ran.includes(BERNOULLI_NLL_GRAD_KERNEL), ran.join(' '));
    assert.ok(!ran.includes('Log1p') && !ran.includes('Exp'), ran.join(' '));
    const { value, grad } = lossAndGrad(logits);
    const [l, t, g] = [logits.dataSync(), x.dataSync(), grad.dataSync()];
    let exact = 0;
    for (let i = 0; i < l.length; i++) {
      exact += bernoulliTerm(l[i]!, t[i]!);
      const slope = bernoulliSlope(l[i]!, t[i]!);
      assert.ok(Math.abs(g[i]! - slope) <= 1e-7 * Math.abs(slope) + 1e-45, `pixel ${i}: ${g[i]} vs ${slope}`);
    }
    // Sixteen per-image sums rounded to float32, then tfjs's float32 sum of them.
    assert.ok(Math.abs(value.dataSync()[0]! - exact) <= 1e-6 * exact, `${value.dataSync()[0]} vs ${exact}`);
  });

  it('falls back to tfjs ops where the kernels do not fit: a broadcast target', { skip: nativeMissing }, async () => {
    const { core } = await loadTf('native', 2);
    const logits = core.tensor2d([[0, 2, -3]]);
    const x = core.tensor1d([1, 0, 0.5]);
    const profile = await core.profile(() => bceFromLogits(core, logits, x));
    assert.ok(!profile.kernels.some((k) => k.name === BERNOULLI_NLL_KERNEL));
    const expected = bernoulliTerm(0, 1) + bernoulliTerm(2, 0) + bernoulliTerm(-3, 0.5);
    assert.ok(Math.abs(bceFromLogits(core, logits, x).dataSync()[0]! - expected) < 1e-5);
  });
});
