// Training: the options (one module per concern, options/), their resolution into the native config, the run,
// checkpoints.
export { TRAIN_DEFAULTS, iterationsPerEpoch, trainFields } from './options';
export type {
  AdamWOptions,
  AugmentOptions,
  LambOptions,
  MixOptions,
  EarlyStop,
  EarlyStoppingOptions,
  PlateauMetric,
  ProgressEvent,
  ScheduleOptions,
  SgdOptions,
  TrainOptions,
} from './options';
export type { TrainResult } from './result';
export { previewAugmentation } from './preview';
export type { AugmentDraw, AugmentPreview, AugmentPreviewOptions } from './preview';
export { TrainingRun } from './run';
export { resumeTraining, train } from './train';
export type { ResumeOptions } from './train';
export { CHECKPOINT_FORMAT, loadCheckpoint, readCheckpoint } from './checkpoint';
export type { Checkpoint, CheckpointState } from './checkpoint';
export type { CheckpointPolicy } from './options/checkpoint';
