/**
 * The Bernoulli pixel likelihood −log p(x|z) = Σ_pixels BCE(l, x) per image, as one kernel
 * each way where the backend has one (the native route, native-kernels.ts):
 *   forward   [N] = Σ max(l, 0) − l·x + log(1 + e^−|l|)     BERNOULLI_NLL_KERNEL
 *   backward  ∂/∂l = dy[n] · (σ(l) − x)                      BERNOULLI_NLL_GRAD_KERNEL
 * tfjs composes the same loss from ten element-wise ops and a reduction forward, and about as
 * many backward, each a pass over the batch's pixels; in a training step of the seed conv VAE
 * on two threads they took 2.9 ms, most of it on one core. The kernels compute in double with
 * exp and log1p of their own (native/ablate_native.cc), so their bits are their source's, not
 * tfjs's: every other route keeps tfjs's composition (vae/loss.ts), and the native route's
 * fingerprint names the kernels' source.
 */
import type * as TfCore from '@tensorflow/tfjs-core';

/** Inputs logits and x of one shape [N, ...]; output [N], each image's summed cross-entropy. */
export const BERNOULLI_NLL_KERNEL = 'AblateBernoulliNll';
/** Inputs dy [N], logits and x [N, ...]; output ∂/∂logits of Σ_n dy[n]·nll[n], logits' shape. */
export const BERNOULLI_NLL_GRAD_KERNEL = 'AblateBernoulliNllGrad';

type Core = typeof TfCore;

/** The forward kernel's gradients: the fused kernel for the logits, tfjs ops for x (−l·dy, which no model here asks for). */
export function registerBernoulliNllGradient(core: Pick<Core, 'registerGradient' | 'engine' | 'mul' | 'neg' | 'reshape'>): void {
  core.registerGradient({
    kernelName: BERNOULLI_NLL_KERNEL,
    inputsToSave: ['logits', 'x'],
    gradFunc: (dy, saved) => {
      const [logits, x] = saved as [TfCore.Tensor, TfCore.Tensor];
      const g = dy as TfCore.Tensor;
      return {
        logits: () => core.engine().runKernel(BERNOULLI_NLL_GRAD_KERNEL, { dy: g, logits, x }) as TfCore.Tensor,
        x: () => core.mul(core.neg(logits), core.reshape(g, [g.shape[0]!, ...logits.shape.slice(1).map(() => 1)])),
      };
    },
  });
}

/** Each image's summed cross-entropy [N] from the fused kernel, or undefined where the backend lacks it or the operands do not fit it. */
export function fusedBernoulliNll(core: Core, logits: TfCore.Tensor, x: TfCore.Tensor): TfCore.Tensor1D | undefined {
  const fits = logits.dtype === 'float32' && x.dtype === 'float32' && logits.rank >= 1 && core.util.arraysEqual(logits.shape, x.shape);
  if (!fits || core.getKernel(BERNOULLI_NLL_KERNEL, core.getBackend()) === undefined) return undefined;
  return core.engine().runKernel(BERNOULLI_NLL_KERNEL, { logits, x }) as TfCore.Tensor1D;
}
