// The run's length and what each iteration draws: epochs or iterations, the batch, gradient accumulation, the
// order of the data (shuffle, dropLast, seed).
import { iterationsPerEpoch, rankShare } from '../../datasets/epochs';
import { ValidationError } from '../../errors';
import type { NativeTrainConfig } from '../../native';
import { Fields, s } from '../../validate';

export interface LengthOptions {
  /** Length of the run: exactly one of epochs and iterations. */
  epochs?: number;
  /** Iterations (steps) to train. */
  iterations?: number;
  /** Images per step, per rank (default 128). */
  batchSize?: number;
  /** Gradient accumulation: each iteration draws `accumulate` × batchSize images and runs them as `accumulate`
   *  forward/backward passes of batchSize before one step; the gradient is that of the whole draw (each pass's
   *  loss weighted by its share of the images). Equal to one step at the larger batch without BatchNorm; with it,
   *  each pass normalises by its own batch's statistics (as PyTorch's loop does). With distributed training the
   *  ranks all-reduce once per iteration, after the last pass (DDP's no_sync() for the others). Default 1. */
  accumulate?: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Leave out the last partial batch (default true). */
  dropLast?: boolean;
  /** Seed of the shuffles and augmentations (default: the model's). */
  seed?: number;
  /** Repeated augmentation (Hoffer et al. 2020; timm's RepeatAugSampler, `--aug-repeats`): each epoch's order
   *  holds every image this many times in a row before the ranks' shares are cut, so with distributed training
   *  each copy is augmented on another rank. An epoch is `augRepeatsRound`'s share of images per rank, of about
   *  N / augRepeats distinct images. Default 1 (off). */
  augRepeats?: number;
  /** With augRepeats above 1, the epoch's rounding (timm's selected_round): each rank draws
   *  floor(N / augRepeatsRound) × augRepeatsRound / ranks images an epoch (when N ≥ augRepeatsRound); 0 keeps
   *  ceil(N / ranks). Default 256, timm's. */
  augRepeatsRound?: number;
}

export const LENGTH_DEFAULTS = {
  batchSize: 128,
  accumulate: 1,
  shuffle: true,
  dropLast: true,
  augRepeats: 1,
  augRepeatsRound: 256,
};

export const lengthFields: Fields = {
  epochs: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  iterations: s.optional(s.integer({ min: 1, max: 1_000_000_000 })),
  batchSize: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  accumulate: s.optional(s.integer({ min: 1, max: 1024 })),
  shuffle: s.optional(s.boolean()),
  dropLast: s.optional(s.boolean()),
  seed: s.optional(s.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  augRepeats: s.optional(s.integer({ min: 1, max: 64 })),
  augRepeatsRound: s.optional(s.integer({ min: 0, max: 1_000_000_000 })),
};

/** The images one rank draws an epoch from a training set of `length`. */
function share(o: LengthOptions, length: number, worldSize: number): number {
  return rankShare(
    length,
    worldSize,
    o.augRepeats ?? LENGTH_DEFAULTS.augRepeats,
    o.augRepeatsRound ?? LENGTH_DEFAULTS.augRepeatsRound,
  );
}

/** Images one iteration draws: accumulate × batchSize (the source's batch; the step splits it). */
export function drawnPerIteration(o: LengthOptions): number {
  return (o.batchSize ?? LENGTH_DEFAULTS.batchSize) * (o.accumulate ?? LENGTH_DEFAULTS.accumulate);
}

/** Iterations in one rank's epoch of a training set of `length` images. */
export function rankEpochLength(o: LengthOptions, length: number, worldSize: number): number {
  return iterationsPerEpoch(share(o, length, worldSize), drawnPerIteration(o), o.dropLast ?? LENGTH_DEFAULTS.dropLast);
}

/** Checks epochs-or-iterations: exactly one is given. */
export function checkLength(o: LengthOptions): void {
  if ((o.epochs === undefined) === (o.iterations === undefined))
    throw new ValidationError(
      o.epochs === undefined ? 'epochs' : 'iterations',
      o.epochs ?? o.iterations,
      'exactly one of epochs and iterations',
      'give exactly one of epochs and iterations',
    );
}

/** The run's length on one rank of `worldSize`, and its piece of the native config. */
export function lengthConfig(
  o: LengthOptions,
  length: number,
  worldSize: number,
  modelSeed: number,
): {
  perEpoch: number;
  native: Pick<
    NativeTrainConfig,
    'batchSize' | 'totalIterations' | 'accumulate' | 'seed' | 'shuffle' | 'dropLast' | 'repeats' | 'repeatsRound'
  >;
} {
  checkLength(o);
  const images = share(o, length, worldSize);
  const accumulate = o.accumulate ?? LENGTH_DEFAULTS.accumulate;
  const batchSize = drawnPerIteration(o);
  if (batchSize > images)
    throw new ValidationError(
      'batchSize',
      o.batchSize ?? LENGTH_DEFAULTS.batchSize,
      `at most ${Math.floor(images / accumulate)}`,
      `batchSize: ${batchSize}${accumulate > 1 ? ` (${accumulate} × ${o.batchSize ?? LENGTH_DEFAULTS.batchSize}, accumulated)` : ''} ` +
        `is larger than the training set` +
        `${worldSize > 1 ? `'s share of each of the ${worldSize} ranks` : ''} (${images} images)`,
    );
  const dropLast = o.dropLast ?? LENGTH_DEFAULTS.dropLast;
  const perEpoch = iterationsPerEpoch(images, batchSize, dropLast);
  return {
    perEpoch,
    native: {
      batchSize,
      totalIterations: o.iterations ?? (o.epochs as number) * perEpoch,
      accumulate,
      seed: o.seed ?? modelSeed,
      shuffle: o.shuffle ?? LENGTH_DEFAULTS.shuffle,
      dropLast,
      repeats: o.augRepeats ?? LENGTH_DEFAULTS.augRepeats,
      repeatsRound: o.augRepeatsRound ?? LENGTH_DEFAULTS.augRepeatsRound,
    },
  };
}
