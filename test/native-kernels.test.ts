import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { addonPath, loadNativeAddon } from '../src/ml/native-addon.js';
import { registerNativeKernels } from '../src/ml/native-kernels.js';
import { registerWasmTrainingKernels } from '../src/ml/wasm-kernels.js';
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
} else if (process.env.ABLATE_REQUIRE_NATIVE) {
  describe('native kernels', () =>
    it('are built (ABLATE_REQUIRE_NATIVE is set)', () => {
      throw new Error(loaded.error);
    }));
} else {
  describe('native kernels', () => it('skipped', { skip: loaded.error }, () => {}));
}
