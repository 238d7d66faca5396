// Dynamic batching: concurrent requests share one forward of up to maxBatch images. One forward is in flight at
// a time (a second would only compete for the same cores); requests that arrive meanwhile form the next batch,
// and an idle batcher starts at once unless maxDelayMs asks it to wait for company. The queue is bounded: past maxQueue images a request is refused at once with
// OverloadedError rather than queued into latency nobody will wait for.
import { AbortError, DeadlineError, DisposedError, OverloadedError, ShapeError, ValidationError } from '../errors';
import { ImageSource } from '../images';
import { Prediction, topK } from '../predictions';
import { Tensor, checkImageBatch } from '../tensor';
import { s } from '../validate';
import type { PredictOptions } from './inference-model';
import { ImageModelInfo, ImageOptions, imageOptionsSchema, imagesToBatch } from './image-batch';

/** What a batcher runs: a Model, an InferenceModel, or anything with a batched forward. */
export interface BatchModel {
  /** Classes of the classifier. */
  numClasses: number;
  /** Channels of the input images. */
  inChannels: number;
  /** Names of the classes, for predictions. */
  classNames?: string[];
  /** Logits for a batch. */
  forward(x: Tensor): Promise<Tensor>;
}

/** createBatcher()'s options: batch size, waiting, queue bound, and a hook per batch. */
export interface BatcherOptions {
  /** Most images in one forward (default 32). */
  maxBatch?: number;
  /** Longest a request waits for others to join its batch when no forward is running (default 0: it goes at
   *  once; requests that arrive during a forward always form the next batch). */
  maxDelayMs?: number;
  /** Most images waiting; past it requests fail with OverloadedError (default 8 × maxBatch). */
  maxQueue?: number;
  /** Called after each forward, for metrics. */
  onBatch?: (info: { size: number; ms: number; queued: number }) => void;
}

/** Per request: a deadline and an AbortSignal. */
export interface RequestOptions {
  /** Aborts the request (AbortError). */
  signal?: AbortSignal;
  /** Fail with DeadlineError if the result is not ready within this many ms of the call. */
  timeoutMs?: number;
}

/** A batcher's counters since it was made. */
export interface BatcherStats {
  /** Images waiting for a forward. */
  queued: number;
  /** Images in the forward now running. */
  inFlight: number;
  /** Forwards run. */
  batches: number;
  /** Images answered. */
  images: number;
  /** Requests refused (queue full, deadline, abort). */
  rejected: number;
}

const optionsSchema = s.object<BatcherOptions>({
  maxBatch: s.optional(s.integer({ min: 1, max: 65536 })),
  maxDelayMs: s.optional(s.number({ min: 0, max: 60_000 })),
  maxQueue: s.optional(s.integer({ min: 1, max: 1 << 24 })),
  onBatch: s.optional(s.func()),
});
const requestSchema = {
  signal: s.optional(s.any()),
  timeoutMs: s.optional(s.number({ min: 0, max: 3_600_000 })),
};

interface Pending {
  x: Tensor;
  key: string;
  resolve(logits: Tensor): void;
  reject(error: unknown): void;
  settled: boolean;
  cleanup(): void;
}

/** Dynamic batching over one model: requests that arrive together share a forward. Made by createBatcher(). */
export class Batcher {
  /** Most images per forward. */
  readonly maxBatch: number;
  /** Longest an idle batcher waits for company. */
  readonly maxDelayMs: number;
  /** Most images waiting before requests are refused. */
  readonly maxQueue: number;
  #model: BatchModel;
  #onBatch?: BatcherOptions['onBatch'];
  #queue: Pending[] = [];
  #queuedImages = 0;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;
  #stats = { batches: 0, images: 0, rejected: 0 };

  /** @internal use createBatcher() */
  constructor(model: BatchModel, options: BatcherOptions) {
    this.#model = model;
    this.maxBatch = options.maxBatch ?? 32;
    this.maxDelayMs = options.maxDelayMs ?? 0;
    this.maxQueue = options.maxQueue ?? 8 * this.maxBatch;
    this.#onBatch = options.onBatch;
  }

  /** The model the batcher runs. */
  get model(): BatchModel {
    return this.#model;
  }

