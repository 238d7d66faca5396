// Fast inference: an eval-only snapshot of a model. The 'native' engine folds every BatchNormalization into the
// convolution before it and keeps channels_last weights on the CPU (oneDNN's fast path); on the CPU one image
// through a wide net (ResNet-18 and up, option B/C) runs on oneDNN's blocked layout with weights reordered once.
// The 'onnxruntime' engine runs our ONNX export in onnxruntime-node: faster on the CPU (bench/infer-engines.ts).
import { ImageSource } from '../images';
import { OutOfMemoryError } from '../errors';
import { Prediction, topK } from '../predictions';
import type { Preprocessing } from '../preprocess';
import { Tensor, checkImageBatch } from '../tensor';
import { s } from '../validate';
import { ImageOptions, imageOptionsSchema, imagesToBatch } from './image-batch';

/** The native engine's arithmetic: float32; bfloat16 activations and weights, or int8 (calibrated) on the oneDNN
 *  program. */
export const INFERENCE_PRECISIONS = ['float32', 'bfloat16', 'int8'] as const;
export type InferencePrecision = (typeof INFERENCE_PRECISIONS)[number];

/** optimizeForInference()'s options: the engine and its threads. */
export interface InferenceOptions {
  /** Input height and width the folded graph is traced at, and images are resized to (default: the training
   *  size, else 224 for the ImageNet family and 32 for CIFAR nets). */
  inputSize?: number | [number, number];
  /** Weights and inputs in channels_last (default: on the CPU when oneDNN is on; native engine only). */
  channelsLast?: boolean;
  /** 'native' (default): our engine, BN folded (on the CPU oneDNN's primitives, see `kernels`). 'onnxruntime': our
   *  ONNX export in onnxruntime-node (an optional peer dependency; CPU only). 'auto': on the CPU with
   *  onnxruntime-node installed, whichever is faster here, measured at load on batches of 1 and 8 and cached per
   *  network, size, CPU and threads (`engineReason` says which and why); else native. Both engines give the same
   *  logits within 1e-4. */
  engine?: 'native' | 'onnxruntime' | 'auto';
  /** The native engine's operators: 'auto' (default) oneDNN's primitives with prepacked weights and fused
   *  residual adds where this build, the CPU and the net allow it, else ATen's; 'onednn' those or a
   *  ValidationError naming why not; 'aten' ATen's (BN folded, channels_last). */
  kernels?: 'auto' | 'onednn' | 'aten';
  /** 'float32' (default); 'bfloat16': activations and convolution weights in bfloat16 on the oneDNN program
   *  (accumulation, biases and logits float32; fast where the CPU has AVX-512 BF16 or AMX); 'int8': activations
   *  and convolution weights in 8 bits on the oneDNN program (weights per output channel, activations per tensor
   *  with scales from their largest magnitudes on `calibration`; int32 accumulation; the classifier float32). A
   *  ValidationError names why where the program cannot run it. */
  precision?: InferencePrecision;
  /** int8's calibration images: N×C×H×W at the inference size, normalised as the model takes them (as run()'s
   *  input). A few hundred of your own images; required with precision 'int8', refused otherwise. */
  calibration?: Tensor;
}

/** What the inference model keeps of the model it was made from. */
export interface InferenceHead {
  numClasses: number;
  inChannels: number;
  classNames?: string[];
  minInputSize: number;
  preprocessing?: Preprocessing;
  /** [height, width] the graph was made for; predictImage resizes images to it. */
  inputSize: [number, number];
}

/** How an engine runs a batch. */
export interface InferenceBackend {
  engine: 'native' | 'onnxruntime';
  /** Why this engine: asked for, or what 'auto' measured. */
  engineReason: string;
  precision: InferencePrecision;
  kernels: 'onednn' | 'aten' | 'onnxruntime';
  kernelsReason: string;
  /** BatchNormalizations folded into convolutions (the native engine; ONNX Runtime fuses on its own). */
  folded: number;
  run(x: Tensor): Promise<Tensor>;
  /** One forward timed per oneDNN primitive (native engine on oneDNN's kernels); [] otherwise. */
  profile?(x: Tensor): Promise<LayerTime[]>;
  dispose(): void;
}

/** One primitive of a profiled forward: what ran (the layer, what is fused into it, oneDNN's kernel) and its time. */
export interface LayerTime {
  layer: string;
  ms: number;
}

/** How many classes a prediction lists. */
export interface PredictOptions {
  /** Classes per image, most probable first (default 5, or the class count if smaller). */
  topK?: number;
}

