// Image folders: one sub-folder per class holding JPEG, PNG or WebP files. Decoded with sharp (libvips:
// fast, maintained, shipped as prebuilt npm binaries, decoding on libuv's thread pool), resized and
// centre-cropped to the configured size, in grayscale or RGB. Small folders load into memory (imageFolder);
// folders larger than memory stream batches to the trainer (streamImageFolder).
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createHash } from 'crypto';

import { DatasetError, ValidationError } from '../errors';
import { NativeBatchQueue, native } from '../native';
import { deriveSeed, permutation } from '../random';
import { Schema, s } from '../validate';
import { Dataset, DatasetStats, fromArrays } from './dataset';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

export interface ImageFolderOptions {
  path: string;
  /** Output size: a side (square) or [height, width]. */
  size: number | [number, number];
  /** 1 (grayscale) or 3 (RGB, the default). */
  channels?: 1 | 3;
  /** 'cover' (default): resize the shorter side, centre-crop the rest; 'fill': stretch. */
  fit?: 'cover' | 'fill';
  /** 'fail' (default): an undecodable image stops with its path; 'skip': warn, leave it out, count it. */
  onBadImage?: 'fail' | 'skip';
  /** Decodes in flight at once (default: 2 per core). */
  concurrency?: number;
  /** Class names in label order (default: the sub-folder names, sorted). */
  classNames?: string[];
  onWarning?: (message: string) => void;
}

interface Resolved {
  root: string;
  height: number;
  width: number;
  channels: 1 | 3;
  fit: 'cover' | 'fill';
  onBadImage: 'fail' | 'skip';
  concurrency: number;
  classNames?: string[];
  warn: (message: string) => void;
}

export interface ImageFile {
  file: string;
  label: number;
}

const optionsSchema: Schema<ImageFolderOptions> = s.object<ImageFolderOptions>({
  path: s.string(),
  size: s.union(s.integer({ min: 1, max: 16384 }), s.array(s.integer({ min: 1, max: 16384 }), { minLength: 2, maxLength: 2 })),
  channels: s.optional(s.enum([1, 3] as const)),
  fit: s.optional(s.enum(['cover', 'fill'] as const)),
  onBadImage: s.optional(s.enum(['fail', 'skip'] as const)),
  concurrency: s.optional(s.integer({ min: 1, max: 1024 })),
  classNames: s.optional(s.array(s.string(), { minLength: 1 })),
  onWarning: s.optional(new (class extends Schema<unknown> {
    parse(v: unknown, p: string) {
      if (typeof v !== 'function') this.fail(p, v);
      return v;
    }
    describe() {
      return 'a function';
    }
    protected json() {
      return {};
    }
  })()),
});

function resolve(options: ImageFolderOptions): Resolved {
  const o = optionsSchema.parse(options, 'options');
  const [height, width] = typeof o.size === 'number' ? [o.size, o.size] : o.size;
  return {
    root: path.resolve(o.path), height, width, channels: o.channels ?? 3, fit: o.fit ?? 'cover', onBadImage: o.onBadImage ?? 'fail',
    concurrency: o.concurrency ?? 2 * os.cpus().length, classNames: o.classNames,
    warn: o.onWarning ?? ((m: string) => process.emitWarning(m, 'ResnetTorchWarning')),
  };
}

/** Lists the classes (sorted sub-folders) and their image files. */
export async function scanImageFolder(root: string, classNames?: string[]): Promise<{ classNames: string[]; files: ImageFile[] }> {
  let entries;
  try {
    entries = await fsp.readdir(root, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(root, code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : (e as Error).message);
  }
  const folders = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  if (folders.length === 0) throw new DatasetError(root, 'no class sub-folders: an image folder holds one sub-folder of images per class');
  const names = classNames ?? folders;
  for (const name of names) if (!folders.includes(name)) throw new DatasetError(path.join(root, name), 'class folder missing');
  const files: ImageFile[] = [];
  for (let label = 0; label < names.length; label++) {
    const dir = path.join(root, names[label]);
    const images = (await fsp.readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile() && !e.name.startsWith('.') && IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase()))
      .map((e) => e.name).sort();
    if (images.length === 0) throw new DatasetError(dir, `empty class folder: no ${IMAGE_EXTENSIONS.join(', ')} images`);
    for (const f of images) files.push({ file: path.join(dir, f), label });
  }
  return { classNames: names, files };
}

