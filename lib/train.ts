// train(model, data, options): the facade over the native training loop. Everything is validated and
// resolved here (iterations, schedule, normalisation statistics) before one call starts the native
// thread; progress comes back as events (callbacks and an async iterator), the result as a Promise.
import { Dataset } from './datasets/dataset';
import { StreamingDataset } from './datasets/image-folder';
import { ValidationError, fromNative } from './errors';
import type { Model } from './model';
import { NativeAugment, NativeEvalMetrics, NativeEvent, NativeResult, NativeRun, NativeTrainState, native } from './native';
import { Fields, ObjectSchema, Schema, s } from './validate';

// ---- options ----------------------------------------------------------------------------------------

export interface SgdOptions {
  type: 'sgd';
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /** No weight decay on BN parameters and biases. */
  noDecayOnBnAndBias?: boolean;
}

export interface AdamWOptions {
  type: 'adamw';
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  noDecayOnBnAndBias?: boolean;
}

export type ScheduleOptions =
  | { type: 'constant' }
  /** ÷gamma at each milestone (iterations, or epochs with unit 'epoch'): the paper's 32k/48k. */
  | { type: 'multistep'; milestones: number[]; unit?: 'iteration' | 'epoch'; gamma?: number }
  | { type: 'cosine'; minLr?: number }
  | { type: 'onecycle'; maxLr?: number; pctStart?: number; divFactor?: number; finalDivFactor?: number }
  | { type: 'plateau'; metric?: PlateauMetric; factor?: number; patience?: number; threshold?: number; cooldown?: number; minLr?: number };

export type PlateauMetric = 'val_loss' | 'val_error' | 'test_loss' | 'test_error' | 'train_loss';

export interface AugmentOptions {
  /** Pad with zeros by this many pixels and crop back at a random offset (the paper: 4). */
  padCrop?: number;
  /** Random horizontal flip. */
  flip?: boolean;
  /** ImageNet-style random-resized-crop to `size`. */
  randomResizedCrop?: { size?: number | [number, number]; scale?: [number, number]; ratio?: [number, number] };
}

export type NormalizeOption = 'none' | 'per-pixel' | 'per-channel' | { mean: number[]; std: number[] };