/** A model folded for inference (BN into the convolutions) on the native engine or onnxruntime-node. Made by model.optimizeForInference(). */
export class InferenceModel {
  /** Classes of the classifier. */
  readonly numClasses: number;
  /** Channels of the input images. */
  readonly inChannels: number;
  /** Names of the classes, for predictions. */
  readonly classNames?: string[];
  /** The normalisation images get before the forward. */
  readonly preprocessing?: Preprocessing;
  /** [height, width] images are resized to by predictImage. */
  readonly inputSize: [number, number];
  /** What runs it: the native engine or onnxruntime-node. */
  readonly engine: 'native' | 'onnxruntime';
  /** Why it runs on this engine: "asked for native", or what engine: 'auto' measured ("auto: native measured
   *  faster on this machine (batches of 1 + 8: native 0.61 ms, onnxruntime 0.74 ms)"). */
  readonly engineReason: string;
  /** The arithmetic: 'float32', or 'bfloat16' or 'int8' activations and weights (the native engine's oneDNN
   *  program). */
  readonly precision: InferencePrecision;
  /** What runs the operators: oneDNN's primitives or ATen's (native engine), or onnxruntime. */
  readonly kernels: 'onednn' | 'aten' | 'onnxruntime';
  /** Why the native engine runs ATen's operators ('' otherwise). */
  readonly kernelsReason: string;
  /** BatchNormalizations folded into convolutions. */
  readonly folded: number;
  #backend: InferenceBackend;
  #minSize: number;

  /** @internal use Model.optimizeForInference() */
  constructor(backend: InferenceBackend, head: InferenceHead) {
    this.#backend = backend;
    this.numClasses = head.numClasses;
    this.inChannels = head.inChannels;
    this.classNames = head.classNames;
    this.preprocessing = head.preprocessing;
    this.inputSize = head.inputSize;
    this.engine = backend.engine;
    this.folded = backend.folded;
    this.kernels = backend.kernels;
    this.engineReason = backend.engineReason;
    this.precision = backend.precision;
    this.kernelsReason = backend.kernelsReason;
    this.#minSize = head.minInputSize;
  }

  /** Logits for a normalised batch {data: Float32Array, shape: [N, C, H, W]}. */
  async forward(x: Tensor): Promise<Tensor> {
    const input = checkImageBatch(x, 'input', { channels: this.inChannels, minSize: this.#minSize });
    try {
      return await this.#backend.run(input);
    } catch (err) {
      if (err instanceof OutOfMemoryError)
        throw new OutOfMemoryError(`${err.message} (inference batch of ${input.shape[0]})`);
      throw err;
    }
  }

  /** One forward of a normalised batch timed per oneDNN primitive, in the order they run (the native engine on
   *  oneDNN's kernels; [] where ATen's run). For onnxruntime, its own profiler (bench/infer-profile.ts). */
  async profile(x: Tensor): Promise<LayerTime[]> {
    const input = checkImageBatch(x, 'input', { channels: this.inChannels, minSize: this.#minSize });
    return this.#backend.profile ? this.#backend.profile(input) : [];
  }

  /** The top-k classes per image of a normalised batch, with softmax probabilities. */
  async predict(x: Tensor, options: PredictOptions = {}): Promise<Prediction[][]> {
    const k = parseTopK(options, this.numClasses);
    return topK(await this.forward(x), k, this.classNames);
  }

  /** The top-k classes of one image (file bytes, a path, or raw pixels), prepared as in training. */
  async predictImage(image: ImageSource, options: PredictOptions & ImageOptions = {}): Promise<Prediction[]> {
    const k = parseTopK(options, this.numClasses);
    const x = await imagesToBatch([image], this, options, () => 'image');
    return topK(await this.forward(x), k, this.classNames)[0];
  }

  /** The top-k classes of each image, in one forward. */
  async predictImages(images: ImageSource[], options: PredictOptions & ImageOptions = {}): Promise<Prediction[][]> {
    const k = parseTopK(options, this.numClasses);
    return topK(await this.forward(await imagesToBatch(images, this, options)), k, this.classNames);
  }

  /** Frees the engine's memory now. */
  dispose(): void {
    this.#backend.dispose();
  }
}

const predictOptionsSchema = s.object({ topK: s.optional(s.any()), ...imageOptionsSchema });

export function parseTopK(options: PredictOptions, numClasses: number): number {
  predictOptionsSchema.parse(options, 'options');
  return s.integer({ min: 1, max: numClasses }).parse(options.topK ?? Math.min(5, numClasses), 'topK');
}
