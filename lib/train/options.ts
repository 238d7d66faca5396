// The options of train(): their types, their schemas (shared with run config files) and their defaults,
// each default written once, here.
import type { Dataset } from '../datasets/dataset';
import type { Model } from '../model/model';
import type { StreamingDataset } from '../datasets/image-folder';
export { iterationsPerEpoch } from '../datasets/epochs';
import type { EvalMetrics } from '../metrics';
import type { PhaseSeconds } from '../native';
import { NormalizeOption, normalizeSchema } from '../preprocess';
import { Logger, isLogger } from '../loggers';
import { EarlyStop, EarlyStoppingOptions, earlyStoppingSchema } from './early-stopping';
import type { ProgressEvent } from './events';
import { Fields, ObjectSchema, Schema, s } from '../validate';
import { DistributedOptions, distributedSchema } from './distributed';

// ---- options ----------------------------------------------------------------------------------------

/** Stochastic gradient descent with momentum (torch.optim.SGD), the paper's optimizer. */
export interface SgdOptions {
  /** The optimizer. */
  type: 'sgd';
  /** The base learning rate (the schedule scales it). */
  lr: number;
  /** Momentum (default 0.9). */
  momentum?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** L2 weight decay (default 0). */
  weightDecay?: number;
  /** No weight decay on BN parameters and biases. */
  noDecayOnBnAndBias?: boolean;
}

/** The AdamW optimizer (torch.optim.AdamW): decoupled weight decay. */
export interface AdamWOptions {
  /** The optimizer. */
  type: 'adamw';
  /** The base learning rate (the schedule scales it). */
  lr: number;
  /** Coefficients of the running averages of the gradient and its square (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator for stability (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01). */
  weightDecay?: number;
  /** No weight decay on BN parameters and biases. */
  noDecayOnBnAndBias?: boolean;
}

/** The learning-rate schedule: constant, multistep (the paper's), cosine, one-cycle, or reduce-on-plateau. */
export type ScheduleOptions =
  | {
      /** The base rate throughout. */
      type: 'constant';
    }
  /** ÷gamma at each milestone (iterations, or epochs with unit 'epoch'): the paper's 32k/48k. */
  | {
      /** ÷gamma at each milestone. */
      type: 'multistep';
      /** Where the rate drops (iterations or epochs, by `unit`). */
      milestones: number[];
      /** What milestones count (default 'iteration'). */
      unit?: 'iteration' | 'epoch';
      /** The factor at each milestone (default 0.1). */
      gamma?: number;
    }
  | {
      /** Half a cosine from the base rate down to minLr over the run. */
      type: 'cosine';
      /** The lowest rate (default 0). */
      minLr?: number;
    }
  | {
      /** One cycle (Smith): up to maxLr, then down far below the start. */
      type: 'onecycle';
      /** The peak rate (default: the optimizer's lr). */
      maxLr?: number;
      /** Fraction of the run spent rising (default 0.3). */
      pctStart?: number;
      /** Start at maxLr / divFactor (default 25). */
      divFactor?: number;
      /** End at the start rate / finalDivFactor (default 1e4). */
      finalDivFactor?: number;
    }
  | {
      /** The schedule. */
      type: 'plateau';
      /** What is watched (default val_loss with a validation set, else train_loss). */
      metric?: PlateauMetric;
      /** The factor at each reduction (default 0.1). */
      factor?: number;
      /** Evaluations without improvement before a reduction (default 10). */
      patience?: number;
      /** Relative improvement that counts (default 1e-4). */
      threshold?: number;
      /** Evaluations to wait after a reduction (default 0). */
      cooldown?: number;
      /** The lowest rate. */
      minLr?: number;
    };

/** What a plateau schedule watches: an evaluation metric, or the training loss. */
export type PlateauMetric = 'val_loss' | 'val_error' | 'test_loss' | 'test_error' | 'train_loss';