export interface TrainOptions {
  /** Length of the run: exactly one of epochs and iterations. */
  epochs?: number;
  iterations?: number;
  batchSize?: number;
  optimizer?: SgdOptions | AdamWOptions;
  schedule?: ScheduleOptions;
  /** Linear warm-up of the rate over the first iterations. */
  warmup?: { iterations: number; startFactor?: number };
  /** The paper's ResNet-110 warm-up: `lr` until the training error falls below `untilTrainError`. */
  errorWarmup?: { lr?: number; untilTrainError?: number };
  labelSmoothing?: number;
  augment?: AugmentOptions;
  /** Input normalisation: the per-pixel mean image (the paper's CIFAR), per-channel mean/std (default),
   *  explicit values, or none. Statistics come from the training set. */
  normalize?: NormalizeOption;
  /** Held-out sets (a streamed folder is loaded into memory for evaluation). */
  validation?: Dataset | StreamingDataset;
  test?: Dataset | StreamingDataset;
  evalEvery?: { epochs: number } | { iterations: number };
  evalBatchSize?: number;
  /** Progress event every this many iterations. */
  logEvery?: number;
  seed?: number;
  /** Bit-identical CPU runs; deterministic algorithms and no cuDNN benchmark on CUDA. */
  deterministic?: boolean;
  /** Gradient norm at each block's input and each block's response std, in iteration events. */
  diagnostics?: boolean;
  threads?: number;
  shuffle?: boolean;
  dropLast?: boolean;
  precision?: 'float32' | 'bfloat16' | 'float16';
  memoryFormat?: 'auto' | 'channels_last' | 'contiguous';
  cudnnBenchmark?: boolean;
  /** Capture the whole step in a CUDA graph after 3 eager iterations (CUDA, SGD, float32, static shapes):
   *  for small networks, where kernel launches dominate. */
  cudaGraph?: boolean;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

// ---- results ----------------------------------------------------------------------------------------

export interface EvalMetrics {
  split: string;
  count: number;
  loss: number;
  top1Error: number;
  top5Error: number;
  accuracy: number;
  perClassAccuracy: number[];
  /** confusion[true][predicted] */
  confusion: number[][];
}

export interface ProgressEvent {
  kind: 'iteration' | 'epoch' | 'evaluation' | 'checkpoint';
  /** Iterations done. */
  iteration: number;
  epoch: number;
  totalIterations: number;
  lr: number;
  loss?: number;
  trainError?: number;
  imagesPerSecond?: number;
  /** Seconds the loop waited for data over the same window (a streamed source that cannot keep up). */
  dataWaitSeconds?: number;
  etaSeconds: number;
  elapsedSeconds: number;
  lossScale?: number;
  evaluations?: { val?: EvalMetrics; test?: EvalMetrics };
  diagnostics?: { gradNorms: number[]; responseStds: number[] };
}

export interface TrainResult {
  /** The run was stopped by its AbortSignal (after a complete iteration) rather than finishing. */
  aborted: boolean;
  iteration: number;
  epoch: number;
  totalIterations: number;
  elapsedSeconds: number;
  imagesPerSecond: number;
  lr: number;
  evaluations: { val?: EvalMetrics; test?: EvalMetrics };
  /** Epoch and evaluation events, in order. */
  history: ProgressEvent[];
}

/** How inputs are normalised; kept on the model after training so evaluation and prediction match. */
export interface Preprocessing {
  normalize: 'none' | 'per-pixel' | 'per-channel';
  mean?: number[];
  meanShape?: number[];
  std?: number[];
  /** Training crop size when random-resized-crop trains at another size than the stored images. */
  size?: [number, number];
}

// ---- schema -----------------------------------------------------------------------------------------

const lr = s.number({ min: 0, minExclusive: true, max: 100 });
const rate01 = s.number({ min: 0, max: 1, maxExclusive: true });
const pair = (item: Schema<number>) => s.array(item, { minLength: 2, maxLength: 2 }) as unknown as Schema<[number, number]>;

const optimizerSchema = s.tagged('type', {
  sgd: s.object({
    type: s.enum(['sgd'] as const), lr, momentum: s.optional(rate01), nesterov: s.optional(s.boolean()),
    weightDecay: s.optional(s.number({ min: 0, max: 1 })), noDecayOnBnAndBias: s.optional(s.boolean()),
  }),
  adamw: s.object({
    type: s.enum(['adamw'] as const), lr, betas: s.optional(pair(rate01)), eps: s.optional(s.number({ min: 0, minExclusive: true, max: 1 })),
    weightDecay: s.optional(s.number({ min: 0, max: 10 })), noDecayOnBnAndBias: s.optional(s.boolean()),
  }),
});

const increasing = (values: number[]) =>
  values.every((v, i) => i === 0 || v > values[i - 1]) ? undefined : `milestones must be strictly increasing, got [${values.join(', ')}]`;

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
    type: s.enum(['onecycle'] as const), maxLr: s.optional(lr), pctStart: s.optional(s.number({ min: 0, max: 1, minExclusive: true, maxExclusive: true })),
    divFactor: s.optional(s.number({ min: 1 })), finalDivFactor: s.optional(s.number({ min: 1 })),
  }),
  plateau: s.object({
    type: s.enum(['plateau'] as const), metric: s.optional(plateauMetric), factor: s.optional(s.number({ min: 0, max: 1, minExclusive: true, maxExclusive: true })),
    patience: s.optional(s.integer({ min: 0 })), threshold: s.optional(s.number({ min: 0 })), cooldown: s.optional(s.integer({ min: 0 })),
    minLr: s.optional(s.number({ min: 0 })),
  }),
});

