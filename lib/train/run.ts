// A training run on its native thread: await it for the result, iterate it for progress events, cancel it.
import { Dataset } from '../datasets/dataset';
import { StreamingDataset } from '../datasets/image-folder';
import { toEvalMetrics } from '../eval-metrics';
import { Model, createModel } from '../model/model';
import {
  NativeEvalMetrics,
  NativeEvent,
  NativeResult,
  NativeRun,
  NativeTensorData,
  NativeTrainState,
  native,
} from '../native';
import type { ProgressEvent, TrainOptions } from './options';
import type { TrainResult } from './result';
import type { ResolvedRun, TrainData } from './resolve';

/** @internal what the checkpoint writer receives from a run */
export interface StateHandlers {
  /** States taken during the run: periodic checkpoints, and evaluations when asked. */
  onState?: (state: NativeTrainState, event: ProgressEvent) => void;
  /** The state when the run stopped (with stateAtEnd), before the run's promise settles. */
  onFinalState?: (state: NativeTrainState, aborted: boolean) => void;
}

function evaluations(e: Record<string, NativeEvalMetrics> | undefined): ProgressEvent['evaluations'] {
  const out: ProgressEvent['evaluations'] = {};
  for (const [k, v] of Object.entries(e ?? {}))
    (out as Record<string, ReturnType<typeof toEvalMetrics>>)[k] = toEvalMetrics(v);
  return out;
}

/** A training run: await it (or `done`) for the result, iterate it for progress events, cancel() it. */
export class TrainingRun implements AsyncIterable<ProgressEvent>, PromiseLike<TrainResult> {
  /** Settles with the result. */
  readonly done: Promise<TrainResult>;
  /** Epoch and evaluation events so far. */
  readonly history: ProgressEvent[] = [];
  #listeners = new Set<(e: ProgressEvent | null) => void>();
  #cancel: () => void = () => undefined;
  #finished = false;

  /** @internal */
  constructor(start: (emit: (e: ProgressEvent) => void, setCancel: (c: () => void) => void) => Promise<TrainResult>) {
    this.done = start(
      (e) => this.#emit(e),
      (c) => (this.#cancel = c),
    ).finally(() => {
      this.#finished = true;
      for (const l of this.#listeners) l(null);
    });
  }

  /** Stops after the current iteration; `done` then resolves with `aborted: true`. */
  cancel(): void {
    this.#cancel();
  }

  then<A = TrainResult, B = never>(
    onFulfilled?: ((r: TrainResult) => A | PromiseLike<A>) | null,
    onRejected?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.done.then(onFulfilled, onRejected);
  }

  #emit(e: ProgressEvent): void {
    if (e.kind === 'epoch' || e.kind === 'evaluation') this.history.push(e);
    for (const l of this.#listeners) l(e);
  }

  /** Events from now until the run ends. */
  async *[Symbol.asyncIterator](): AsyncIterator<ProgressEvent> {
    const queue: (ProgressEvent | null)[] = [];
    let wake: (() => void) | undefined;
    const listener = (e: ProgressEvent | null) => {
      queue.push(e);
      wake?.();
    };
    if (this.#finished) return;
    this.#listeners.add(listener);
    try {
      for (;;) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        const e = queue.shift();
        if (e === null || e === undefined) {
          await this.done.catch(() => undefined);
          return;
        }
        yield e;
      }
    } finally {
      this.#listeners.delete(listener);
    }
  }
}

/** A streamed folder's queue of this rank's batches, as the resolved run draws them (undefined for a Dataset). */
function openStream(data: TrainData, resolved: ResolvedRun) {
  if (!(data instanceof StreamingDataset)) return undefined;
  const c = resolved.config;
  return data.openStream({
    batchSize: c.batchSize,
    startIteration: c.startIteration,
    totalIterations: resolved.totalIterations,
    seed: c.seed,
    shuffle: c.shuffle,
    dropLast: c.dropLast,
    repeats: c.repeats,
    repeatsRound: c.repeatsRound,
    rank: resolved.group.rank,
    worldSize: resolved.group.worldSize,
  });
}

/** What the native result tells a user (the history is the caller's). */
async function resultOf(model: Model, result: NativeResult, total: number): Promise<TrainResult> {
  const ema = result.ema && (await emaModel(model, result.ema));
  return {
    aborted: result.aborted,
    iteration: result.iteration,
    epoch: result.epoch,
    totalIterations: total,
    elapsedSeconds: result.elapsedSeconds,
    imagesPerSecond: result.imagesPerSecond,
    lr: result.lr,
    evaluations: evaluations(result.evaluations) ?? {},
    history: [],
    engine: result.engine,
    phases: result.phases,
    ...(ema ? { ema } : {}),
    ...(result.stoppedEarly
      ? {
          earlyStopped: {
            iteration: result.iteration,
            bestIteration: result.earlyStop.bestIteration,
            best: result.earlyStop.best,
            restored: result.restoredBest,
          },
        }
      : {}),
  };
}

/** @internal starts a resolved run on its native thread. */
export function startRun(
  model: Model,
  data: TrainData,
  options: TrainOptions,
  resolved: ResolvedRun,
  hooks: StateHandlers = {},
): TrainingRun {
  const { signal, onProgress } = options;
  return new TrainingRun(async (emit, setCancel) => {
    const total = resolved.totalIterations;
    const inMemory = async (d: TrainData | undefined) => (d instanceof StreamingDataset ? d.load() : d);
    const validation = await inMemory(options.validation);
    const test = await inMemory(options.test);
    const stream = openStream(data, resolved);
    let callbackError: unknown;
    const toEvent = (e: NativeEvent): ProgressEvent => {
      const { state: _state, evaluations: evals, ...rest } = e;
      return {
        ...rest,
        totalIterations: total,
        iterationsPerEpoch: resolved.iterationsPerEpoch,
        ...(evals ? { evaluations: evaluations(evals) } : {}),
      };
    };
    let handle: NativeRun | undefined;
    try {
      handle = native().startTraining(
        model.handle(),
        stream ? stream.queue : (data as Dataset).handle(),
        validation?.handle(),
        test?.handle(),
        resolved.config,
        (e: NativeEvent) => {
          const event = toEvent(e);
          if (e.state && hooks.onState) hooks.onState(e.state, event);
          if (e.kind === 'checkpoint') return; // a state for the checkpoint writer, not progress
          emit(event);
          try {
            onProgress?.(event);
          } catch (err) {
            callbackError ??= err;
            handle?.cancel();
          }
        },
      );
    } catch (e) {
      stream?.stop();
      throw e;
    }
    const run = handle;
    setCancel(() => run.cancel());
    const onAbort = () => run.cancel();
    if (signal?.aborted) run.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    let result: NativeResult;
    try {
      result = await run.done;
    } catch (e) {
      // A streamed source that failed (an undecodable image) explains the failure better than the trainer.
      throw stream?.error() ?? e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream?.stop();
    }
    if (callbackError) throw callbackError;
    model.preprocessing = resolved.preprocessing;
    if (result.state) hooks.onFinalState?.(result.state, result.aborted);
    return resultOf(model, result, total);
  });
}

/** A model like `model` (spec, device, class names, preprocessing) holding the weights' moving average. */
async function emaModel(model: Model, ema: NativeTensorData[]): Promise<Model> {
  const { classNames: _names, ...spec } = model.spec;
  const out = await createModel({ ...spec, ...(model.classNames ? { classNames: model.classNames } : {}) });
  await out.handle().importState(ema);
  out.preprocessing = model.preprocessing;
  return out;
}
