// The native route's element-wise kernels and fused Adam must write the same bits as the wasm
// kernels and tfjs's Adam they replace: the fingerprint promises the same bytes for the same
// inputs, and these kernels are chosen by whether the addon is built. Each op is compared bit
// for bit on edge values (signed zeros, denormals, infinities, NaN) and random ones, in every
// broadcast layout, on 1 and 2 threads; then whole training steps are compared (which covers
// the fused relu gradient too).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tfc from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-layers registers tfjs's gradients on import: relu's is captured before ablate's replaces it.
import '@tensorflow/tfjs-layers';
import { ADAM_KERNEL, adamOptimizer } from '../src/ml/adam.js';
import { loadTf, type Tf } from '../src/ml/backend.js';
import { loadNativeAddon } from '../src/ml/native-addon.js';
import { broadcastPeriod } from '../src/ml/native-kernels.js';
import { buildModels } from '../src/ml/vae/model.js';
import { forward } from '../src/ml/vae/train.js';

const loaded = loadNativeAddon();
const binaryOps = { Add: tfc.add, Sub: tfc.sub, Multiply: tfc.mul, RealDiv: tfc.div } as const;
const unaryOps = {
  Relu: (x: tfc.Tensor) => tfc.relu(x),
  Step: (x: tfc.Tensor) => tfc.step(x),
  'Step (alpha 0.3)': (x: tfc.Tensor) => tfc.step(x, 0.3),
  Sqrt: (x: tfc.Tensor) => tfc.sqrt(x),
  Square: (x: tfc.Tensor) => tfc.square(x),
  Neg: (x: tfc.Tensor) => tfc.neg(x),
  Abs: (x: tfc.Tensor) => tfc.abs(x),
} as const;
const replacedKernels = [
  'Add',
  'Sub',
  'Multiply',
  'RealDiv',
  'Relu',
  'Step',
  'Sqrt',
  'Square',
  'Neg',
  'Abs',
  ADAM_KERNEL,
  'AblateReluGrad',
];

/** The registered kernels of replacedKernels and relu's gradient: one route's set. */
interface KernelSet {
  readonly kernels: ReadonlyMap<string, tfc.KernelFunc>;
  readonly reluGradient: tfc.GradConfig;
}

const EDGES = [0, -0, 1, -1, NaN, Infinity, -Infinity, 1e-45, -1e-45, 1.5e-39, -1.5e-39, 3.4e38, -3.4e38, 0.5, -2.5, 7, 1e-20];

/** Edge values, then seeded random ones of mixed scale: n float32s. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = i < EDGES.length * 3 ? EDGES[(i + seed) % EDGES.length]! : (s / 2 ** 31 - 1) * 2 ** ((s % 41) - 20);
  }
  return out;
}

/** The bits of a tensor's values, to compare with assert.deepEqual (NaN payloads and −0 included). */
function bits(t: tfc.Tensor): Uint32Array {
  return new Uint32Array(Float32Array.from(t.dataSync() as Float32Array).buffer);
}

function swapKernels(to: KernelSet): void {
  for (const name of replacedKernels) {
    if (tfc.getKernel(name, 'wasm')) tfc.unregisterKernel(name, 'wasm');
    const kernelFunc = to.kernels.get(name);
    if (kernelFunc) tfc.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  }
  tfc.registerGradient(to.reluGradient);
}

function kernelsNow(): KernelSet {
  return {
    kernels: new Map(
      replacedKernels.flatMap((name) => (tfc.getKernel(name, 'wasm') ? [[name, tfc.getKernel(name, 'wasm')!.kernelFunc]] : [])),
    ),
    reluGradient: tfc.getGradient('Relu')!,
  };
}

/** Above the addon's threshold for a parallel loop (2^16 elements), odd so the split is uneven. */
const N = 200_003;
const layouts: [string, number[], number[]][] = [
  ['same shape', [N], [N]],
  ['scalar right', [N], []],
  ['scalar left', [], [N]],
  ['bias [C] over NHWC', [64, 7, 7, 64], [64]],
  ['bias [1,1,1,C]', [64, 7, 7, 64], [1, 1, 1, 64]],
  ['repeating left operand', [3, 64], [4096, 3, 64]],
  ['equal size, other rank', [1, N], [N]],
  ['outer broadcast (falls back to wasm)', [128, 1], [128, 784]],
  ['small, below the thread threshold', [5], [5]],
];