const sizeSchema = s.union<number | [number, number]>(s.integer({ min: 1, max: 16384 }), pair(s.integer({ min: 1, max: 16384 })));

export const augmentSchema: Schema<AugmentOptions> = s.object<AugmentOptions>({
  padCrop: s.optional(s.integer({ min: 0, max: 512 })),
  flip: s.optional(s.boolean()),
  randomResizedCrop: s.optional(s.object({
    size: s.optional(sizeSchema),
    scale: s.optional(s.refine(pair(s.number({ min: 0, minExclusive: true, max: 1 })), (v) => (v[0] <= v[1] ? undefined : 'scale must be [min, max] with min ≤ max'))),
    ratio: s.optional(s.refine(pair(s.number({ min: 0, minExclusive: true, max: 100 })), (v) => (v[0] <= v[1] ? undefined : 'ratio must be [min, max] with min ≤ max'))),
  })),
});

export const normalizeSchema: Schema<NormalizeOption> = s.union<NormalizeOption>(
  s.enum(['none', 'per-pixel', 'per-channel'] as const),
  s.object({ mean: s.array(s.number(), { minLength: 1 }), std: s.array(s.number({ min: 0, minExclusive: true }), { minLength: 1 }) }),
);

/** The options a config file can hold (everything but datasets, signal and callbacks). */
export const trainFields: Fields = {
  epochs: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  iterations: s.optional(s.integer({ min: 1, max: 1_000_000_000 })),
  batchSize: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  optimizer: s.optional(optimizerSchema),
  schedule: s.optional(scheduleSchema),
  warmup: s.optional(s.object({ iterations: s.integer({ min: 1 }), startFactor: s.optional(s.number({ min: 0, max: 1 })) })),
  errorWarmup: s.optional(s.object({ lr: s.optional(lr), untilTrainError: s.optional(s.number({ min: 0, max: 1, minExclusive: true })) })),
  labelSmoothing: s.optional(rate01),
  augment: s.optional(augmentSchema),
  normalize: s.optional(normalizeSchema),
  evalEvery: s.optional(s.union(s.object({ epochs: s.integer({ min: 1 }) }), s.object({ iterations: s.integer({ min: 1 }) }))),
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
};

const anything = new (class extends Schema<unknown> {
  parse(value: unknown): unknown {
    return value;
  }
  describe(): string {
    return 'any value';
  }
  protected json() {
    return {};
  }
})();

const optionsSchema: ObjectSchema<TrainOptions> = s.object<TrainOptions>({
  ...trainFields,
  validation: s.optional(anything),
  test: s.optional(anything),
  signal: s.optional(anything),
  onProgress: s.optional(anything),
});

// ---- resolution -------------------------------------------------------------------------------------

/** @internal what resuming a run needs on top of the options */
export interface ResumeState {
  startIteration: number;
  optimizerSteps: number;
  lossScale?: number;
  schedule: NativeTrainState['schedule'];
  optimizer: { name: string; shape: number[]; data: Float32Array }[];
  epochMeter?: { lossSum: number; wrong: number; images: number };
}

/** @internal hooks the checkpoint layer uses */
export interface RunHooks {
  resume?: ResumeState;
  checkpointEveryIterations?: number;
  stateAtEnd?: boolean;
  /** Also hand over the state with each evaluation (to keep the best checkpoint). */
  stateOnEvaluation?: boolean;
  /** States taken during the run: periodic checkpoints, and evaluations when asked. */
  onState?: (state: NativeTrainState, event: ProgressEvent) => void;
  /** The state when the run stopped (with stateAtEnd), before the run's promise settles. */
  onFinalState?: (state: NativeTrainState, aborted: boolean) => void;
}

export interface ResolvedRun {
  config: Record<string, unknown>;
  totalIterations: number;
  iterationsPerEpoch: number;
  preprocessing: Preprocessing;
}

