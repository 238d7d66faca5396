// Options -> the native training config: every option validated, every default applied (TRAIN_DEFAULTS),
// the run's length, schedule and normalisation statistics resolved, before one call starts the native thread.
import { createHash } from 'crypto';
import * as path from 'path';

import { Dataset } from '../datasets/dataset';
import { StreamingDataset } from '../datasets/image-folder';
import { ValidationError } from '../errors';
import { checkDataFits } from '../model/data-fit';
import type { Model } from '../model/model';
import type {
  NativeAugment,
  NativeResumeState,
  NativeScheduleConfig,
  NativeTrainConfig,
  NativeTrainState,
} from '../native';
import { native } from '../native';
import { Preprocessing, nativeNormalization, resolvePreprocessing } from '../preprocess';
import { ProcessGroupInfo, resolveBackend, resolveProcessGroup } from './distributed';
import {
  ProgressEvent,
  ScheduleOptions,
  TRAIN_DEFAULTS as D,
  TrainOptions,
  iterationsPerEpoch,
  optionsSchema,
} from './options';

export type TrainData = Dataset | StreamingDataset;

/** @internal hooks the checkpoint layer uses */
export interface RunHooks {
  resume?: NativeResumeState;
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
  config: NativeTrainConfig;
  totalIterations: number;
  iterationsPerEpoch: number;
  preprocessing: Preprocessing;
  /** The process group this run trains in (worldSize 1: one process). */
  group: ProcessGroupInfo;
}

const isData = (d: unknown): d is TrainData => d instanceof Dataset || d instanceof StreamingDataset;

/** The schedule with every key C++ reads (defaults applied); `perEpoch` and `total` give the run's length. */
export function resolveSchedule(
  schedule: ScheduleOptions,
  o: TrainOptions,
  baseLr: number,
  total: number,
  perEpoch: number,
): NativeScheduleConfig {
  const none = {
    milestones: [],
    milestonesInEpochs: false,
    gamma: D.multistep.gamma,
    minLr: 0,
    maxLr: baseLr,
    pctStart: D.onecycle.pctStart,
    divFactor: D.onecycle.divFactor,
    finalDivFactor: D.onecycle.finalDivFactor,
    factor: D.plateau.factor,
    patience: D.plateau.patience,
    threshold: D.plateau.threshold,
    cooldown: D.plateau.cooldown,
  };
  const sched: NativeScheduleConfig = {
    type: schedule.type,
    baseLr,
    totalIterations: total,
    iterationsPerEpoch: perEpoch,
    ...none,
    warmupIterations: 0,
    warmupStartFactor: D.warmupStartFactor,
    errorWarmup: false,
    errorWarmupLr: D.errorWarmup.lr,
    errorWarmupThreshold: D.errorWarmup.untilTrainError,
  };
  if (schedule.type === 'multistep') {
    const unit = schedule.unit ?? D.multistep.unit;
    const limit = unit === 'epoch' ? Math.ceil(total / perEpoch) : total;
    const late = schedule.milestones.find((m) => m >= limit);
    if (late !== undefined)
      throw new ValidationError(
        'schedule.milestones',
        schedule.milestones,
        `milestones below ${limit} (${unit}s in the run)`,
        `schedule.milestones: ${late} is not before the end of the run (${limit} ${unit}s)`,
      );
    Object.assign(sched, {
      milestones: schedule.milestones,
      milestonesInEpochs: unit === 'epoch',
      gamma: schedule.gamma ?? D.multistep.gamma,
    });
  } else if (schedule.type === 'cosine') {
    sched.minLr = schedule.minLr ?? D.cosine.minLr;
  } else if (schedule.type === 'onecycle') {
    Object.assign(sched, {
      maxLr: schedule.maxLr ?? baseLr,
      pctStart: schedule.pctStart ?? D.onecycle.pctStart,
      divFactor: schedule.divFactor ?? D.onecycle.divFactor,
      finalDivFactor: schedule.finalDivFactor ?? D.onecycle.finalDivFactor,
    });
  } else if (schedule.type === 'plateau') {
    Object.assign(sched, {
      factor: schedule.factor ?? D.plateau.factor,
      patience: schedule.patience ?? D.plateau.patience,
      threshold: schedule.threshold ?? D.plateau.threshold,
      cooldown: schedule.cooldown ?? D.plateau.cooldown,
      minLr: schedule.minLr ?? D.plateau.minLr,
    });
  }
  if (o.warmup) {
    if (o.warmup.iterations >= total)
      throw new ValidationError('warmup.iterations', o.warmup.iterations, `fewer than the run's ${total} iterations`);
    Object.assign(sched, {
      warmupIterations: o.warmup.iterations,
      warmupStartFactor: o.warmup.startFactor ?? D.warmupStartFactor,
    });
  }
  if (o.errorWarmup)
    Object.assign(sched, {
      errorWarmup: true,
      errorWarmupLr: o.errorWarmup.lr ?? D.errorWarmup.lr,
      errorWarmupThreshold: o.errorWarmup.untilTrainError ?? D.errorWarmup.untilTrainError,
    });
  return sched;
}