if ('addon' in loaded) {
  const { addon } = loaded;
  let tf: Tf;
  let stock: KernelSet;
  let native: KernelSet;
  before(async () => {
    // The wasm package registers its kernels on import: these are wasm's own, before ablate's.
    stock = kernelsNow();
    tf = await loadTf('native', 1);
    native = kernelsNow();
    assert.notEqual(native.reluGradient, stock.reluGradient, "ablate's relu gradient is registered");
  });

  /** The op's result with wasm's kernels and then with the addon's on `threads`. */
  function both(run: () => tfc.Tensor, threads: number): { wasm: Uint32Array; native: Uint32Array } {
    swapKernels(stock);
    const wasm = bits(tfc.tidy(run));
    swapKernels(native);
    addon.setThreads(threads);
    return { wasm, native: bits(tfc.tidy(run)) };
  }

  for (const threads of [1, 2]) {
    describe(`native element-wise kernels on ${threads} thread(s) write wasm's bits`, () => {
      for (const [op, fn] of Object.entries(binaryOps))
        for (const [layout, aShape, bShape] of layouts)
          it(`${op}, ${layout}`, () => {
            const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
            const r = both(() => fn(tfc.tensor(values(size(aShape), 3), aShape), tfc.tensor(values(size(bShape), 11), bShape)), threads);
            assert.deepEqual(r.native, r.wasm);
          });
      for (const [op, fn] of Object.entries(unaryOps))
        it(op, () => {
          const r = both(() => fn(tfc.tensor(values(N, 5))), threads);
          assert.deepEqual(r.native, r.wasm);
        });
    });
  }

  describe('native training steps write the bits of the wasm element-wise kernels and tfjs Adam', () => {
    /** Weights after `steps` Adam steps of the seed conv VAE from a fixed start. */
    function train(steps: number): Uint32Array[] {
      const models = buildModels(tf, {
        kind: 'conv',
        image: { rows: 28, cols: 28, channels: 1 },
        depth: 2,
        latentDim: 2,
        hidden: 32,
        classes: 10,
        seed: 7,
      });
      const variables = [...models.encoder.trainableWeights, ...models.decoderLogits.trainableWeights].map((w) => w.read() as tfc.Variable);
      const optimizer = adamOptimizer(tf, 1e-3);
      const x = tfc.randomUniform([16, 28, 28, 1], 0, 1, 'float32', 3);
      const y = tfc.zeros([16, 10]);
      for (let s = 0; s < steps; s++)
        optimizer.minimize(
          () => {
            const out = forward(tf, models, 'conv', x, y, 100 + s, true);
            return tfc.mean(tfc.add(out.recon, out.kl)) as tfc.Scalar;
          },
          false,
          variables,
        );
      const weights = variables.map((v) => bits(v));
      optimizer.dispose();
      tfc.dispose([x, y]);
      return weights;
    }

    for (const threads of [1, 2])
      it(`3 steps on ${threads} thread(s), fused Adam and relu gradient included`, () => {
        // Native convolutions on the same thread count in both runs (a count changes their
        // sums' order): only the element-wise ops and Adam differ.
        addon.setThreads(threads);
        swapKernels(stock);
        assert.equal(tfc.getKernel(ADAM_KERNEL, 'wasm'), undefined);
        const reference = train(3);
        swapKernels(native);
        assert.ok(tfc.getKernel(ADAM_KERNEL, 'wasm'), 'the fused Adam kernel is registered');
        const fused = train(3);
        assert.equal(fused.length, reference.length);
        fused.forEach((w, i) => assert.deepEqual(w, reference[i], `variable ${i}`));
        // The steps moved the weights: equal bits are not two untouched initialisations.
        assert.notDeepEqual(reference, train(0));
      });
  });

  describe('identity and same-dtype casts share the buffer safely', () => {
    it('a clone or a float32 cast outlives its source, and other casts still convert', () => {
      const x = tfc.tensor([1.5, -2.5, 3]);
      const c = x.clone();
      const f = tfc.cast(x, 'float32');
      const i = tfc.cast(x, 'int32');
      x.dispose();
      assert.deepEqual(Array.from(c.dataSync()), [1.5, -2.5, 3]);
      assert.deepEqual(Array.from(f.dataSync()), [1.5, -2.5, 3]);
      assert.deepEqual(Array.from(i.dataSync()), [1, -2, 3]);
      assert.equal(i.dtype, 'int32');
      tfc.dispose([c, f, i]);
    });
  });

  describe('broadcastPeriod', () => {
    it('names how an operand repeats over the output, or undefined', () => {
      assert.equal(broadcastPeriod([4, 3], [4, 3]), 0);
      assert.equal(broadcastPeriod([1, 12], [12]), 0);
      assert.equal(broadcastPeriod([], [4, 3]), 1);
      assert.equal(broadcastPeriod([1, 1], [4, 3]), 1);
      assert.equal(broadcastPeriod([3], [4, 3]), 3);
      assert.equal(broadcastPeriod([1, 1, 3], [5, 4, 3]), 3);
      assert.equal(broadcastPeriod([4, 3], [5, 4, 3]), 12);
      assert.equal(broadcastPeriod([4, 1], [4, 3]), undefined);
      assert.equal(broadcastPeriod([5, 1, 3], [5, 4, 3]), undefined);
    });
  });
} else {
  describe('native element-wise kernels', () => it('skipped', { skip: loaded.error }, () => {}));
}
