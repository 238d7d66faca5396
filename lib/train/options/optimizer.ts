// The optimizer and what shapes its gradients: SGD, AdamW or LAMB, label smoothing, clipping, frozen BatchNorm.
import type { NativeOptimizerConfig, NativeTrainConfig } from '../../native';
import { Fields, s } from '../../validate';
import { lr, pair, rate01 } from './common';

/** Stochastic gradient descent with momentum (torch.optim.SGD), the paper's optimizer. */
export interface SgdOptions {
  type: 'sgd';
  /** The base learning rate (the schedule scales it). */
  lr: number;
  /** Momentum (default 0.9). */
  momentum?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** L2 weight decay (default 0). */
  weightDecay?: number;
  /** No weight decay on BN parameters and biases (default false). */
  noDecayOnBnAndBias?: boolean;
}

/** The AdamW optimizer (torch.optim.AdamW): decoupled weight decay. */
export interface AdamWOptions {
  type: 'adamw';
  /** The base learning rate (the schedule scales it). */
  lr: number;
  /** Coefficients of the running averages of the gradient and its square (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator for stability (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01). */
  weightDecay?: number;
  /** No weight decay on BN parameters and biases (default false). */
  noDecayOnBnAndBias?: boolean;
}

/** LAMB (You et al. 2019) as timm's Lamb, the optimizer of timm's "ResNet strikes back" A1/A2 recipes: Adam's
 *  moments with weight decay added to the update, which a per-tensor trust ratio ‖p‖/‖update‖ then scales. */
export interface LambOptions {
  type: 'lamb';
  /** The base learning rate (the schedule scales it). */
  lr: number;
  /** Coefficients of the running averages of the gradient and its square (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator for stability (default 1e-6, timm's). */
  eps?: number;
  /** Weight decay added to the update (default 0.01). Tensors without it (noDecayOnBnAndBias) skip the trust
   *  ratio too, unless alwaysAdapt. */
  weightDecay?: number;
  /** Every gradient is divided by max(1, global norm / maxGradNorm) first (default 1, timm's; 0 turns it off). */
  maxGradNorm?: number;
  /** Clip the trust ratio at 1 (LAMBC; default false). */
  trustClip?: boolean;
  /** Apply the trust ratio to tensors without weight decay too (default false). */
  alwaysAdapt?: boolean;
  /** No weight decay on BN parameters and biases (default false). */
  noDecayOnBnAndBias?: boolean;
}

export interface OptimizerOptions {
  /** The optimizer (default: the paper's SGD, lr 0.1, momentum 0.9, weight decay 1e-4). */
  optimizer?: SgdOptions | AdamWOptions | LambOptions;
  /** Label smoothing of the cross-entropy (default 0); with `loss: 'bce'`, of its one-hot targets (timm's). */
  labelSmoothing?: number;
  /** The training loss: 'cross-entropy' (default), or binary cross-entropy on one-hot targets as timm's
   *  BinaryCrossEntropy (the "ResNet strikes back" recipes), optionally with `targetThreshold` (targets above it
   *  become 1, the rest 0). Evaluations report the cross-entropy either way. */
  loss?: 'cross-entropy' | { type: 'bce'; targetThreshold?: number };
  /** Scale the gradients so that their global L2 norm is at most this (torch.nn.utils.clip_grad_norm_), after
   *  unscaling in float16 and before the step. Default: off. */
  clipGradNorm?: number;
  /** BatchNorm layers normalise by their running statistics and keep them fixed while the rest trains, as
   *  torchvision's FrozenBatchNorm2d (fine-tuning on small batches). Their γ and β still train unless frozen with
   *  model.freeze(). Default false. */
  freezeBatchNorm?: boolean;
}

export const OPTIMIZER_DEFAULTS = {
  /** Without an optimizer option: the paper's SGD. */
  optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 } as SgdOptions,
  sgd: { momentum: 0.9, nesterov: false, weightDecay: 0 },
  adamw: { betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.01 },
  lamb: {
    betas: [0.9, 0.999] as [number, number],
    eps: 1e-6,
    weightDecay: 0.01,
    maxGradNorm: 1,
    trustClip: false,
    alwaysAdapt: false,
  },
  noDecayOnBnAndBias: false,
  labelSmoothing: 0,
  loss: 'cross-entropy' as 'cross-entropy' | { type: 'bce'; targetThreshold?: number },
  freezeBatchNorm: false,
};