export async function resolveRun(
  model: Model,
  data: TrainData,
  options: TrainOptions,
  hooks: RunHooks = {},
): Promise<ResolvedRun> {
  const o = optionsSchema.parse(options, '');
  if (!isData(data))
    throw new ValidationError(
      'data',
      data,
      'a Dataset (from the datasets readers or fromArrays) or a StreamingDataset',
    );
  for (const key of ['validation', 'test'] as const)
    if (o[key] !== undefined && !isData(o[key])) throw new ValidationError(key, o[key], 'a Dataset');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new ValidationError('signal', o.signal, 'an AbortSignal');
  if ((o.epochs === undefined) === (o.iterations === undefined))
    throw new ValidationError(
      o.epochs === undefined ? 'epochs' : 'iterations',
      o.epochs ?? o.iterations,
      'exactly one of epochs and iterations',
      'give exactly one of epochs and iterations',
    );

  const group = resolveProcessGroup(o.distributed);
  if (group.join && o.cudaGraph)
    throw new ValidationError(
      'cudaGraph',
      true,
      'false with distributed training',
      'cudaGraph: does not run with distributed training',
    );
  // With several ranks each sees its share of the data per epoch: DistributedSampler's padded share.
  const share = Math.ceil(data.length / group.worldSize);
  const accumulate = o.accumulate ?? D.accumulate;
  // Each iteration draws accumulate × batchSize images: the source's batch; the step splits it.
  const batchSize = (o.batchSize ?? D.batchSize) * accumulate;
  if (batchSize > share)
    throw new ValidationError(
      'batchSize',
      o.batchSize ?? D.batchSize,
      `at most ${Math.floor(share / accumulate)}`,
      `batchSize: ${batchSize}${accumulate > 1 ? ` (${accumulate} × ${o.batchSize ?? D.batchSize}, accumulated)` : ''} ` +
        `is larger than the training set` +
        `${group.worldSize > 1 ? `'s share of each of the ${group.worldSize} ranks` : ''} (${share} images)`,
    );
  const dropLast = o.dropLast ?? D.dropLast;
  const perEpoch = iterationsPerEpoch(share, batchSize, dropLast);
  const total = o.iterations ?? (o.epochs as number) * perEpoch;

  // What the model can take.
  const [, h, w] = data.shape;
  const rrc = o.augment?.randomResizedCrop;
  const rrcSize = rrc?.size === undefined ? [h, w] : typeof rrc.size === 'number' ? [rrc.size, rrc.size] : rrc.size;
  checkDataFits('data', data, model, rrc ? { field: 'augment.randomResizedCrop.size', value: rrcSize } : undefined);
  for (const key of ['validation', 'test'] as const) {
    const d = o[key];
    if (!d) continue;
    if (d.shape.some((v, i) => v !== data.shape[i]))
      throw new ValidationError(
        key,
        d.name,
        `images of shape [${data.shape.join(', ')}]`,
        `${key}: ${d.name} has images of [${d.shape.join(', ')}], the training set [${data.shape.join(', ')}]`,
      );
    checkDataFits(key, d, model);
  }

  // Optimizer and schedule.
  const optimizer = o.optimizer ?? D.optimizer;
  const schedule = o.schedule ?? D.schedule;
  const plateauMetric =
    schedule.type === 'plateau' ? (schedule.metric ?? (o.validation ? 'val_loss' : 'train_loss')) : 'val_loss';
  if (
    schedule.type === 'plateau' &&
    plateauMetric !== 'train_loss' &&
    !o[plateauMetric.startsWith('val') ? 'validation' : 'test']
  )
    throw new ValidationError(
      'schedule.metric',
      plateauMetric,
      'a metric of a split the run evaluates',
      `schedule.metric: ${plateauMetric} needs the ${plateauMetric.startsWith('val') ? 'validation' : 'test'} option`,
    );
  const sched = resolveSchedule(schedule, o, optimizer.lr, total, perEpoch);

  // Device-dependent settings.
  const cuda = model.device.startsWith('cuda');
  const precision = o.precision ?? D.precision;
  if (precision !== 'float32' && !cuda)
    throw new ValidationError(
      'precision',
      precision,
      '"float32" on the CPU',
      `precision: ${precision} needs the model on a CUDA device (it is on ${model.device})`,
    );
  if (o.cudaGraph) {
    const why = !cuda
      ? `the model on a CUDA device (it is on ${model.device})`
      : optimizer.type !== 'sgd'
        ? 'the SGD optimizer'
        : precision !== 'float32'
          ? 'precision float32'
          : o.diagnostics
            ? 'diagnostics off'
            : o.dropLast === false
              ? 'dropLast'
              : o.clipGradNorm !== undefined || (o.accumulate ?? 1) > 1 || o.ema
                ? 'no clipGradNorm, accumulate or ema'
                : undefined;
    if (why) throw new ValidationError('cudaGraph', true, why, `cudaGraph: needs ${why}`);
  }
  const memoryFormat = o.memoryFormat ?? D.memoryFormat;
  // channels_last takes oneDNN's fast path on the CPU (about 2x here) and the tensor cores' with AMP on CUDA.
  // Without oneDNN (turned off: info().mkldnnOffReason) the CPU has no channels_last fast path.
  const channelsLast =
    memoryFormat === 'channels_last' ||
    (memoryFormat === 'auto' && (cuda ? precision !== 'float32' : native().info().mkldnn));

  const preprocessing = await resolvePreprocessing(o.normalize ?? D.normalize, data);
  if (rrc && (rrcSize[0] !== h || rrcSize[1] !== w)) preprocessing.size = [rrcSize[0], rrcSize[1]];
  preprocessing.inputSize = [rrcSize[0], rrcSize[1]];
  const augment: NativeAugment = {
    ...nativeNormalization(preprocessing),
    pad: o.augment?.padCrop ?? D.augment.padCrop,
    flip: o.augment?.flip ?? D.augment.flip,
    randomResizedCrop: rrc !== undefined,
    scaleMin: rrc?.scale?.[0] ?? D.randomResizedCrop.scale[0],
    scaleMax: rrc?.scale?.[1] ?? D.randomResizedCrop.scale[1],
    ratioMin: rrc?.ratio?.[0] ?? D.randomResizedCrop.ratio[0],
    ratioMax: rrc?.ratio?.[1] ?? D.randomResizedCrop.ratio[1],
    outHeight: rrc ? rrcSize[0] : 0,
    outWidth: rrc ? rrcSize[1] : 0,
    channelsLast,
  };
  const evalEvery = o.evalEvery ?? D.evalEvery;
  const resume = hooks.resume;
  if (resume && resume.startIteration > total)
    throw new ValidationError('iterations', total, `at least the ${resume.startIteration} iterations already done`);
  const deterministic = o.deterministic ?? D.deterministic;
  const config: NativeTrainConfig = {
    batchSize,
    totalIterations: total,
    startIteration: resume?.startIteration ?? 0,
    seed: o.seed ?? model.spec.seed,
    shuffle: o.shuffle ?? D.shuffle,
    dropLast,
    deterministic,
    cudnnBenchmark: o.cudnnBenchmark ?? !deterministic,
    optimizer:
      optimizer.type === 'sgd'
        ? {
            type: 'sgd',
            momentum: optimizer.momentum ?? D.sgd.momentum,
            nesterov: optimizer.nesterov ?? D.sgd.nesterov,
            weightDecay: optimizer.weightDecay ?? D.sgd.weightDecay,
            beta1: D.adamw.betas[0],
            beta2: D.adamw.betas[1],
            eps: D.adamw.eps,
            noDecayBnBias: optimizer.noDecayOnBnAndBias ?? D.noDecayOnBnAndBias,
          }
        : {
            type: 'adamw',
            momentum: 0,
            nesterov: false,
            beta1: optimizer.betas?.[0] ?? D.adamw.betas[0],
            beta2: optimizer.betas?.[1] ?? D.adamw.betas[1],
            eps: optimizer.eps ?? D.adamw.eps,
            weightDecay: optimizer.weightDecay ?? D.adamw.weightDecay,
            noDecayBnBias: optimizer.noDecayOnBnAndBias ?? D.noDecayOnBnAndBias,
          },
    schedule: sched,
    scheduleState: resume?.schedule ?? {
      warmedUp: false,
      plateauScale: 1,
      plateauBest: Infinity,
      plateauBad: 0,
      plateauCooldownLeft: 0,
    },
    augment,
    labelSmoothing: o.labelSmoothing ?? D.labelSmoothing,
    clipGradNorm: o.clipGradNorm ?? 0,
    freezeBatchNorm: o.freezeBatchNorm ?? D.freezeBatchNorm,
    accumulate,
    logEvery: o.logEvery ?? D.logEvery,
    evalEveryIterations: 'iterations' in evalEvery ? evalEvery.iterations : 0,
    evalEveryEpochs: 'epochs' in evalEvery ? evalEvery.epochs : 0,
    evalBatchSize: o.evalBatchSize ?? D.evalBatchSize,
    plateauMetric,
    diagnostics: o.diagnostics ?? D.diagnostics,
    threads: o.threads ?? D.threads,
    checkpointEveryIterations: hooks.checkpointEveryIterations ?? 0,
    stateAtEnd: hooks.stateAtEnd ?? false,
    stateOnEvaluation: hooks.stateOnEvaluation ?? false,
    epochMeter: resume?.epochMeter ?? { lossSum: 0, wrong: 0, images: 0 },
    earlyStop: {
      metric: o.earlyStopping?.monitor ?? '',
      patience: o.earlyStopping?.patience ?? 0,
      minDelta: o.earlyStopping?.minDelta ?? D.earlyStopping.minDelta,
      restoreBest: o.earlyStopping?.restoreBest ?? D.earlyStopping.restoreBest,
      state: resume?.earlyStop ?? { best: 1e308, bestIteration: 0, bad: 0 },
    },
    emaDecay: o.ema?.decay ?? 0,
    emaState: resume?.ema ?? [],
    channelsLast,
    precision,
    cudaGraph: o.cudaGraph ?? D.cudaGraph,
    syncBatchNorm: o.syncBatchNorm ?? D.syncBatchNorm,
    optimizerState: resume?.optimizer ?? [],
    optimizerSteps: resume?.optimizerSteps ?? 0,
    // fp16's dynamic loss scale starts where torch.cuda.amp.GradScaler starts (or where the checkpoint left it).
    lossScale: resume?.lossScale || 65536,
    distributed: {
      join: group.join,
      backend: group.join
        ? resolveBackend(
            group,
            o.distributed ? o.distributed.backend : undefined,
            model.device,
            native().info().distributedNccl,
          )
        : 'gloo',
      rank: group.rank,
      worldSize: group.worldSize,
      masterAddr: group.masterAddr,
      masterPort: group.masterPort,
      timeoutMs: Math.round(group.timeoutSeconds * 1000),
      fingerprint: [],
    },
  };
  if (group.join) config.distributed.fingerprint = fingerprint(model, data, o, config);
  return { config, totalIterations: total, iterationsPerEpoch: perEpoch, preprocessing, group };
}

