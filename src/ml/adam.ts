/**
 * Adam, as tfjs-core's AdamOptimizer computes it, with one fused native kernel per variable
 * and step where the native route registered one (native-kernels.ts, ADAM_KERNEL): tfjs's
 * own runs thirteen tensor ops per variable, each a pass over memory and a kernel call, and
 * a training step of the seed VAE has twenty variables. The kernel performs the same float32
 * operations in the same order, so both optimizers write the same bits
 * (test/native-kernels.test.ts); every other route gets tfjs's own.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import type { Tf } from './backend.js';

/** The fused Adam step's kernel name, which registerNativeKernels registers on the native route. */
export const ADAM_KERNEL = 'AblateAdam';

/** Attributes of ADAM_KERNEL: the step's float32 scalars, in the addon's order. */
export interface AdamAttrs {
  readonly scalars: Float32Array;
}

/** tfjs-core's defaults (train.adam), which every optimizer here uses. */
const BETA1 = 0.9;
const BETA2 = 0.999;

export function adamOptimizer(tf: Tf, learningRate: number): TfCore.Optimizer {
  const core = tf.core;
  if (!core.getKernel(ADAM_KERNEL, core.getBackend())) return core.train.adam(learningRate);
  // tfjs turns each JavaScript number into a float32 scalar tensor: these are those values.
  const f = Math.fround;
  const epsilon = core.backend().epsilon();

  class FusedAdam extends core.Optimizer {
    static className = 'FusedAdam';
    /** β1^t and β2^t as tfjs keeps them: float32 scalars multiplied by β after each step. */
    private accBeta1 = f(BETA1);
    private accBeta2 = f(BETA2);
    private readonly moments: { m: TfCore.Variable; v: TfCore.Variable }[] = [];

    applyGradients(gradients: TfCore.NamedTensorMap | { name: string; tensor: TfCore.Tensor }[]): void {
      const named = Array.isArray(gradients) ? gradients : Object.entries(gradients).map(([name, tensor]) => ({ name, tensor }));
      // 1 − β^t is float32 arithmetic in tfjs (sub of two float32 scalars): exact in double, then rounded once.
      const scalars = Float32Array.of(BETA1, 1 - BETA1, BETA2, 1 - BETA2, 1 - this.accBeta1, 1 - this.accBeta2, epsilon, -learningRate);
      named.forEach(({ name, tensor: gradient }, i) => {
        if (gradient == null) return;
        const value = core.engine().registeredVariables[name]!;
        const moments = (this.moments[i] ??= {
          m: core.tidy(() => core.zerosLike(value).variable(false)),
          v: core.tidy(() => core.zerosLike(value).variable(false)),
        });
        const attrs: AdamAttrs = { scalars };
        const [next, m, v] = core
          .engine()
          .runKernel(
            ADAM_KERNEL,
            { value, m: moments.m, v: moments.v, g: gradient },
            attrs as unknown as TfCore.NamedAttrMap,
          ) as TfCore.Tensor[];
        value.assign(next!);
        moments.m.assign(m!);
        moments.v.assign(v!);
        core.dispose([next!, m!, v!]);
      });
      // The product of two float32 values is exact in double: rounding it once is float32's multiply.
      this.accBeta1 = f(this.accBeta1 * f(BETA1));
      this.accBeta2 = f(this.accBeta2 * f(BETA2));
      this.incrementIterations();
    }

    override dispose(): void {
      core.dispose(this.moments.flatMap(({ m, v }) => [m, v]));
      super.dispose();
    }

    getConfig(): TfCore.serialization.ConfigDict {
      return { learningRate, beta1: BETA1, beta2: BETA2, epsilon };
    }
  }
  return new FusedAdam();
}