const optimizerSchema = s.tagged('type', {
  sgd: s.object({
    type: s.enum(['sgd'] as const),
    lr,
    momentum: s.optional(rate01),
    nesterov: s.optional(s.boolean()),
    weightDecay: s.optional(s.number({ min: 0, max: 1 })),
    noDecayOnBnAndBias: s.optional(s.boolean()),
  }),
  adamw: s.object({
    type: s.enum(['adamw'] as const),
    lr,
    betas: s.optional(pair(rate01)),
    eps: s.optional(s.number({ min: 0, minExclusive: true, max: 1 })),
    weightDecay: s.optional(s.number({ min: 0, max: 10 })),
    noDecayOnBnAndBias: s.optional(s.boolean()),
  }),
  lamb: s.object({
    type: s.enum(['lamb'] as const),
    lr,
    betas: s.optional(pair(rate01)),
    eps: s.optional(s.number({ min: 0, minExclusive: true, max: 1 })),
    weightDecay: s.optional(s.number({ min: 0, max: 10 })),
    maxGradNorm: s.optional(s.number({ min: 0 })),
    trustClip: s.optional(s.boolean()),
    alwaysAdapt: s.optional(s.boolean()),
    noDecayOnBnAndBias: s.optional(s.boolean()),
  }),
});

export const optimizerFields: Fields = {
  optimizer: s.optional(optimizerSchema),
  labelSmoothing: s.optional(rate01),
  loss: s.optional(
    s.union<'cross-entropy' | { type: 'bce'; targetThreshold?: number }>(
      s.enum(['cross-entropy'] as const),
      s.object({ type: s.enum(['bce'] as const), targetThreshold: s.optional(s.number({ min: 0, max: 1 })) }),
    ),
  ),
  clipGradNorm: s.optional(s.number({ min: 0, minExclusive: true })),
  freezeBatchNorm: s.optional(s.boolean()),
};

/** The optimizer a run uses, the default one when none is given. */
export function optimizerOf(o: OptimizerOptions): SgdOptions | AdamWOptions | LambOptions {
  return o.optimizer ?? OPTIMIZER_DEFAULTS.optimizer;
}

function nativeOptimizer(optimizer: SgdOptions | AdamWOptions | LambOptions): NativeOptimizerConfig {
  const D = OPTIMIZER_DEFAULTS;
  const noDecayBnBias = optimizer.noDecayOnBnAndBias ?? D.noDecayOnBnAndBias;
  // The fields an optimizer does not read still cross, as every key does.
  const unused = { momentum: 0, nesterov: false, maxGradNorm: 0, trustClip: false, alwaysAdapt: false };
  if (optimizer.type === 'sgd')
    return {
      ...unused,
      type: 'sgd',
      momentum: optimizer.momentum ?? D.sgd.momentum,
      nesterov: optimizer.nesterov ?? D.sgd.nesterov,
      weightDecay: optimizer.weightDecay ?? D.sgd.weightDecay,
      beta1: D.adamw.betas[0],
      beta2: D.adamw.betas[1],
      eps: D.adamw.eps,
      noDecayBnBias,
    };
  const d = optimizer.type === 'adamw' ? D.adamw : D.lamb;
  const common = {
    beta1: optimizer.betas?.[0] ?? d.betas[0],
    beta2: optimizer.betas?.[1] ?? d.betas[1],
    eps: optimizer.eps ?? d.eps,
    weightDecay: optimizer.weightDecay ?? d.weightDecay,
    noDecayBnBias,
  };
  if (optimizer.type === 'adamw') return { ...unused, type: 'adamw', ...common };
  return {
    ...unused,
    type: 'lamb',
    ...common,
    maxGradNorm: optimizer.maxGradNorm ?? D.lamb.maxGradNorm,
    trustClip: optimizer.trustClip ?? D.lamb.trustClip,
    alwaysAdapt: optimizer.alwaysAdapt ?? D.lamb.alwaysAdapt,
  };
}

export function optimizerConfig(
  o: OptimizerOptions,
): Pick<
  NativeTrainConfig,
  'optimizer' | 'labelSmoothing' | 'loss' | 'bceTargetThreshold' | 'clipGradNorm' | 'freezeBatchNorm'
> {
  const loss = o.loss ?? OPTIMIZER_DEFAULTS.loss;
  return {
    optimizer: nativeOptimizer(optimizerOf(o)),
    labelSmoothing: o.labelSmoothing ?? OPTIMIZER_DEFAULTS.labelSmoothing,
    loss: loss === 'cross-entropy' ? loss : 'bce',
    bceTargetThreshold: loss === 'cross-entropy' ? -1 : (loss.targetThreshold ?? -1),
    clipGradNorm: o.clipGradNorm ?? 0,
    freezeBatchNorm: o.freezeBatchNorm ?? OPTIMIZER_DEFAULTS.freezeBatchNorm,
  };
}