/** Training-time augmentation, drawn per image on the native thread. */
export interface AugmentOptions {
  /** Pad with zeros by this many pixels and crop back at a random offset (the paper: 4). */
  padCrop?: number;
  /** Random horizontal flip. */
  flip?: boolean;
  /** ImageNet-style random-resized-crop to `size`. */
  randomResizedCrop?: {
    /** Output side, or [height, width] (default: the image's). */
    size?: number | [number, number];
    /** Range of the crop's area, as a fraction of the image's (default [0.08, 1]). */
    scale?: [number, number];
    /** Range of the crop's aspect ratio (default [3/4, 4/3]). */
    ratio?: [number, number];
  };
}

/** Everything train() takes besides the model and the data; validated before the native trainer sees it. */
export interface TrainOptions {
  /** Length of the run: exactly one of epochs and iterations. */
  epochs?: number;
  /** Iterations (steps) to train. */
  iterations?: number;
  /** Images per step (per rank; default 128). */
  batchSize?: number;
  /** The optimizer (default: the paper's SGD). */
  optimizer?: SgdOptions | AdamWOptions;
  /** The learning-rate schedule (default constant). */
  schedule?: ScheduleOptions;
  /** Linear warm-up of the rate over the first iterations. */
  warmup?: {
    /** Iterations of the linear warm-up. */
    iterations: number;
    /** The rate's factor at the start (default 0.1). */
    startFactor?: number;
  };
  /** The paper's ResNet-110 warm-up: `lr` until the training error falls below `untilTrainError`. */
  errorWarmup?: {
    /** The rate until then (default 0.01). */
    lr?: number;
    /** The training error to reach (default 0.8). */
    untilTrainError?: number;
  };
  /** Label smoothing of the cross-entropy (default 0). */
  labelSmoothing?: number;
  /** Scale the gradients so that their global L2 norm is at most this (torch.nn.utils.clip_grad_norm_), after
   *  unscaling in float16 and before the step. Default: off. */
  clipGradNorm?: number;
  /** BatchNorm layers normalise by their running statistics and keep them fixed while the rest trains, as
   *  torchvision's FrozenBatchNorm2d (fine-tuning on small batches). Their γ and β still train unless frozen with
   *  model.freeze(). Default false. */
  freezeBatchNorm?: boolean;
  /** Gradient accumulation: each iteration draws `accumulate` × batchSize images and runs them as `accumulate`
   *  forward/backward passes of batchSize before one step; the gradient is that of the whole draw (each pass's
   *  loss weighted by its share of the images). Equal to one step at the larger batch without BatchNorm; with it,
   *  each pass normalises by its own batch's statistics (as PyTorch's loop does). With distributed training the
   *  ranks all-reduce once per iteration, after the last pass (DDP's no_sync() for the others). Default 1. */
  accumulate?: number;
  /** Stop when an evaluation metric stops improving (needs `validation` or `test`, evaluated by evalEvery). */
  earlyStopping?: EarlyStoppingOptions;
  /** Keep an exponential moving average of the weights (timm's ModelEmaV2): after each step
   *  ema = decay · ema + (1 − decay) · weights, BN statistics included. Evaluations during the run use it, it
   *  travels in checkpoints, and the result hands it over as a model (`result.ema`). */
  ema?: {
    /** The weight of the average so far, in (0, 1): 0.999 averages over about 1,000 steps. */
    decay: number;
  };
  /** Training-time augmentation. */
  augment?: AugmentOptions;
  /** Input normalisation: the per-pixel mean image (the paper's CIFAR), per-channel mean/std (default),
   *  explicit values, or none. Statistics come from the training set. */
  normalize?: NormalizeOption;
  /** Held-out sets (a streamed folder is loaded into memory for evaluation). */
  validation?: Dataset | StreamingDataset;
  /** A test set, evaluated as validation is. */
  test?: Dataset | StreamingDataset;
  /** When to evaluate (default every epoch). */
  evalEvery?:
    | {
        /** Every this many epochs. */
        epochs: number;
      }
    | {
        /** Every this many iterations. */
        iterations: number;
      };
  /** Images per evaluation forward (default 500). */
  evalBatchSize?: number;
  /** Progress event every this many iterations. */
  logEvery?: number;
  /** Seed of the shuffles and augmentations. */
  seed?: number;
  /** Bit-identical CPU runs; deterministic algorithms and no cuDNN benchmark on CUDA. */
  deterministic?: boolean;
  /** Gradient norm at each block's input and each block's response std, in iteration events. */
  diagnostics?: boolean;
  /** Intra-op threads for this run (default: the process setting). */
  threads?: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Leave out the last partial batch (default true). */
  dropLast?: boolean;
  /** float32 (default), or bfloat16 / float16 autocast on CUDA. */
  precision?: 'float32' | 'bfloat16' | 'float16';
  /** Tensor layout (default 'auto': channels_last where it is faster). */
  memoryFormat?: 'auto' | 'channels_last' | 'contiguous';
  /** Let cuDNN pick the fastest algorithms (default: on unless deterministic). */
  cudnnBenchmark?: boolean;
  /** Capture the whole step in a CUDA graph after 3 eager iterations (CUDA, SGD, float32, static shapes):
   *  for small networks, where kernel launches dominate. */
  cudaGraph?: boolean;
  /** With several ranks: BatchNorm's batch statistics over every rank's batch, as torch.nn.SyncBatchNorm
   *  (default: each rank's own, as DistributedDataParallel). No effect in one process. */
  syncBatchNorm?: boolean;
  /** Stops the run after the current iteration. */
  signal?: AbortSignal;
  /** Each progress event, on the main thread (progressBar() is one); a throw stops the run with that error. */
  onProgress?: (event: ProgressEvent) => void;
  /** Receive every progress event (rank 0's): loggers.csv(dir), loggers.jsonl(dir), loggers.tensorboard(dir). */
  loggers?: Logger[];
  /** Data-parallel training with other processes (default: from the environment, as torchrun sets it; false:
   *  one process whatever the environment says). `batchSize` is per rank. */
  distributed?: DistributedOptions | false;
}