function metrics(m: NativeEvalMetrics): EvalMetrics {
  return { ...m, accuracy: 1 - m.top1Error };
}

function evaluations(e: Record<string, NativeEvalMetrics> | undefined): ProgressEvent['evaluations'] {
  const out: ProgressEvent['evaluations'] = {};
  for (const [k, v] of Object.entries(e ?? {})) (out as Record<string, EvalMetrics>)[k] = metrics(v);
  return out;
}

/** Normalisation settings as the native side takes them, from the resolved preprocessing. */
export function nativeNormalization(p: Preprocessing): NativeAugment {
  if (p.normalize === 'none') return { norm: 'none' };
  return {
    norm: p.normalize,
    mean: Float32Array.from(p.mean ?? []),
    meanShape: p.meanShape ?? [p.mean?.length ?? 0],
    ...(p.std ? { std: Float32Array.from(p.std) } : {}),
  };
}

export async function resolvePreprocessing(option: NormalizeOption, data: TrainData): Promise<Preprocessing> {
  if (option === 'none') return { normalize: 'none' };
  if (typeof option === 'object') {
    const c = data.shape[0];
    if (option.mean.length !== c || option.std.length !== c)
      throw new ValidationError('normalize', option, `mean and std of ${c} values, one per channel`);
    return { normalize: 'per-channel', mean: [...option.mean], meanShape: [c], std: [...option.std] };
  }
  const stats = await data.stats();
  if (option === 'per-pixel') return { normalize: 'per-pixel', mean: Array.from(stats.meanImage), meanShape: [...data.shape] };
  return { normalize: 'per-channel', mean: stats.channelMean, meanShape: [data.shape[0]],
    std: stats.channelStd.map((v) => (v > 0 ? v : 1)) };
}

export type TrainData = Dataset | StreamingDataset;

