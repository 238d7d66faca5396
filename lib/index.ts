// resnet-torch: build and train residual networks from Node.js on libtorch. The public surface, nothing else.
export { createModel, Model } from './model/model';
export type { EvaluationData, StateEntry } from './model/model';
export { formatSummary } from './model/summary';
export type { LayerSummary, ModelSummary } from './model/summary';
export type { Prediction } from './predictions';
export { resolveSpec } from './model/spec';
export type { ModelSpec, ResolvedModelSpec } from './model/spec';
export { ARCH_PATTERNS, layerCount, resolveArch } from './model/archs';
export type { Architecture, BlockKind, ShortcutOption, StemKind } from './model/archs';
export type { Tensor } from './tensor';
export { formatInfo, getNumThreads, info, setNumThreads } from './info';
export type { CudaDeviceInfo, RuntimeInfo } from './info';
export {
  AbortError,
  BusyError,
  CheckpointError,
  DatasetError,
  DeadlineError,
  DeviceError,
  DisposedError,
  DivergedError,
  ImageError,
  NativeError,
  OutOfMemoryError,
  OverloadedError,
  DistributedError,
  ResnetError,
  ShapeError,
  ValidationError,
} from './errors';
export {
  CHECKPOINT_FORMAT,
  TrainingRun,
  loadCheckpoint,
  previewAugmentation,
  readCheckpoint,
  resumeTraining,
  train,
} from './train';
export type {
  AdamWOptions,
  AugmentDraw,
  AugmentOptions,
  AugmentPreview,
  AugmentPreviewOptions,
  LambOptions,
  MixOptions,
  Checkpoint,
  CheckpointPolicy,
  CheckpointState,
  EarlyStop,
  EarlyStoppingOptions,
  PlateauMetric,
  ProgressEvent,
  ResumeOptions,
  ScheduleOptions,
  SgdOptions,
  TrainOptions,
  TrainResult,
} from './train';
export { processGroup } from './train/options/distributed';
export type { DistributedOptions } from './train/options/distributed';
export type { EvalMetrics } from './eval-metrics';
export type { PhaseSeconds } from './native';
export type { NormalizeOption, Preprocessing } from './preprocess';
export type { LoadOptions, LoadReport } from './io/weights';
export type { OnnxOptions } from './io/onnx';
export * as datasets from './datasets';
export { Dataset, StreamingDataset, fromArrays } from './datasets';
export type { DatasetStats } from './datasets';
export * as loggers from './train/loggers';
export { progressBar } from './runs/progress';
export type { Logger } from './train/loggers';
export { Batcher, InferenceModel, createBatcher, imagesToBatch } from './inference';
export type {
  BatchModel,
  BatcherOptions,
  BatcherStats,
  ImageModelInfo,
  ImageOptions,
  InferenceOptions,
  LayerTime,
  PredictOptions,
  RequestOptions,
} from './inference';
export { decodeImage } from './images';
export type { DecodeOptions, ImageSource, RawImage } from './images';
export { normalizeImages } from './preprocess';
export { loadModel } from './model/load';
export { Server, serve } from './serve';
export type { ServeOptions } from './serve';
export type { LoadModelOptions } from './model/load';
export { cuda, listDevices } from './cuda';
export type { CudaMemoryStats } from './cuda';