// ---- results ----------------------------------------------------------------------------------------

export type { ProgressEvent } from './events';

/** What a finished (or cancelled, or early-stopped) run reports. */
export interface TrainResult {
  /** The run was stopped by its AbortSignal (after a complete iteration) rather than finishing. */
  aborted: boolean;
  /** Iterations done. */
  iteration: number;
  /** Epochs done. */
  epoch: number;
  /** Iterations the run was to do. */
  totalIterations: number;
  /** Seconds the run took. */
  elapsedSeconds: number;
  /** Training throughput over the run. */
  imagesPerSecond: number;
  /** The learning rate at the end. */
  lr: number;
  /** The last evaluations. */
  evaluations: {
    /** On the validation set. */
    val?: EvalMetrics;
    /** On the test set. */
    test?: EvalMetrics;
  };
  /** Epoch and evaluation events, in order. */
  history: ProgressEvent[];
  /** Set when earlyStopping stopped the run (then `aborted` is false). */
  earlyStopped?: EarlyStop;
  /** With the ema option: a model holding the weights' moving average (same spec and preprocessing). */
  ema?: Model;
  /** What ran the forward and backward passes: 'onednn' (on the CPU, activations kept in oneDNN's blocked layout,
   *  BatchNorm fused with its ReLU; README, "Performance"), or 'libtorch (why not oneDNN)'. */
  engine: string;
  /** Where this call's time went, in seconds. On CUDA they are host times: kernels run asynchronously. */
  phases: PhaseSeconds;
}

// ---- schema -----------------------------------------------------------------------------------------