export async function resolveRun(model: Model, data: TrainData, options: TrainOptions, hooks: RunHooks = {}): Promise<ResolvedRun> {
  const o = optionsSchema.parse(options, '');
  if (!(data instanceof Dataset) && !(data instanceof StreamingDataset))
    throw new ValidationError('data', data, 'a Dataset (from the datasets readers or fromArrays) or a StreamingDataset');
  for (const key of ['validation', 'test'] as const)
    if (o[key] !== undefined && !(o[key] instanceof Dataset) && !(o[key] instanceof StreamingDataset)) throw new ValidationError(key, o[key], 'a Dataset');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new ValidationError('signal', o.signal, 'an AbortSignal');
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new ValidationError('onProgress', o.onProgress, 'a function');
  if ((o.epochs === undefined) === (o.iterations === undefined))
    throw new ValidationError(o.epochs === undefined ? 'epochs' : 'iterations', o.epochs ?? o.iterations, 'exactly one of epochs and iterations',
      'give exactly one of epochs and iterations');

  const batchSize = o.batchSize ?? 128;
  if (batchSize > data.length)
    throw new ValidationError('batchSize', batchSize, `at most ${data.length}`, `batchSize: ${batchSize} is larger than the training set (${data.length} images)`);
  const dropLast = o.dropLast ?? true;
  const perEpoch = dropLast ? Math.floor(data.length / batchSize) : Math.ceil(data.length / batchSize);
  const total = o.iterations ?? (o.epochs as number) * perEpoch;

  // What the model can take.
  const [c, h, w] = data.shape;
  if (c !== model.inChannels)
    throw new ValidationError('data', data.name, `images of ${model.inChannels} channels`,
      `data: ${data.name} has ${c}-channel images, the model takes ${model.inChannels} (set inChannels: ${c} in the model spec)`);
  const rrc = o.augment?.randomResizedCrop;
  const rrcSize = rrc?.size === undefined ? [h, w] : typeof rrc.size === 'number' ? [rrc.size, rrc.size] : rrc.size;
  const min = model.minInputSize;
  if (rrcSize[0] < min || rrcSize[1] < min)
    throw new ValidationError(rrc ? 'augment.randomResizedCrop.size' : 'data', rrcSize, `at least ${min}x${min}`,
      `${rrc ? 'augment.randomResizedCrop.size' : 'data'}: inputs of ${rrcSize[0]}x${rrcSize[1]} are too small for the model (minimum ${min}x${min})`);
  if (data.numClasses > model.numClasses)
    throw new ValidationError('data', data.name, `labels below ${model.numClasses}`,
      `data: ${data.name} has ${data.numClasses} classes (labels up to ${data.numClasses - 1}), the model has ${model.numClasses} outputs: labels out of range`);
  for (const key of ['validation', 'test'] as const) {
    const d = o[key];
    if (!d) continue;
    if (d.shape.some((v, i) => v !== data.shape[i]))
      throw new ValidationError(key, d.name, `images of shape [${data.shape.join(', ')}]`,
        `${key}: ${d.name} has images of [${d.shape.join(', ')}], the training set [${data.shape.join(', ')}]`);
    if (d.numClasses > model.numClasses)
      throw new ValidationError(key, d.name, `labels below ${model.numClasses}`, `${key}: ${d.numClasses} classes, the model has ${model.numClasses} outputs`);
  }

  // Optimizer and schedule.
  const optimizer = o.optimizer ?? { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 };
  const schedule = o.schedule ?? { type: 'constant' };
  const sched: Record<string, unknown> = { type: schedule.type, baseLr: optimizer.lr, totalIterations: total, iterationsPerEpoch: perEpoch };
  if (schedule.type === 'multistep') {
    const unit = schedule.unit ?? 'iteration';
    const limit = unit === 'epoch' ? Math.ceil(total / perEpoch) : total;
    const late = schedule.milestones.find((m) => m >= limit);
    if (late !== undefined)
      throw new ValidationError('schedule.milestones', schedule.milestones, `milestones below ${limit} (${unit}s in the run)`,
        `schedule.milestones: ${late} is not before the end of the run (${limit} ${unit}s)`);
    Object.assign(sched, { milestones: schedule.milestones, milestonesInEpochs: unit === 'epoch', gamma: schedule.gamma ?? 0.1 });
  } else if (schedule.type === 'cosine') {
    Object.assign(sched, { minLr: schedule.minLr ?? 0 });
  } else if (schedule.type === 'onecycle') {
    Object.assign(sched, { maxLr: schedule.maxLr ?? optimizer.lr, pctStart: schedule.pctStart ?? 0.3, divFactor: schedule.divFactor ?? 25,
      finalDivFactor: schedule.finalDivFactor ?? 1e4 });
  } else if (schedule.type === 'plateau') {
    Object.assign(sched, { factor: schedule.factor ?? 0.1, patience: schedule.patience ?? 10, threshold: schedule.threshold ?? 1e-4,
      cooldown: schedule.cooldown ?? 0, minLr: schedule.minLr ?? 0 });
  }
  const plateauMetricName = schedule.type === 'plateau' ? schedule.metric ?? (o.validation ? 'val_loss' : 'train_loss') : 'val_loss';
  if (schedule.type === 'plateau' && plateauMetricName !== 'train_loss' && !o[plateauMetricName.startsWith('val') ? 'validation' : 'test'])
    throw new ValidationError('schedule.metric', plateauMetricName, 'a metric of a split the run evaluates',
      `schedule.metric: ${plateauMetricName} needs the ${plateauMetricName.startsWith('val') ? 'validation' : 'test'} option`);
  if (o.warmup) {
    if (o.warmup.iterations >= total)
      throw new ValidationError('warmup.iterations', o.warmup.iterations, `fewer than the run's ${total} iterations`);
    Object.assign(sched, { warmupIterations: o.warmup.iterations, warmupStartFactor: o.warmup.startFactor ?? 0.1 });
  }
  if (o.errorWarmup) Object.assign(sched, { errorWarmup: true, errorWarmupLr: o.errorWarmup.lr ?? 0.01, errorWarmupThreshold: o.errorWarmup.untilTrainError ?? 0.8 });

  // Device-dependent settings.
  const cuda = model.device.startsWith('cuda');
  const precision = o.precision ?? 'float32';
  if (precision !== 'float32' && !cuda)
    throw new ValidationError('precision', precision, '"float32" on the CPU', `precision: ${precision} needs the model on a CUDA device (it is on ${model.device})`);
  if (o.cudaGraph) {
    const why = !cuda ? `the model on a CUDA device (it is on ${model.device})` : optimizer.type !== 'sgd' ? 'the SGD optimizer'
      : precision !== 'float32' ? 'precision float32' : o.diagnostics ? 'diagnostics off' : o.dropLast === false ? 'dropLast' : undefined;
    if (why) throw new ValidationError('cudaGraph', true, why, `cudaGraph: needs ${why}`);
  }
  const memoryFormat = o.memoryFormat ?? 'auto';
  // channels_last takes oneDNN's fast path on the CPU (about 2x here) and the tensor cores' with AMP on CUDA.
  const channelsLast = memoryFormat === 'channels_last' || (memoryFormat === 'auto' && (!cuda || precision !== 'float32'));

  const preprocessing = await resolvePreprocessing(o.normalize ?? 'per-channel', data);
  if (rrc && (rrcSize[0] !== h || rrcSize[1] !== w)) preprocessing.size = [rrcSize[0], rrcSize[1]];
  const augment: NativeAugment = {
    ...nativeNormalization(preprocessing),
    pad: o.augment?.padCrop ?? 0,
    flip: o.augment?.flip ?? false,
    ...(rrc ? { randomResizedCrop: true, scaleMin: rrc.scale?.[0] ?? 0.08, scaleMax: rrc.scale?.[1] ?? 1, ratioMin: rrc.ratio?.[0] ?? 3 / 4,
      ratioMax: rrc.ratio?.[1] ?? 4 / 3, outHeight: rrcSize[0], outWidth: rrcSize[1] } : {}),
  };
  const evalEvery = o.evalEvery ?? { epochs: 1 };
  const resume = hooks.resume;
  if (resume && resume.startIteration > total)
    throw new ValidationError('iterations', total, `at least the ${resume.startIteration} iterations already done`);
  const config: Record<string, unknown> = {
    batchSize, totalIterations: total, startIteration: resume?.startIteration ?? 0, seed: o.seed ?? model.spec.seed,
    shuffle: o.shuffle ?? true, dropLast, deterministic: o.deterministic ?? false, cudnnBenchmark: o.cudnnBenchmark ?? !o.deterministic,
    optimizer: optimizer.type === 'sgd'
      ? { type: 'sgd', momentum: optimizer.momentum ?? 0.9, nesterov: optimizer.nesterov ?? false, weightDecay: optimizer.weightDecay ?? 0,
        noDecayBnBias: optimizer.noDecayOnBnAndBias ?? false }
      : { type: 'adamw', beta1: optimizer.betas?.[0] ?? 0.9, beta2: optimizer.betas?.[1] ?? 0.999, eps: optimizer.eps ?? 1e-8,
        weightDecay: optimizer.weightDecay ?? 0.01, noDecayBnBias: optimizer.noDecayOnBnAndBias ?? false },
    schedule: sched,
    scheduleState: resume?.schedule ?? {},
    augment,
    labelSmoothing: o.labelSmoothing ?? 0,
    logEvery: o.logEvery ?? 50,
    evalEveryIterations: 'iterations' in evalEvery ? evalEvery.iterations : 0,
    evalEveryEpochs: 'epochs' in evalEvery ? evalEvery.epochs : 0,
    evalBatchSize: o.evalBatchSize ?? 500,
    plateauMetric: plateauMetricName,
    diagnostics: o.diagnostics ?? false,
    threads: o.threads ?? 0,
    checkpointEveryIterations: hooks.checkpointEveryIterations ?? 0,
    stateAtEnd: hooks.stateAtEnd ?? false,
    stateOnEvaluation: hooks.stateOnEvaluation ?? false,
    ...(resume?.epochMeter ? { epochMeter: resume.epochMeter } : {}),
    channelsLast,
    precision,
    cudaGraph: o.cudaGraph ?? false,
    optimizerState: resume?.optimizer ?? [],
    optimizerSteps: resume?.optimizerSteps ?? 0,
    ...(resume?.lossScale ? { lossScale: resume.lossScale } : {}),
  };
  return { config, totalIterations: total, iterationsPerEpoch: perEpoch, preprocessing };
}