  /** Logits for a batch [N, C, H, W] (usually N = 1), computed together with other callers' images. */
  forward(x: Tensor, options: RequestOptions = {}): Promise<Tensor> {
    s.object(requestSchema).parse(options, 'options');
    const input = checkImageBatch(x, 'input', { channels: this.#model.inChannels, minSize: 1 });
    if (this.#closed) return Promise.reject(new DisposedError('the batcher'));
    const n = input.shape[0];
    if (n > this.maxBatch)
      return Promise.reject(
        new ShapeError(`input: a request of ${n} images is larger than the batcher's maxBatch of ${this.maxBatch}`),
      );
    if (this.#queuedImages + n > this.maxQueue) {
      this.#stats.rejected++;
      return Promise.reject(
        new OverloadedError(`the queue is full (${this.#queuedImages} images waiting, maxQueue ${this.maxQueue})`),
      );
    }
    if (options.signal?.aborted) return Promise.reject(new AbortError());
    return new Promise<Tensor>((resolve, reject) => {
      const p: Pending = {
        x: input,
        key: input.shape.slice(1).join('x'),
        settled: false,
        resolve: (v) => finish(() => resolve(v)),
        reject: (e) => finish(() => reject(e)),
        cleanup: () => {},
      };
      const finish = (settle: () => void) => {
        if (p.settled) return;
        p.settled = true;
        p.cleanup();
        settle();
      };
      const leave = (error: Error) => {
        const i = this.#queue.indexOf(p);
        if (i >= 0) {
          this.#queue.splice(i, 1);
          this.#queuedImages -= n;
        }
        p.reject(error); // in flight: its row is computed and dropped
      };
      const onAbort = () => leave(new AbortError());
      const timer =
        options.timeoutMs !== undefined
          ? setTimeout(
              () => leave(new DeadlineError(`the request was not served within ${options.timeoutMs} ms`)),
              options.timeoutMs,
            )
          : undefined;
      options.signal?.addEventListener('abort', onAbort, { once: true });
      p.cleanup = () => {
        options.signal?.removeEventListener('abort', onAbort);
        if (timer) clearTimeout(timer);
      };
      this.#queue.push(p);
      this.#queuedImages += n;
      this.#schedule();
    });
  }

  /** The top-k classes per image of a normalised batch. */
  async predict(x: Tensor, options: PredictOptions & RequestOptions = {}): Promise<Prediction[][]> {
    const { topK: k, ...request } = options;
    const count = s.integer({ min: 1, max: this.#model.numClasses });
    const kk = count.parse(k ?? Math.min(5, this.#model.numClasses), 'topK');
    return topK(await this.forward(x, request), kk, this.#model.classNames);
  }

  /** The top-k classes of one image (bytes, a path or raw pixels), decoded as the model was trained. Needs a
   *  model that knows its input size (an InferenceModel, or `image` info passed to createBatcher). */
  async predictImage(
    image: ImageSource,
    options: PredictOptions & RequestOptions & ImageOptions = {},
  ): Promise<Prediction[]> {
    const { fit, maxPixels, ...rest } = options;
    s.object({ fit: imageOptionsSchema.fit, maxPixels: imageOptionsSchema.maxPixels }).parse(
      { fit, maxPixels },
      'options',
    );
    const info = imageInfo(this.#model);
    const x = await imagesToBatch([image], info, { fit, maxPixels }, () => 'image');
    return (await this.predict(x, rest))[0];
  }

  /** Queued, in flight, batches, images and rejections so far. */
  stats(): BatcherStats {
    return { queued: this.#queuedImages, inFlight: this.#inFlight, ...this.#stats };
  }

  /** Stops accepting requests and resolves once every queued and running request has its answer. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#queue.length > 0 || this.#running) {
      if (!this.#running) this.#flush();
      await this.#running;
    }
  }

  #schedule(): void {
    if (this.#running) return; // the running forward's end flushes what gathered meanwhile
    if (this.#queuedImages >= this.maxBatch || this.maxDelayMs === 0) return this.#flush();
    this.#timer ??= setTimeout(() => this.#flush(), this.maxDelayMs);
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running || this.#queue.length === 0) return;
    // The oldest request decides the image size; others of that size join it in arrival order.
    const key = this.#queue[0].key;
    const batch: Pending[] = [];
    let size = 0;
    for (let i = 0; i < this.#queue.length && size < this.maxBatch;) {
      const p = this.#queue[i];
      if (p.key === key && size + p.x.shape[0] <= this.maxBatch) {
        batch.push(p);
        size += p.x.shape[0];
        this.#queue.splice(i, 1);
      } else i++;
    }
    this.#queuedImages -= size;
    this.#inFlight = size;
    this.#running = this.#run(batch, size).finally(() => {
      this.#running = undefined;
      this.#inFlight = 0;
      if (this.#queue.length > 0) {
        // Whoever waited through the forward has waited long enough: go at once.
        this.#flush();
      }
    });
  }

  async #run(batch: Pending[], size: number): Promise<void> {
    const started = performance.now();
    const [, c, h, w] = batch[0].x.shape;
    const plane = c * h * w;
    let x: Tensor;
    if (batch.length === 1) x = batch[0].x;
    else {
      const data = new Float32Array(size * plane);
      let at = 0;
      for (const p of batch) {
        data.set(p.x.data, at);
        at += p.x.data.length;
      }
      x = { data, shape: [size, c, h, w] };
    }
    let logits: Tensor;
    try {
      logits = await this.#model.forward(x);
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    const k = logits.shape[1];
    let row = 0;
    for (const p of batch) {
      const n = p.x.shape[0];
      p.resolve({ data: logits.data.slice(row * k, (row + n) * k), shape: [n, k] });
      row += n;
    }
    this.#stats.batches++;
    this.#stats.images += size;
    this.#onBatch?.({ size, ms: performance.now() - started, queued: this.#queuedImages });
  }
}

function imageInfo(model: BatchModel): ImageModelInfo {
  const m = model as Partial<ImageModelInfo>;
  if (!Array.isArray(m.inputSize))
    throw new ValidationError(
      'model',
      'a model without an input size',
      'an InferenceModel',
      'predictImage: the batcher needs an InferenceModel (model.optimizeForInference()), which knows the image size',
    );
  return { inChannels: model.inChannels, preprocessing: m.preprocessing, inputSize: m.inputSize };
}

/** A batcher over `model`: concurrent forward/predict/predictImage calls share forwards. */
export function createBatcher(model: BatchModel, options: BatcherOptions = {}): Batcher {
  if (model === null || typeof model !== 'object' || typeof model.forward !== 'function')
    throw new ValidationError('model', model, 'a Model or an InferenceModel');
  return new Batcher(model, optionsSchema.parse(options, 'options'));
}
