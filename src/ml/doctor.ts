/**
 * `ablate doctor`: which TensorFlow.js route this machine runs and why, which kernels are
 * native, what oneDNN chose for the seed model's convolutions, and a short throughput probe.
 */
import { availableParallelism } from 'node:os';
import { loadTf, type BackendChoice } from './backend.js';
import { machineSummary } from './machine.js';
import { loadNativeAddon } from './native-addon.js';
import { TRAIN_BATCH, trainingStep } from './vae/probe.js';

export interface DoctorOptions {
  readonly backend: BackendChoice;
  readonly threads: number;
  /** How long the throughput probe trains. */
  readonly seconds: number;
}

type Shape4 = [number, number, number, number];

/**
 * The seed conv VAE's convolutions at batch 128, 'same' padding, as [label, x, filter, stride]
 * of the forward convolution; a transposed one is the gradient of the forward convolution
 * from its (larger) output back to its input.
 */
const SEED_CONVOLUTIONS: readonly [string, Shape4, Shape4, number][] = [
  ['encoder 28²×1 → 14²×32', [128, 28, 28, 1], [3, 3, 1, 32], 2],
  ['encoder 14²×32 → 7²×64', [128, 14, 14, 32], [3, 3, 32, 64], 2],
  ['decoder 7²×64 → 14²×64 (transposed)', [128, 14, 14, 64], [3, 3, 64, 64], 2],
  ['decoder 14²×64 → 28²×32 (transposed)', [128, 28, 28, 32], [3, 3, 32, 64], 2],
  ['decoder 28²×32 → 28²×1 (transposed)', [128, 28, 28, 1], [3, 3, 1, 32], 1],
];

export async function doctor(options: DoctorOptions, print: (line: string) => void): Promise<void> {
  const tf = await loadTf(options.backend, options.threads);
  print(`machine   ${machineSummary()}`);
  print(`backend   ${tf.backend}: ${tf.reason}`);
  const native = loadNativeAddon();
  if (tf.backend === 'native' && 'addon' in native) {
    const { convShape, nativeKernelNames } = await import('./native-kernels.js');
    print(
      `kernels   native (oneDNN convolutions and products; OpenMP element-wise ops): ${nativeKernelNames.join(', ')}; every other op: wasm (XNNPACK)`,
    );
    print(`threads   ${options.threads} of ${availableParallelism()} cores (a stage gets its share from the runner)`);
    for (const [label, x, filter, stride] of SEED_CONVOLUTIONS) {
      const shape = convShape(tf.core.backend_util.computeConv2DInfo(x, filter, stride, 1, 'same'));
      print(`oneDNN    ${label}: ${native.addon.implementations(shape)}`);
    }
  } else if (tf.backend === 'wasm') {
    print(`kernels   wasm (XNNPACK) + ablate's Conv2DBackpropFilter, Conv2DBackpropInput, BatchMatMul in wasm-kernels.ts`);
    if ('error' in native) print(`native    unavailable: ${native.error}`);
  }
  const step = trainingStep(tf);
  step(0);
  let steps = 0;
  const start = performance.now();
  while (performance.now() - start < options.seconds * 1000) step(++steps);
  const seconds = (performance.now() - start) / 1000;
  print(
    `probe     conv VAE d=2, batch ${TRAIN_BATCH}: ${steps} training step${steps === 1 ? '' : 's'} in ${seconds.toFixed(1)} s → ${Math.round((steps * TRAIN_BATCH) / seconds)} images/s`,
  );
}