const lr = s.number({ min: 0, minExclusive: true, max: 100 });
const rate01 = s.number({ min: 0, max: 1, maxExclusive: true });
const pair = (item: Schema<number>) =>
  s.array(item, { minLength: 2, maxLength: 2 }) as unknown as Schema<[number, number]>;

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
});

const increasing = (values: number[]) =>
  values.every((v, i) => i === 0 || v > values[i - 1])
    ? undefined
    : `milestones must be strictly increasing, got [${values.join(', ')}]`;

const plateauMetric = s.enum(['val_loss', 'val_error', 'test_loss', 'test_error', 'train_loss'] as const);

export const scheduleSchema: Schema<ScheduleOptions> = s.tagged<ScheduleOptions>('type', {
  constant: s.object({ type: s.enum(['constant'] as const) }),
  multistep: s.object({
    type: s.enum(['multistep'] as const),
    milestones: s.refine(s.array(s.integer({ min: 1 }), { minLength: 1 }), increasing),
    unit: s.optional(s.enum(['iteration', 'epoch'] as const)),
    gamma: s.optional(s.number({ min: 0, minExclusive: true, max: 1 })),
  }),
  cosine: s.object({ type: s.enum(['cosine'] as const), minLr: s.optional(s.number({ min: 0 })) }),
  onecycle: s.object({
    type: s.enum(['onecycle'] as const),
    maxLr: s.optional(lr),
    pctStart: s.optional(s.number({ min: 0, max: 1, minExclusive: true, maxExclusive: true })),
    divFactor: s.optional(s.number({ min: 1 })),
    finalDivFactor: s.optional(s.number({ min: 1 })),
  }),
  plateau: s.object({
    type: s.enum(['plateau'] as const),
    metric: s.optional(plateauMetric),
    factor: s.optional(s.number({ min: 0, max: 1, minExclusive: true, maxExclusive: true })),
    patience: s.optional(s.integer({ min: 0 })),
    threshold: s.optional(s.number({ min: 0 })),
    cooldown: s.optional(s.integer({ min: 0 })),
    minLr: s.optional(s.number({ min: 0 })),
  }),
});

const sizeSchema = s.union<number | [number, number]>(
  s.integer({ min: 1, max: 16384 }),
  pair(s.integer({ min: 1, max: 16384 })),
);

export const augmentSchema: Schema<AugmentOptions> = s.object<AugmentOptions>({
  padCrop: s.optional(s.integer({ min: 0, max: 512 })),
  flip: s.optional(s.boolean()),
  randomResizedCrop: s.optional(
    s.object({
      size: s.optional(sizeSchema),
      scale: s.optional(
        s.refine(pair(s.number({ min: 0, minExclusive: true, max: 1 })), (v) =>
          v[0] <= v[1] ? undefined : 'scale must be [min, max] with min ≤ max',
        ),
      ),
      ratio: s.optional(
        s.refine(pair(s.number({ min: 0, minExclusive: true, max: 100 })), (v) =>
          v[0] <= v[1] ? undefined : 'ratio must be [min, max] with min ≤ max',
        ),
      ),
    }),
  ),
});

