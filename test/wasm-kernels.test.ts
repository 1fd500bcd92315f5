import { registerWasmTrainingKernels } from '../src/ml/wasm-kernels.js';
import { describeKernelParity, type ConvCase } from './kernel-parity.js';

// Found by the random shapes: tfjs-backend-wasm 4.22's own Conv2D (XNNPACK) returns wrong
// values when a filter side is 1 and a stride exceeds 1 (e.g. 5×1 filter, stride 3×3; max
// error 3.6). Not one of ablate's kernels and not a shape of the seed models; the native
// route replaces that kernel and passes these shapes.
const stockConvBug = (c: ConvCase) =>
  (c.k[0] === 1 || c.k[1] === 1) && (c.s[0] > 1 || c.s[1] > 1)
    ? 'tfjs-backend-wasm Conv2D is wrong for a size-1 filter side with stride > 1'
    : undefined;

describeKernelParity('wasm training kernels', registerWasmTrainingKernels, stockConvBug);
