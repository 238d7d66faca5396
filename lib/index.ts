// resnet-torch: build and train residual networks from Node.js on libtorch.
export { createModel, formatSummary, Model } from './model';
export type { LayerSummary, ModelSummary, Prediction, StateEntry } from './model';
export { resolveSpec } from './spec';
export type { ModelSpec, ResolvedModelSpec } from './spec';
export { ARCH_PATTERNS, layerCount, resolveArch } from './archs';
export type { Architecture, BlockKind, ShortcutOption, StemKind } from './archs';
export type { Tensor } from './tensor';
export { formatInfo, getNumThreads, info, setNumThreads } from './info';
export type { CudaDeviceInfo, RuntimeInfo } from './info';
export {
  AbortError, BusyError, CheckpointError, DatasetError, DeviceError, DisposedError, NativeError, OutOfMemoryError,
  ResnetError, ShapeError, ValidationError,
} from './errors';
export { TrainingRun } from './train';
export { resumeTraining, train } from './run';
export type { ResumeOptions } from './run';
export { CHECKPOINT_FORMAT, loadCheckpoint, readCheckpoint } from './checkpoint';
export type { Checkpoint, CheckpointPolicy, CheckpointState } from './checkpoint';
export type { LoadOptions, LoadReport } from './io/weights';
export type { OnnxOptions } from './io/onnx';
export type {
  AdamWOptions, AugmentOptions, EvalMetrics, NormalizeOption, PlateauMetric, Preprocessing, ProgressEvent, ScheduleOptions,
  SgdOptions, TrainOptions, TrainResult,
} from './train';
export * as datasets from './datasets';
export { Dataset, StreamingDataset, fromArrays } from './datasets';
export type { DatasetStats } from './datasets';
export { InferenceModel } from './inference';
export type { InferenceOptions } from './inference';
export { cuda, listDevices } from './cuda';
export type { CudaMemoryStats } from './cuda';
