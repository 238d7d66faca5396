// A labelled image set held in native memory (uint8 pixels or float32 values, N×C×H×W, int64 labels).
import { DatasetError, DisposedError, ValidationError, inContext } from '../errors';
import { NativeDataset, native } from '../native';
import { permutation } from '../random';
import { isTypedArray } from '../tensor';
import { s } from '../validate';
import { SplitOptions, splitOrder } from './epochs';

/** Pixel statistics of a dataset, for normalisation. */
export interface DatasetStats {
  /** The per-pixel mean image, C×H×W, in [0, 1] units for pixels (the paper's CIFAR normalisation). */
  meanImage: Float32Array;
  /** Per-channel mean and standard deviation over every pixel, in [0, 1] units. */
  channelMean: number[];
  /** Per-channel standard deviation over every pixel, in [0, 1] units. */
  channelStd: number[];
}

/** A dataset's name, classes and source, for messages and predictions. */
export interface DatasetInfo {
  /** Its name, for messages. */
  name: string;
  numClasses: number;
  /** Names of the classes. */
  classNames?: string[];
  /** Where it was read from, for messages. */
  source?: string;
}

/** A labelled image set in native memory. Made by the readers (datasets.fashionMnist, cifar10, imageFolder, ...) and fromArrays(). */
export class Dataset {
  /** Its name, for messages. */
  readonly name: string;
  /** [C, H, W] of every image. */
  readonly shape: [number, number, number];
  /** Images. */
  readonly length: number;
  readonly numClasses: number;
  /** Names of the classes, in label order. */
  readonly classNames: string[];
  /** How the images are held: uint8 pixels or float32 values. */
  readonly dtype: 'uint8' | 'float32';
  /** Where it was read from. */
  readonly source?: string;
  /** Files left out because they could not be decoded (image folders with onBadImage: 'skip'). */
  skipped: string[] = [];
  #handle: NativeDataset | undefined;
  #stats?: Promise<DatasetStats>;

  /** @internal use the readers (datasets.fashionMnist, fromArrays, ...) */
  constructor(handle: NativeDataset, info: DatasetInfo) {
    this.#handle = handle;
    const [n, c, h, w] = handle.shape();
    this.length = n;
    this.shape = [c, h, w];
    this.dtype = handle.dtype() as 'uint8' | 'float32';
    this.name = info.name;
    this.numClasses = info.numClasses;
    this.classNames = info.classNames ?? Array.from({ length: info.numClasses }, (_, i) => String(i));
    if (info.source) this.source = info.source;
  }

