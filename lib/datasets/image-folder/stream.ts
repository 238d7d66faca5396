// An image folder too large for memory: decoded batch by batch, in the trainer's order, into the native
// bounded queue while the trainer runs.

import { DatasetError, ValidationError } from '../../errors';
import { NativeBatchQueue, native } from '../../native';
import { deriveSeed, permutation } from '../../random';
import { Dataset, DatasetStats, fromArrays } from '../dataset';
import { SplitOptions, iterationsPerEpoch, rankShare, splitOrder } from '../epochs';
import { decodeAll } from './decode';
import type { FolderSettings } from './options';
import type { ImageFile } from './scan';
import { folderStats } from './stats';

/** How a streaming run draws batches (the trainer sets these). */
export interface StreamParams {
  /** Images per batch. */
  batchSize: number;
  /** Where the run starts (resumed runs). */
  startIteration: number;
  /** Iterations the run does. */
  totalIterations: number;
  /** Seed of the shuffles. */
  seed: number;
  /** Shuffle each epoch. */
  shuffle: boolean;
  /** Leave out the last partial batch. */
  dropLast: boolean;
  /** Repeated augmentation: each image this many times an epoch, the copies on different ranks (default 1). */
  repeats?: number;
  /** Repeated augmentation's epoch rounding (rankShare; default 0). */
  repeatsRound?: number;
  /** Batches decoded ahead of the trainer (the bounded queue's size). */
  ahead?: number;
  /** This process's rank (distributed training): the rank streams its share only. */
  rank?: number;
  /** Ranks in the world (default 1). */
  worldSize?: number;
}

/**
 * The images of `rank`'s share of one epoch, in order, as DistributedSampler draws them (and as the in-memory
 * source does): the epoch's order padded to a multiple of the world by repeating its start, then every world-th
 * entry from `rank` on. Together the ranks see each image once per epoch (and the padding twice).
 */
export function shardOrder(order: Int32Array, rank: number, worldSize: number, repeats = 1, round = 0): Int32Array {
  if (worldSize <= 1 && repeats <= 1) return order;
  // With repeated augmentation every image `repeats` times in a row first (native/data/batch_source.h).
  const n = order.length * repeats;
  return Int32Array.from(
    { length: rankShare(order.length, worldSize, repeats, round) },
    (_, k) => order[Math.floor(((rank + k * worldSize) % n) / repeats)],
  );
}

/** One rank's order of images in `epoch` of a stream: the epoch's permutation (seeded by (seed, epoch)), then the
 *  rank's share of it. */
function rankOrder(length: number, p: StreamParams, epoch: number): Int32Array {
  return shardOrder(
    p.shuffle ? permutation(length, deriveSeed(p.seed, epoch)) : Int32Array.from({ length }, (_, i) => i),
    p.rank ?? 0,
    p.worldSize ?? 1,
    p.repeats ?? 1,
    p.repeatsRound ?? 0,
  );
}

/** An image folder decoded while training runs, batch by batch, rather than loaded first. Made by datasets.streamImageFolder(). */
export class StreamingDataset {
  /** Its name, for messages. */
  readonly name: string;
  /** [C, H, W] of the decoded images. */
  readonly shape: [number, number, number];
  /** Images. */
  readonly length: number;
  readonly numClasses: number;
  /** Names of the classes, in label order. */
  readonly classNames: string[];
  /** The folder. */
  readonly source: string;
  /** Images left out so far because they could not be decoded (onBadImage: 'skip'). */
  readonly skipped: string[] = [];
  readonly #files: ImageFile[];
  readonly #options: FolderSettings;
  #stats?: Promise<DatasetStats>;

  /** @internal */
  constructor(files: ImageFile[], classNames: string[], options: FolderSettings, name: string) {
    this.#files = files;
    this.#options = options;
    this.name = name;
    this.source = options.root;
    this.shape = [options.channels, options.height, options.width];
    this.length = files.length;
    this.numClasses = classNames.length;
    this.classNames = classNames;
  }

  /** The images, in label order, with their labels. */
  get files(): readonly ImageFile[] {
    return this.#files;
  }