/** The options a config file can hold (everything but datasets, signal and callbacks). */
export const trainFields: Fields = {
  epochs: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  iterations: s.optional(s.integer({ min: 1, max: 1_000_000_000 })),
  batchSize: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  optimizer: s.optional(optimizerSchema),
  schedule: s.optional(scheduleSchema),
  warmup: s.optional(
    s.object({ iterations: s.integer({ min: 1 }), startFactor: s.optional(s.number({ min: 0, max: 1 })) }),
  ),
  errorWarmup: s.optional(
    s.object({ lr: s.optional(lr), untilTrainError: s.optional(s.number({ min: 0, max: 1, minExclusive: true })) }),
  ),
  labelSmoothing: s.optional(rate01),
  clipGradNorm: s.optional(s.number({ min: 0, minExclusive: true })),
  freezeBatchNorm: s.optional(s.boolean()),
  accumulate: s.optional(s.integer({ min: 1, max: 1024 })),
  earlyStopping: s.optional(earlyStoppingSchema),
  ema: s.optional(s.object({ decay: s.number({ min: 0, max: 1, minExclusive: true, maxExclusive: true }) })),
  augment: s.optional(augmentSchema),
  normalize: s.optional(normalizeSchema),
  evalEvery: s.optional(
    s.union(s.object({ epochs: s.integer({ min: 1 }) }), s.object({ iterations: s.integer({ min: 1 }) })),
  ),
  evalBatchSize: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  logEvery: s.optional(s.integer({ min: 1 })),
  seed: s.optional(s.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  deterministic: s.optional(s.boolean()),
  diagnostics: s.optional(s.boolean()),
  threads: s.optional(s.integer({ min: 1, max: 1024 })),
  shuffle: s.optional(s.boolean()),
  dropLast: s.optional(s.boolean()),
  precision: s.optional(s.enum(['float32', 'bfloat16', 'float16'] as const)),
  memoryFormat: s.optional(s.enum(['auto', 'channels_last', 'contiguous'] as const)),
  cudnnBenchmark: s.optional(s.boolean()),
  cudaGraph: s.optional(s.boolean()),
  syncBatchNorm: s.optional(s.boolean()),
};

/** Every option of train(): the config fields, and the values only code can pass (checked in resolve.ts). */
export const optionsSchema: ObjectSchema<TrainOptions> = s.object<TrainOptions>({
  ...trainFields,
  validation: s.optional(s.any()),
  test: s.optional(s.any()),
  signal: s.optional(s.any()),
  onProgress: s.optional(s.func()),
  loggers: s.optional(
    s.array(
      s.refine(s.any(), (v) =>
        isLogger(v)
          ? undefined
          : 'a logger: loggers.csv(dir), loggers.jsonl(dir), loggers.tensorboard(dir), or an object with open, write and close',
      ),
    ),
  ),
  distributed: s.optional(s.union(s.literal(false), distributedSchema)),
});

// ---- defaults ---------------------------------------------------------------------------------------

/** Every default of the options above, once (lib/train/resolve.ts applies them; C++ has none). */
export const TRAIN_DEFAULTS = {
  batchSize: 128,
  shuffle: true,
  dropLast: true,
  /** Without an optimizer option: the paper's SGD. */
  optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 } as SgdOptions,
  sgd: { momentum: 0.9, nesterov: false, weightDecay: 0 },
  adamw: { betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.01 },
  noDecayOnBnAndBias: false,
  schedule: { type: 'constant' } as ScheduleOptions,
  multistep: { unit: 'iteration' as const, gamma: 0.1 },
  cosine: { minLr: 0 },
  /** maxLr defaults to the optimizer's lr. */
  onecycle: { pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4 },
  /** metric defaults to val_loss with a validation set, else train_loss. */
  plateau: { factor: 0.1, patience: 10, threshold: 1e-4, cooldown: 0, minLr: 0 },
  warmupStartFactor: 0.1,
  errorWarmup: { lr: 0.01, untilTrainError: 0.8 },
  labelSmoothing: 0,
  accumulate: 1,
  freezeBatchNorm: false,
  earlyStopping: { minDelta: 0, restoreBest: false },
  augment: { padCrop: 0, flip: false },
  randomResizedCrop: { scale: [0.08, 1] as [number, number], ratio: [3 / 4, 4 / 3] as [number, number] },
  normalize: 'per-channel' as NormalizeOption,
  evalEvery: { epochs: 1 } as { epochs: number } | { iterations: number },
  evalBatchSize: 500,
  logEvery: 50,
  deterministic: false,
  diagnostics: false,
  /** 0: keep the process setting (setNumThreads). */
  threads: 0,
  precision: 'float32' as const,
  memoryFormat: 'auto' as const,
  cudaGraph: false,
  syncBatchNorm: false,
};
