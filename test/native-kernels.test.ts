import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { addonPath, loadNativeAddon } from '../src/ml/native-addon.js';
import { registerNativeKernels } from '../src/ml/native-kernels.js';
import { registerWasmTrainingKernels } from '../src/ml/wasm-kernels.js';
import { bernoulliSlope, bernoulliTerm } from './helpers.js';
import { describeKernelParity } from './kernel-parity.js';

// CI installs libdnnl-dev and sets ABLATE_REQUIRE_NATIVE=1, so a broken build fails there;
// on a machine without oneDNN the suite reports itself skipped, with the reason.
const loaded = loadNativeAddon();
if ('addon' in loaded) {
  const { addon } = loaded;
  for (const threads of [1, 2]) {
    describeKernelParity(`native (oneDNN) kernels on ${threads} thread(s)`, (backend) => {
      registerWasmTrainingKernels(backend);
      registerNativeKernels(addon, backend);
      addon.setThreads(threads);
    });
  }
  // oneDNN 2.x's JIT GEMM kernels point rsp into the heap while they run (oneDNN#4845): a
  // signal handled on a thread inside one wrote its frame over malloc's chunks. Under
  // `node --cpu-prof` (SIGPROF about every millisecond) such a process aborted within its
  // first two products, with oneDNN's AVX-512 kernels and with its AVX2 ones
  // (DNNL_MAX_CPU_ISA=AVX2 on the same machine), so the check runs under both.
  describe('native products under a profiler', () => {
    const products = `
      const addon = require(process.argv[1]);
      addon.setThreads(2);
      const [m, k, n] = [128, 3136, 128]; // the seed VAE's dense layer at batch 128
      const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
      const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
      const shape = Int32Array.of(1, m, n, k, 0, 0, 0, 0);
      const first = new Float32Array(m * n);
      addon.matmul(a, b, first, shape, null, 0, 0);
      const c = new Float32Array(m * n);
      for (let i = 0; i < 300; i++) {
        addon.matmul(a, b, c, shape, null, 0, 0);
        if (!c.every((v, j) => Object.is(v, first[j]))) throw new Error('product ' + i + ' differs from the first');
      }
      console.log('300 products, each equal to the first');`;
    const dispatches = [
      { isa: 'the widest ISA here', env: {} },
      { isa: 'AVX2', env: { DNNL_MAX_CPU_ISA: 'AVX2' } },
    ];
    for (const { isa, env } of dispatches)
      it(`run to the end, each product equal to the first (${isa})`, () => {
        const profiles = mkdtempSync(join(tmpdir(), 'ablate-cpu-prof-'));
        try {
          const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profiles, '-e', products, addonPath], {
            encoding: 'utf8',
            timeout: 120_000,
            env: { ...process.env, ...env },
          });
          assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
          assert.equal(r.status, 0, r.stderr);
          assert.match(r.stdout, /300 products, each equal to the first/);
        } finally {
          rmSync(profiles, { recursive: true, force: true });
        }
      });
  });
  // The loss kernels compute in double with exp and log1p of their own: each result is checked
  // against the same formula in JavaScript's doubles (Math.exp, Math.log1p), rounded to float32.
  describe('the Bernoulli likelihood kernels', () => {
    /** How many float32 values lie between a and b (0: the same float). */
    const floatSteps = (a: number, b: number) => {
      const ordered = (v: number) => {
        const i = new Int32Array(Float32Array.of(v).buffer)[0]!;
        return i < 0 ? -(i & 0x7fffffff) : i;
      };
      return Math.abs(ordered(a) - ordered(b));
    };
    // Every logit a float32 VAE meets, and far beyond: a dense sweep of [−120, 120] (where
    // e^−|l| leaves float32's range), tiny ones, and the largest floats.
    const sweep = Float32Array.from({ length: 48_001 }, (_, i) => (i - 24_000) / 200);
    const edges = Float32Array.of(0, -0, 1e-30, -1e-30, 1e-8, -1e-8, 88.7, -88.7, 103.9, -103.9, 745, -745, 1e4, -1e4, 3.4e38, -3.4e38);
    const logits = Float32Array.from([...sweep, ...edges]);
    const pixels = (seed: number, n = logits.length) =>
      Float32Array.from({ length: n }, (_, i) => [0, 1, 0.5, ((i * seed) % 997) / 997][i % 4]!);
    // A batch of the seed VAE's shape (above the parallel threshold), its logits drawn from the sweep.
    const [images, size] = [128, 784];
    const batchLogits = Float32Array.from({ length: images * size }, (_, i) => logits[(i * 7) % logits.length]!);

    it('give each pixel its cross-entropy and its slope to within one float32 step, nearly all exactly rounded', () => {
      const x = pixels(7919);
      const n = logits.length;
      const nll = new Float32Array(n);
      const dLogits = new Float32Array(n);
      const dy = new Float32Array(n).fill(1);
      // One pixel per image: each output is one pixel's term.
      addon.bernoulliNll(logits, x, nll, Int32Array.of(n, 1));
      addon.bernoulliNllGrad(dy, logits, x, dLogits, Int32Array.of(n, 1));
      let inexact = 0;
      for (let i = 0; i < n; i++) {
        const [l, t] = [logits[i]!, x[i]!];
        for (const [got, exact] of [
          [nll[i]!, bernoulliTerm(l, t)],
          [dLogits[i]!, bernoulliSlope(l, t)],
        ] as const) {
          const steps = floatSteps(got, Math.fround(exact));
          assert.ok(steps <= 1, `l = ${l}, x = ${t}: ${got} vs ${exact}`);
          inexact += steps;
        }
      }
      assert.ok(inexact <= n / 1000, `${inexact} of ${2 * n} results one step from the exact value's float32`);
    });

    it("sum each image's pixels in double, and scale the slope by the image's dy", () => {
      const l = batchLogits;
      const x = pixels(104729, images * size);
      const dy = Float32Array.from({ length: images }, (_, n) => (n - 64) / 128);
      const nll = new Float32Array(images);
      const dLogits = new Float32Array(images * size);
      addon.bernoulliNll(l, x, nll, Int32Array.of(images, size));
      addon.bernoulliNllGrad(dy, l, x, dLogits, Int32Array.of(images, size));
      for (let n = 0; n < images; n++) {
        let sum = 0;
        for (let j = n * size; j < (n + 1) * size; j++) {
          sum += bernoulliTerm(l[j]!, x[j]!);
          const slope = dy[n]! * bernoulliSlope(l[j]!, x[j]!);
          assert.ok(floatSteps(dLogits[j]!, Math.fround(slope)) <= 1, `image ${n}, pixel ${j}: ${dLogits[j]} vs ${slope}`);
        }
        assert.ok(floatSteps(nll[n]!, Math.fround(sum)) <= 1, `image ${n}: ${nll[n]} vs ${sum}`);
      }
    });

    it('write the same bits on 1 thread and on 2', () => {
      const l = batchLogits;
      const x = pixels(31, images * size);
      const dy = new Float32Array(images).fill(1 / images);
      const run = (threads: number) => {
        addon.setThreads(threads);
        const nll = new Float32Array(images);
        const dLogits = new Float32Array(images * size);
        addon.bernoulliNll(l, x, nll, Int32Array.of(images, size));
        addon.bernoulliNllGrad(dy, l, x, dLogits, Int32Array.of(images, size));
        return [new Uint32Array(nll.buffer), new Uint32Array(dLogits.buffer)];
      };
      assert.deepEqual(run(2), run(1));
    });

    it('keep tfjs semantics for NaN, and give the largest logits finite terms', () => {
      const l = Float32Array.of(NaN, 3.4e38, -3.4e38, 3.4e38);
      const x = Float32Array.of(0.5, 1, 0, 0);
      const nll = new Float32Array(4);
      const dLogits = new Float32Array(4);
      addon.bernoulliNll(l, x, nll, Int32Array.of(4, 1));
      addon.bernoulliNllGrad(new Float32Array(4).fill(1), l, x, dLogits, Int32Array.of(4, 1));
      assert.deepEqual(Array.from(nll), [NaN, 0, 0, 3.4e38].map(Math.fround));
      assert.deepEqual(Array.from(dLogits), [NaN, 0, 0, 1]);
    });
  });
} else if (process.env.ABLATE_REQUIRE_NATIVE) {
  describe('native kernels', () =>
    it('are built (ABLATE_REQUIRE_NATIVE is set)', () => {
      throw new Error(loaded.error);
    }));
} else {
  describe('native kernels', () => it('skipped', { skip: loaded.error }, () => {}));
}
