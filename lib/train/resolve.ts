// Options -> the native training config, once per run: the options parsed, the data checked against the model,
// then each concern's module (options/) gives its piece; every default is applied there.
import { createHash } from 'crypto';
import * as path from 'path';

import { Dataset } from '../datasets/dataset';
import { StreamingDataset } from '../datasets/image-folder';
import { ValidationError } from '../errors';
import { checkDataFits } from '../model/data-fit';
import type { Model } from '../model/model';
import type { NativeResumeState, NativeTrainConfig } from '../native';
import type { Preprocessing } from '../preprocess';
import { TrainOptions, optionsSchema } from './options';
import { augmentConfig, mixConfig, trainingSize } from './options/augment';
import { CheckpointPolicy, checkpointConfig } from './options/checkpoint';
import { ProcessGroupInfo, distributedConfig, resolveProcessGroup } from './options/distributed';
import { emaConfig } from './options/ema';
import { evaluationConfig } from './options/evaluation';
import { lengthConfig } from './options/length';
import { loggingConfig } from './options/logging';
import { optimizerConfig, optimizerOf } from './options/optimizer';
import { precisionConfig } from './options/precision';
import { scheduleConfig } from './options/schedule';

export type TrainData = Dataset | StreamingDataset;

export interface ResolvedRun {
  /** The options as parsed. */
  options: TrainOptions;
  config: NativeTrainConfig;
  totalIterations: number;
  iterationsPerEpoch: number;
  preprocessing: Preprocessing;
  /** The process group this run trains in (worldSize 1: one process). */
  group: ProcessGroupInfo;
}

const isData = (d: unknown): d is TrainData => d instanceof Dataset || d instanceof StreamingDataset;

/** The values only code can pass: the sets, the signal. */
function checkObjects(data: unknown, o: TrainOptions): void {
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
}

/** What the model can take: the training images (at the crop size), the held-out sets of the same shape, or, with
 *  randomResizedCrop (evaluation resizes them to its size), of the same channels. */
function checkShapes(model: Model, data: TrainData, o: TrainOptions): void {
  const crop = o.augment?.randomResizedCrop;
  const size = trainingSize(o, data.shape);
  checkDataFits('data', data, model, crop ? { field: 'augment.randomResizedCrop.size', value: size } : undefined);
  for (const key of ['validation', 'test'] as const) {
    const d = o[key];
    if (!d) continue;
    // The per-pixel mean image has the training size: held-out sets normalised by it need that size too.
    const compared = crop && o.normalize !== 'per-pixel' ? 1 : 3;
    if (d.shape.slice(0, compared).some((v, i) => v !== data.shape[i]))
      throw new ValidationError(
        key,
        d.name,
        compared === 1 ? `images of ${data.shape[0]} channels` : `images of shape [${data.shape.join(', ')}]`,
        `${key}: ${d.name} has images of [${d.shape.join(', ')}], the training set [${data.shape.join(', ')}]` +
          (compared === 1
            ? ': the channels differ'
            : crop
              ? " (the per-pixel mean image has the training set's size)"
              : ' (without randomResizedCrop, evaluation takes the training size)'),
      );
    checkDataFits(key, d, model);
  }
}

/** Where a resumed run starts: the checkpoint's counters, or a fresh start. */
function resumeConfig(
  resume: NativeResumeState | undefined,
  total: number,
): Pick<NativeTrainConfig, 'startIteration' | 'scheduleState' | 'epochMeter' | 'optimizerState' | 'optimizerSteps'> {
  if (resume && resume.startIteration > total)
    throw new ValidationError('iterations', total, `at least the ${resume.startIteration} iterations already done`);
  return {
    startIteration: resume?.startIteration ?? 0,
    scheduleState: resume?.schedule ?? {
      warmedUp: false,
      plateauScale: 1,
      plateauBest: Infinity,
      plateauBad: 0,
      plateauCooldownLeft: 0,
    },
    epochMeter: resume?.epochMeter ?? { lossSum: 0, wrong: 0, images: 0 },
    optimizerState: resume?.optimizer ?? [],
    optimizerSteps: resume?.optimizerSteps ?? 0,
  };
}

/**
 * Every check and default of a run, once: `policy` (already parsed) is the checkpoint policy of the rank that
 * writes checkpoints, `resume` the state a resumed run starts from.
 */
export async function resolveRun(
  model: Model,
  data: TrainData,
  options: TrainOptions,
  { resume, policy }: { resume?: NativeResumeState; policy?: CheckpointPolicy } = {},
): Promise<ResolvedRun> {
  const o = optionsSchema.parse(options, '');
  checkObjects(data, o);
  const group = resolveProcessGroup(o.distributed);
  const length = lengthConfig(o, data.length, group.worldSize, model.spec.seed);
  checkShapes(model, data, o);
  const total = length.native.totalIterations;
  const optimizer = optimizerOf(o);
  const precision = precisionConfig(
    o,
    model.device,
    { ...o, optimizer: optimizer.type, distributed: group.join, dropPath: model.spec.dropPath },
    resume,
  );
  const schedule = scheduleConfig(o, { baseLr: optimizer.lr, total, perEpoch: length.perEpoch, evaluates: o });
  const evaluation = evaluationConfig(o, resume?.earlyStop);
  const start = resumeConfig(resume, total);
  const distributed = distributedConfig(o, group, model.device);
  const { preprocessing, augment } = await augmentConfig(o, data, precision.channelsLast);
  const config: NativeTrainConfig = {
    ...length.native,
    ...start,
    ...optimizerConfig(o),
    ...mixConfig(o),
    ...schedule,
    augment,
    ...evaluation,
    ...emaConfig(o, resume),
    ...precision,
    ...loggingConfig(o),
    ...checkpointConfig(group.rank === 0 ? policy : undefined, length.perEpoch),
    ...distributed,
  };
  if (group.join) config.distributed.fingerprint = fingerprint(model, data, o, config);
  return { options: o, config, totalIterations: total, iterationsPerEpoch: length.perEpoch, preprocessing, group };
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