  /** @internal */
  handle(): NativeDataset {
    if (!this.#handle) throw new DisposedError(`dataset "${this.name}"`);
    return this.#handle;
  }

  /** True once dispose() ran. */
  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** Frees the native images now (otherwise when the Dataset is collected). A training or evaluation already
   *  running on it keeps its own reference and finishes; every later use throws DisposedError. */
  dispose(): void {
    this.#handle?.dispose();
    this.#handle = undefined;
  }

  /** Images per class, in class order. */
  labelCounts(): number[] {
    return Array.from(this.handle().labelCounts(), Number);
  }

  /** The per-pixel mean image and per-channel mean/std; computed once (off the event loop) and kept. */
  stats(): Promise<DatasetStats> {
    this.#stats ??= this.handle()
      .stats()
      .then((st) => ({
        meanImage: st.meanImage,
        channelMean: Array.from(st.channelMean),
        channelStd: Array.from(st.channelStd),
      }));
    return this.#stats;
  }

  /** @internal statistics known in advance (read from a cache beside the data). */
  setStats(stats: DatasetStats): void {
    this.#stats = Promise.resolve(stats);
  }

  /** The images at `indices`, as a new dataset. */
  async subset(indices: ArrayLike<number>, name = `${this.name} (subset)`): Promise<Dataset> {
    const idx = Int32Array.from(indices);
    for (let i = 0; i < idx.length; i++)
      if (idx[i] < 0 || idx[i] >= this.length || idx[i] !== indices[i])
        throw new ValidationError(`indices[${i}]`, indices[i], `an integer in [0, ${this.length - 1}]`);
    return new Dataset(await this.handle().subset(idx), {
      name,
      numClasses: this.numClasses,
      classNames: this.classNames,
      source: this.source,
    });
  }

  /** `count` images drawn at random (seeded), or the first `count` without a seed. */
  async take(count: number, seed?: number): Promise<Dataset> {
    s.integer({ min: 1, max: this.length }).parse(count, 'count');
    const order =
      seed === undefined ? Int32Array.from({ length: this.length }, (_, i) => i) : permutation(this.length, seed);
    return this.subset(order.subarray(0, count), `${this.name} (${count})`);
  }

  /** A deterministic train/validation split: `validation` is a count (5000) or a fraction (0.1). */
  async split(options: SplitOptions): Promise<{
    /** The training part. */
    train: Dataset;
    /** The validation part. */
    validation: Dataset;
  }> {
    const order = splitOrder(this.length, options);
    const validation = await this.subset(order.validation, `${this.name} (validation)`);
    const train = await this.subset(order.train, `${this.name} (train)`);
    return { train, validation };
  }

  /** Copies of `count` images from `start`, with their labels. */
  get(
    start: number,
    count = 1,
  ): {
    /** The images, N×C×H×W. */
    images: Uint8Array | Float32Array;
    /** Their labels. */
    labels: number[];
    /** [N, C, H, W]. */
    shape: number[];
  } {
    s.integer({ min: 0, max: this.length - 1 }).parse(start, 'start');
    s.integer({ min: 1, max: this.length - start }).parse(count, 'count');
    const out = this.handle().slice(start, count);
    return { images: out.images, labels: Array.from(out.labels, Number), shape: [count, ...this.shape] };
  }
}

/** fromArrays()' input: pixels or values, their shape, labels and classes. */
export interface ArraysInput {
  /** Pixels 0-255 (Uint8Array) or values (Float32Array), N×C×H×W row-major. */
  images: Uint8Array | Float32Array;
  /** [N, C, H, W]. */
  shape: number[];
  /** One label per image, in [0, numClasses). */
  labels: ArrayLike<number>;
  /** Classes (default: the largest label + 1). */
  numClasses?: number;
  /** Names of the classes, in label order. */
  classNames?: string[];
  /** The dataset's name, for messages. */
  name?: string;
}

/** A dataset from arrays already in memory; they are copied once into native memory. */
export async function fromArrays(input: ArraysInput, source = 'arrays'): Promise<Dataset> {
  const { images, shape, labels } = input;
  if (!isTypedArray(images, 'Uint8Array') && !isTypedArray(images, 'Float32Array'))
    throw new ValidationError('images', images, 'a Uint8Array (pixels 0-255) or a Float32Array');
  s.array(s.integer({ min: 1 }), { minLength: 4, maxLength: 4 }).parse(shape, 'shape');
  const [n] = shape;
  const expected = shape.reduce((a, b) => a * b, 1);
  if (images.length !== expected)
    throw new DatasetError(
      source,
      `images hold ${images.length} values, shape [${shape.join(', ')}] needs ${expected}`,
    );
  if (!labels || typeof labels.length !== 'number')
    throw new ValidationError('labels', labels, 'an array of class indices');
  if (labels.length !== n) throw new DatasetError(source, `${n} images but ${labels.length} labels`);
  const label32 = new Int32Array(n);
  let max = -1;
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0)
      throw new DatasetError(source, `label ${l} of image ${i} is not a class index (an integer ≥ 0)`);
    label32[i] = l;
    if (l > max) max = l;
  }
  const numClasses = input.numClasses ?? input.classNames?.length ?? max + 1;
  s.integer({ min: 1 }).parse(numClasses, 'numClasses');
  if (max >= numClasses) throw new DatasetError(source, `label ${max} is out of range for ${numClasses} classes`);
  if (input.classNames && input.classNames.length !== numClasses)
    throw new ValidationError('classNames', input.classNames, `${numClasses} names, one per class`);
  try {
    const handle = await native().createDataset(images, shape, label32, numClasses);
    return new Dataset(handle, { name: input.name ?? source, numClasses, classNames: input.classNames, source });
  } catch (e) {
    throw inContext(e, source);
  }
}
