// Inference: the optimised model and its engines, image preparation, and dynamic batching.
export { InferenceModel } from './fused';
export type { InferenceBackend, InferenceHead, InferenceOptions, PredictOptions } from './fused';
export { nativeBackend, onnxRuntimeBackend } from './engines';
export { imagesToBatch, trainedImageSize } from './images';
export type { ImageModelInfo, ImageOptions } from './images';
export { Batcher, createBatcher } from './batcher';
export type { BatchModel, BatcherOptions, BatcherStats, RequestOptions } from './batcher';