/** Decodes one image to C×H×W uint8 at the configured size. */
export async function decodeImage(file: string, o: Pick<Resolved, 'height' | 'width' | 'channels' | 'fit'>): Promise<Uint8Array> {
  let result;
  try {
    const sharp = (await import('sharp')).default; // loaded on first use: most runs never decode images
    let p = sharp(file, { failOn: 'warning' }).rotate().resize(o.width, o.height, { fit: o.fit, position: 'centre' });
    p = o.channels === 1 ? p.greyscale() : p.toColourspace('srgb');
    result = await p.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new DatasetError(file, `cannot decode the image (${(e as Error).message.split('\n')[0]})`);
  }
  const { data, info } = result;
  const hw = o.height * o.width;
  if (info.width !== o.width || info.height !== o.height) throw new DatasetError(file, `decoded to ${info.width}x${info.height}, expected ${o.width}x${o.height}`);
  const out = new Uint8Array(o.channels * hw);
  if (info.channels === o.channels) {
    // interleaved HWC -> planar CHW
    for (let c = 0; c < o.channels; c++) for (let i = 0; i < hw; i++) out[c * hw + i] = data[i * info.channels + c];
  } else if (info.channels === 1) {
    for (let c = 0; c < o.channels; c++) out.set(data.subarray(0, hw), c * hw);
  } else {
    throw new DatasetError(file, `decoded to ${info.channels} channels, expected ${o.channels}`);
  }
  return out;
}

/**
 * Runs `work` over items with at most `limit` in flight, keeping the order of results. On a failure no new item
 * starts; the items in flight finish and the failure of the earliest item is thrown, so the error names the same
 * file on every run whatever order the decodes finish in.
 */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failedAt = Infinity;
  let failure: unknown;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && failedAt === Infinity) {
      const i = next++;
      try {
        out[i] = await work(items[i], i);
      } catch (error) {
        if (i < failedAt) [failedAt, failure] = [i, error];
      }
    }
  });
  await Promise.all(workers);
  if (failedAt !== Infinity) throw failure;
  return out;
}

/** Decodes files; bad ones fail (with the path) or are skipped (warned, counted). */
async function decodeAll(files: ImageFile[], o: Resolved) {
  const size = o.channels * o.height * o.width;
  const decoded = await mapLimited(files, o.concurrency, async (f) => {
    try {
      return await decodeImage(f.file, o);
    } catch (e) {
      if (o.onBadImage === 'fail') throw e;
      o.warn(`skipping ${(e as Error).message}`);
      return undefined;
    }
  });
  const kept = decoded.map((d, i) => (d ? i : -1)).filter((i) => i >= 0);
  const images = new Uint8Array(kept.length * size);
  kept.forEach((i, k) => images.set(decoded[i]!, k * size));
  return { images, labels: kept.map((i) => files[i].label), skipped: files.filter((_, i) => !decoded[i]).map((f) => f.file) };
}

/** An image folder decoded into memory. */
export async function imageFolder(options: ImageFolderOptions): Promise<Dataset> {
  const o = resolve(options);
  const { classNames, files } = await scanImageFolder(o.root, o.classNames);
  const { images, labels, skipped } = await decodeAll(files, o);
  if (labels.length === 0) throw new DatasetError(o.root, `no image could be decoded (${skipped.length} skipped)`);
  const dataset = await fromArrays({ images, shape: [labels.length, o.channels, o.height, o.width], labels, numClasses: classNames.length,
    classNames, name: path.basename(o.root) }, o.root);
  dataset.skipped = skipped;
  return dataset;
}

/** An image folder too large for memory: decoded batch by batch while the trainer runs. */
export async function streamImageFolder(options: ImageFolderOptions): Promise<StreamingDataset> {
  const o = resolve(options);
  const { classNames, files } = await scanImageFolder(o.root, o.classNames);
  return new StreamingDataset(files, classNames, o, path.basename(o.root));
}

export interface StreamParams {
  batchSize: number;
  startIteration: number;
  totalIterations: number;
  seed: number;
  shuffle: boolean;
  dropLast: boolean;
  /** Batches decoded ahead of the trainer (the bounded queue's size). */
  ahead?: number;
}

export class StreamingDataset {
  readonly name: string;
  readonly shape: [number, number, number];
  readonly length: number;
  readonly numClasses: number;
  readonly classNames: string[];
  readonly source: string;
  /** Images left out so far because they could not be decoded (onBadImage: 'skip'). */
  readonly skipped: string[] = [];
  readonly #files: ImageFile[];
  readonly #options: Resolved;
  #stats?: Promise<DatasetStats>;

  /** @internal */
  constructor(files: ImageFile[], classNames: string[], options: Resolved, name: string) {
    this.#files = files;
    this.#options = options;
    this.name = name;
    this.source = options.root;
    this.shape = [options.channels, options.height, options.width];
    this.length = files.length;
    this.numClasses = classNames.length;
    this.classNames = classNames;
  }

  get files(): readonly ImageFile[] {
    return this.#files;
  }