// ---- the run ----------------------------------------------------------------------------------------

/** A training run: await it (or `done`) for the result, iterate it for progress events, cancel() it. */
export class TrainingRun implements AsyncIterable<ProgressEvent>, PromiseLike<TrainResult> {
  readonly done: Promise<TrainResult>;
  readonly history: ProgressEvent[] = [];
  #listeners = new Set<(e: ProgressEvent | null) => void>();
  #cancel: () => void = () => undefined;
  #finished = false;

  /** @internal */
  constructor(start: (emit: (e: ProgressEvent) => void, setCancel: (c: () => void) => void) => Promise<TrainResult>) {
    this.done = start((e) => this.#emit(e), (c) => (this.#cancel = c)).finally(() => {
      this.#finished = true;
      for (const l of this.#listeners) l(null);
    });
  }

  /** Stops after the current iteration; `done` then resolves with `aborted: true`. */
  cancel(): void {
    this.#cancel();
  }

  then<A = TrainResult, B = never>(onFulfilled?: ((r: TrainResult) => A | PromiseLike<A>) | null, onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
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

/** @internal starts a resolved run on its native thread. */
export function startRun(model: Model, data: TrainData, options: TrainOptions, resolved: ResolvedRun, hooks: RunHooks = {}): TrainingRun {
  const { signal, onProgress } = options;
  return new TrainingRun(async (emit, setCancel) => {
    const total = resolved.totalIterations;
    const inMemory = async (d: TrainData | undefined) => (d instanceof StreamingDataset ? d.load() : d);
    const validation = await inMemory(options.validation);
    const test = await inMemory(options.test);
    const c = resolved.config as { batchSize: number; startIteration: number; seed: number; shuffle: boolean; dropLast: boolean };
    const stream = data instanceof StreamingDataset
      ? data.openStream({ batchSize: c.batchSize, startIteration: c.startIteration, totalIterations: total, seed: c.seed, shuffle: c.shuffle,
        dropLast: c.dropLast })
      : undefined;
    let callbackError: unknown;
    const toEvent = (e: NativeEvent): ProgressEvent => {
      const { state: _state, evaluations: evals, ...rest } = e;
      return { ...rest, totalIterations: total, ...(evals ? { evaluations: evaluations(evals) } : {}) };
    };
    let handle: NativeRun | undefined;
    try {
      handle = native().startTraining(model.handle(), stream ? stream.queue : (data as Dataset).handle(), validation?.handle(),
        test?.handle(), resolved.config, (e: NativeEvent) => {
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
        });
    } catch (e) {
      stream?.stop();
      throw fromNative(e);
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
      throw stream?.error() ?? fromNative(e);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream?.stop();
    }
    if (callbackError) throw callbackError;
    model.preprocessing = resolved.preprocessing;
    if (result.state) hooks.onFinalState?.(result.state, result.aborted);
    return {
      aborted: result.aborted, iteration: result.iteration, epoch: result.epoch, totalIterations: total, elapsedSeconds: result.elapsedSeconds,
      imagesPerSecond: result.imagesPerSecond, lr: result.lr, evaluations: evaluations(result.evaluations) ?? {}, history: [],
    };
  });
}
