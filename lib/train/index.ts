// Training: options and their defaults, resolution into the native config, the run, checkpoints.
export { TRAIN_DEFAULTS, iterationsPerEpoch, trainFields } from './options';
export type {
  AdamWOptions,
  AugmentOptions,
  PlateauMetric,
  ProgressEvent,
  ScheduleOptions,
  SgdOptions,
  TrainOptions,
  TrainResult,
} from './options';
export { TrainingRun } from './run';
export { resumeTraining, train } from './train';
export type { ResumeOptions } from './train';
export type { EarlyStop, EarlyStoppingOptions } from './early-stopping';
export { CHECKPOINT_FORMAT, loadCheckpoint, readCheckpoint } from './checkpoint';
export type { Checkpoint, CheckpointPolicy, CheckpointState } from './checkpoint';
