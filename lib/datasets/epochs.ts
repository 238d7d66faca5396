// How a dataset of `length` images splits: into batches (the same for every reader, the trainer and the CLI), into
// ranks' shares, and into train and validation parts.
import { ValidationError } from '../errors';
import { permutation } from '../random';
import { s } from '../validate';

/** Iterations in one epoch: every full batch, and the last partial one unless `dropLast`. */
export function iterationsPerEpoch(length: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(length / batchSize) : Math.ceil(length / batchSize);
}

/** One rank's share of `length` images among `worldSize`: DistributedSampler's padded ceil(length / worldSize);
 *  with repeated augmentation (`repeats` > 1) and `round` > 0, timm's RepeatAugSampler's selected_round:
 *  floor(length / round) × round / worldSize images when length ≥ round (native/data/batch_source.h rank_share). */
export function rankShare(length: number, worldSize: number, repeats = 1, round = 0): number {
  const padded = Math.ceil(length / worldSize);
  if (repeats <= 1 || round <= 0 || length < round) return padded;
  return Math.min(
    Math.floor((Math.floor(length / round) * round) / worldSize),
    Math.ceil((length * repeats) / worldSize),
  );
}

/** split()'s options, for an in-memory set and a streamed folder alike. */
export interface SplitOptions {
  /** A count of images (5000) or a fraction of the set (0.1). */
  validation: number;
  /** Seed of the permutation (default 0). */
  seed?: number;
}

/** The validation and training indices of a deterministic split of `length` images: the first `validation` of a
 *  seeded permutation, and the rest. Throws ValidationError unless both parts are non-empty. */
export function splitOrder(length: number, options: SplitOptions): { validation: Int32Array; train: Int32Array } {
  s.object({ validation: s.number({ min: 0, minExclusive: true }), seed: s.optional(s.integer({ min: 0 })) }).parse(
    options,
    'split',
  );
  const v = options.validation;
  const count = v < 1 ? Math.round(v * length) : v;
  if (!Number.isInteger(count) || count < 1 || count >= length)
    throw new ValidationError(
      'split.validation',
      v,
      `a count in [1, ${length - 1}] or a fraction in (0, 1) that leaves both parts non-empty`,
    );
  const order = permutation(length, options.seed ?? 0);
  return { validation: order.subarray(0, count), train: order.subarray(count) };
}