  /** Images per class, in class order. */
  labelCounts(): number[] {
    const counts = new Array(this.numClasses).fill(0);
    for (const f of this.#files) counts[f.label]++;
    return counts;
  }

  /** The images at `indices`, as a new streaming dataset. */
  subset(indices: ArrayLike<number>, name = `${this.name} (subset)`): StreamingDataset {
    const files = Array.from(indices, (i, k) => {
      if (!Number.isInteger(i) || i < 0 || i >= this.length)
        throw new ValidationError(`indices[${k}]`, i, `an integer in [0, ${this.length - 1}]`);
      return this.#files[i];
    });
    return new StreamingDataset(files, this.classNames, this.#options, name);
  }

  /** A deterministic train/validation split, as Dataset.split() makes (the same images for the same options), of
   *  the file list: nothing is decoded. */
  split(options: SplitOptions): {
    /** The training part. */
    train: StreamingDataset;
    /** The validation part. */
    validation: StreamingDataset;
  } {
    const order = splitOrder(this.length, options);
    return {
      validation: this.subset(order.validation, `${this.name} (validation)`),
      train: this.subset(order.train, `${this.name} (train)`),
    };
  }

  /** Decodes every image into memory (for evaluation sets). */
  async load(): Promise<Dataset> {
    const { images, labels, skipped } = await decodeAll(this.#files, this.#options);
    this.skipped.push(...skipped);
    const d = await fromArrays(
      {
        images,
        shape: [labels.length, ...this.shape],
        labels,
        numClasses: this.numClasses,
        classNames: this.classNames,
        name: this.name,
      },
      this.source,
    );
    d.skipped = skipped;
    return d;
  }

  /** Per-pixel mean and per-channel mean/std: one decoding pass, cached under the user's cache folder. */
  stats(): Promise<DatasetStats> {
    this.#stats ??= folderStats(this.#files, this.#options, this.shape);
    return this.#stats;
  }

  /**
   * @internal Opens the native queue and decodes the batches of iterations [start, total) into it, in the
   * trainer's order: epoch e is shuffled with a seed derived from (seed, e), so a resumed run sees the
   * same batches; with several ranks, this rank's share of it (shardOrder). Decoding runs ahead of the trainer
   * by up to `ahead` batches.
   */
  openStream(p: StreamParams): {
    queue: NativeBatchQueue;
    stop: () => void;
    error: () => Error | undefined;
    finished: Promise<void>;
  } {
    const perEpoch = iterationsPerEpoch(
      rankShare(this.length, p.worldSize ?? 1, p.repeats ?? 1, p.repeatsRound ?? 0),
      p.batchSize,
      p.dropLast,
    );
    const ahead = p.ahead ?? 4;
    const queue = new (native().BatchQueue)(ahead, perEpoch);
    let stopped = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    queue.onSpace(() => wake?.());
    let cached: { epoch: number; order: Int32Array } | undefined;
    const orderOf = (epoch: number) => {
      if (cached?.epoch !== epoch) cached = { epoch, order: rankOrder(this.length, p, epoch) };
      return cached.order;
    };
    const decodeBatch = async (it: number) => {
      const epoch = Math.floor(it / perEpoch),
        index = it % perEpoch;
      const order = orderOf(epoch);
      const files = Array.from(
        order.subarray(index * p.batchSize, Math.min(order.length, (index + 1) * p.batchSize)),
        (i) => this.#files[i],
      );
      const { images, labels, skipped } = await decodeAll(files, this.#options);
      this.skipped.push(...skipped);
      if (labels.length === 0)
        throw new DatasetError(this.source, `every image of epoch ${epoch} batch ${index} failed to decode`);
      return { epoch, index, images, labels: Int32Array.from(labels) };
    };
    const finished = (async () => {
      const pending: Promise<Awaited<ReturnType<typeof decodeBatch>>>[] = [];
      let nextToDecode = p.startIteration;
      try {
        for (let it = p.startIteration; it < p.totalIterations && !stopped; it++) {
          while (nextToDecode < p.totalIterations && pending.length < ahead) pending.push(decodeBatch(nextToDecode++));
          const batch = await pending.shift()!;
          const shape = [batch.labels.length, ...this.shape];
          while (!stopped && !queue.push(batch.epoch, batch.index, batch.images, shape, batch.labels))
            await new Promise<void>((r) => {
              wake = r;
              setTimeout(r, 50); // also re-check now and then: a space signal may have come before `wake` was set
            });
        }
      } catch (e) {
        failure = e as Error;
        queue.close((e as Error).message);
        await Promise.allSettled(pending);
        return;
      }
      await Promise.allSettled(pending);
      queue.close();
    })();
    return {
      queue,
      stop: () => {
        stopped = true;
        queue.close('the stream was stopped');
        wake?.();
      },
      error: () => failure,
      finished,
    };
  }
}
