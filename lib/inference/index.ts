// Inference: the optimised model and its engines, image preparation, and dynamic batching.
export { InferenceModel } from './inference-model';
export type { InferenceBackend, InferenceHead, InferenceOptions, LayerTime, PredictOptions } from './inference-model';
export { nativeBackend, onnxRuntimeBackend } from './engines';
export { imagesToBatch, trainedImageSize } from './image-batch';
export type { ImageModelInfo, ImageOptions } from './image-batch';
export { Batcher, createBatcher } from './batcher';
export type { BatchModel, BatcherOptions, BatcherStats, RequestOptions } from './batcher';