function filesDigest(data: StreamingDataset): string {
  const hash = createHash('sha256');
  for (const f of data.files) hash.update(`${path.relative(data.source, f.file)}\t${f.label}\n`);
  return `${data.files.length} files, sha256 ${hash.digest('hex').slice(0, 16)}`;
}

/** What every rank must agree on, by name: a difference stops the run at the rendezvous, naming it. */
function fingerprint(model: Model, data: TrainData, o: TrainOptions, config: NativeTrainConfig): [string, string][] {
  const { seed: _seed, device: _device, ...spec } = model.spec;
  const { validation: _v, test: _t, signal: _s, onProgress: _p, distributed: _d, seed: _os, ...options } = o;
  return [
    ['world size', String(config.distributed.worldSize)],
    ['backend', config.distributed.backend],
    ['model spec', JSON.stringify(spec)],
    ['training options', JSON.stringify(options)],
    ['shuffle seed (pass the same seed to train() or createModel() on every rank)', String(config.seed)],
    ['training data', `${data.length} images of [${data.shape.join(', ')}], ${data.numClasses} classes`],
    // A streamed folder is read by each rank from its own disk: the same files, by path under the folder and class.
    ...(data instanceof StreamingDataset ? [['training files', filesDigest(data)] as [string, string]] : []),
    ['start iteration', String(config.startIteration)],
  ];
}
