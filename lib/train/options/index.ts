// The options of train(), one module per concern: each holds its options' types, their schema (shared with run
// config files), their defaults, and the piece of the native config it produces (lib/train/resolve.ts composes
// them). An option's default is written once, in its module.
import { s } from '../../validate';
import type { ObjectSchema } from '../../validate';
import { AUGMENT_DEFAULTS, AugmentGroupOptions, augmentFields } from './augment';
import { DISTRIBUTED_DEFAULTS, DistributedGroupOptions, distributedCallbacks, distributedFields } from './distributed';
import { EmaOptions, emaFields } from './ema';
import { EVALUATION_DEFAULTS, EvaluationOptions, evaluationFields } from './evaluation';
import { LENGTH_DEFAULTS, LengthOptions, lengthFields } from './length';
import { LOGGING_DEFAULTS, LoggingOptions, loggingCallbacks, loggingFields } from './logging';
import { OPTIMIZER_DEFAULTS, OptimizerOptions, optimizerFields } from './optimizer';
import { PRECISION_DEFAULTS, PrecisionOptions, precisionFields } from './precision';
import { SCHEDULE_DEFAULTS, ScheduleGroupOptions, scheduleFields } from './schedule';

export { iterationsPerEpoch } from '../../datasets/epochs';
export type { ProgressEvent } from '../events';
export type { AdamWOptions, LambOptions, SgdOptions } from './optimizer';
export type { AugmentOptions, MixOptions } from './augment';
export type { PlateauMetric, ScheduleOptions } from './schedule';
export type { EarlyStop, EarlyStoppingOptions } from './evaluation';
export type { DistributedOptions } from './distributed';

/** Everything train() takes besides the model and the data; validated before the native trainer sees it. */
export interface TrainOptions
  extends
    LengthOptions,
    OptimizerOptions,
    ScheduleGroupOptions,
    AugmentGroupOptions,
    EvaluationOptions,
    EmaOptions,
    PrecisionOptions,
    LoggingOptions,
    DistributedGroupOptions {
  /** Stops the run after the current iteration. */
  signal?: AbortSignal;
}

/** The options a config file can hold (everything but datasets, signal and callbacks). */
export const trainFields = {
  ...lengthFields,
  ...optimizerFields,
  ...scheduleFields,
  ...augmentFields,
  ...evaluationFields,
  ...emaFields,
  ...precisionFields,
  ...loggingFields,
  ...distributedFields,
};

/** Every option of train(): the config fields, and the values only code can pass (checked in resolve.ts). */
export const optionsSchema: ObjectSchema<TrainOptions> = s.object<TrainOptions>({
  ...trainFields,
  validation: s.optional(s.any()),
  test: s.optional(s.any()),
  signal: s.optional(s.any()),
  ...loggingCallbacks,
  ...distributedCallbacks,
});

/** Every default of the options above, as their modules define them (C++ has none). */
export const TRAIN_DEFAULTS = {
  ...LENGTH_DEFAULTS,
  ...OPTIMIZER_DEFAULTS,
  ...SCHEDULE_DEFAULTS,
  ...AUGMENT_DEFAULTS,
  ...EVALUATION_DEFAULTS,
  ...PRECISION_DEFAULTS,
  ...LOGGING_DEFAULTS,
  syncBatchNorm: DISTRIBUTED_DEFAULTS.syncBatchNorm,
};
