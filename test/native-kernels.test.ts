import { describe, it } from 'node:test';
import { loadNativeAddon } from '../src/ml/native-addon.js';
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
} else if (process.env.ABLATE_REQUIRE_NATIVE) {
  describe('native kernels', () =>
    it('are built (ABLATE_REQUIRE_NATIVE is set)', () => {
      throw new Error(loaded.error);
    }));
} else {
  describe('native kernels', () => it('skipped', { skip: loaded.error }, () => {}));
}