  labelCounts(): number[] {
    const counts = new Array(this.numClasses).fill(0);
    for (const f of this.#files) counts[f.label]++;
    return counts;
  }

  subset(indices: ArrayLike<number>, name = `${this.name} (subset)`): StreamingDataset {
    const files = Array.from(indices, (i, k) => {
      if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new ValidationError(`indices[${k}]`, i, `an integer in [0, ${this.length - 1}]`);
      return this.#files[i];
    });
    return new StreamingDataset(files, this.classNames, this.#options, name);
  }

  split(options: { validation: number; seed?: number }): { train: StreamingDataset; validation: StreamingDataset } {
    const v = options.validation;
    const count = v < 1 ? Math.round(v * this.length) : v;
    if (!Number.isInteger(count) || count < 1 || count >= this.length)
      throw new ValidationError('split.validation', v, `a count in [1, ${this.length - 1}] or a fraction in (0, 1)`);
    const order = permutation(this.length, options.seed ?? 0);
    return { validation: this.subset(order.subarray(0, count), `${this.name} (validation)`), train: this.subset(order.subarray(count), `${this.name} (train)`) };
  }

  /** Decodes every image into memory (for evaluation sets). */
  async load(): Promise<Dataset> {
    const { images, labels, skipped } = await decodeAll(this.#files, this.#options);
    this.skipped.push(...skipped);
    const d = await fromArrays({ images, shape: [labels.length, ...this.shape], labels, numClasses: this.numClasses, classNames: this.classNames,
      name: this.name }, this.source);
    d.skipped = skipped;
    return d;
  }

  /** Per-pixel mean and per-channel mean/std: one decoding pass, cached under the user's cache folder. */
  stats(): Promise<DatasetStats> {
    this.#stats ??= this.#computeStats();
    return this.#stats;
  }

  async #computeStats(): Promise<DatasetStats> {
    const key = createHash('sha1').update(JSON.stringify([this.shape, this.#options.fit, this.#files.map((f) => f.file)])).digest('hex').slice(0, 20);
    const cacheFile = path.join(process.env.RESNET_TORCH_CACHE ?? path.join(os.homedir(), '.cache', 'resnet-torch'), `stream-stats-${key}.json`);
    try {
      const c = JSON.parse(await fsp.readFile(cacheFile, 'utf8'));
      return { channelMean: c.channelMean, channelStd: c.channelStd, meanImage: Float32Array.from(c.meanImage) };
    } catch {
      // compute below
    }
    const [c, h, w] = this.shape;
    const hw = h * w;
    const sum = new Float64Array(c * hw);
    const sq = new Float64Array(c);
    let n = 0;
    const chunk = 256;
    for (let start = 0; start < this.length; start += chunk) {
      const { images, labels } = await decodeAll(this.#files.slice(start, start + chunk), this.#options);
      for (let k = 0; k < labels.length; k++, n++)
        for (let ch = 0; ch < c; ch++)
          for (let i = 0; i < hw; i++) {
            const v = images[(k * c + ch) * hw + i] / 255;
            sum[ch * hw + i] += v;
            sq[ch] += v * v;
          }
    }
    const meanImage = Float32Array.from(sum, (v) => v / Math.max(n, 1));
    const channelMean: number[] = [], channelStd: number[] = [];
    for (let ch = 0; ch < c; ch++) {
      let m = 0;
      for (let i = 0; i < hw; i++) m += sum[ch * hw + i];
      m /= n * hw;
      channelMean.push(m);
      channelStd.push(Math.sqrt(Math.max(0, sq[ch] / (n * hw) - m * m)));
    }
    const stats = { meanImage, channelMean, channelStd };
    await fsp.mkdir(path.dirname(cacheFile), { recursive: true }).then(() =>
      fsp.writeFile(cacheFile, JSON.stringify({ ...stats, meanImage: Array.from(meanImage) }))).catch(() => undefined);
    return stats;
  }

  /**
   * @internal Opens the native queue and decodes the batches of iterations [start, total) into it, in the
   * trainer's order: epoch e is shuffled with a seed derived from (seed, e), so a resumed run sees the
   * same batches. Decoding runs ahead of the trainer by up to `ahead` batches.
   */
  openStream(p: StreamParams): { queue: NativeBatchQueue; stop: () => void; error: () => Error | undefined; finished: Promise<void> } {
    const perEpoch = p.dropLast ? Math.floor(this.length / p.batchSize) : Math.ceil(this.length / p.batchSize);
    const ahead = p.ahead ?? 4;
    const queue = new (native().BatchQueue)(ahead, perEpoch);
    let stopped = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    queue.onSpace(() => wake?.());
    const orders = new Map<number, Int32Array>();
    const orderOf = (epoch: number) => {
      let order = orders.get(epoch);
      if (!order) {
        order = p.shuffle ? permutation(this.length, deriveSeed(p.seed, epoch)) : Int32Array.from({ length: this.length }, (_, i) => i);
        orders.clear();
        orders.set(epoch, order);
      }
      return order;
    };
    const decodeBatch = async (it: number) => {
      const epoch = Math.floor(it / perEpoch), index = it % perEpoch;
      const order = orderOf(epoch);
      const files = Array.from(order.subarray(index * p.batchSize, Math.min(this.length, (index + 1) * p.batchSize)), (i) => this.#files[i]);
      const { images, labels, skipped } = await decodeAll(files, this.#options);
      this.skipped.push(...skipped);
      if (labels.length === 0) throw new DatasetError(this.source, `every image of epoch ${epoch} batch ${index} failed to decode`);
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
    return { queue, stop: () => { stopped = true; queue.close('the stream was stopped'); wake?.(); }, error: () => failure, finished };
  }
}
