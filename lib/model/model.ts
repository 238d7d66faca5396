// The Model facade: a typed, validated handle on a native network. Its features live beside it (summary,
// predictions, weights and ONNX files, the folded inference model) and receive the native handle and the
// values they need; none of them imports Model back.
import { promises as fsp } from 'fs';

import { DisposedError, OutOfMemoryError, ValidationError, inContext } from '../errors';
import { ImageSource } from '../images';
import {
  INFERENCE_PRECISIONS,
  InferenceModel,
  InferenceOptions,
  PredictOptions,
  parseTopK,
} from '../inference/inference-model';
import { NATIVE_KERNELS, checkCalibration, openEngine } from '../inference/engines';
import { ImageOptions, imagesToBatch, trainedImageSize } from '../inference/image-batch';
import { LoadOptions, LoadReport, loadWeights, saveWeights } from '../io/weights';
import { loadPytorchWeights } from '../io/pth';
import { ONNX_OPSET, OnnxOptions, exportOnnx } from '../io/onnx';
import { EVAL_BATCH_SIZE, EvalMetrics, toEvalMetrics } from '../eval-metrics';
import { NativeDataset, NativeModel, NativeStateEntry, native } from '../native';
import { Prediction, topK } from '../predictions';
import { Preprocessing, evaluationAugment } from '../preprocess';
import { Tensor, checkImageBatch } from '../tensor';
import { s } from '../validate';
import { DataShape, checkDataFits } from './data-fit';
import { ResolvedModelSpec, ModelSpec, resolveInputSize, resolveSpec } from './spec';
import { ModelSummary, summarize } from './summary';

/** One tensor of model.stateDict(), in torchvision's naming. */
export interface StateEntry {
  /** torchvision's state_dict name. */
  name: string;
  shape: number[];
  /** Its element type. */
  dtype: string;
  /** A parameter, or a buffer (running statistics, counters). */
  kind: 'parameter' | 'buffer';
  /** It receives gradients. */
  trainable: boolean;
}

/** What evaluate() needs of a dataset (an in-memory Dataset). */
export interface EvaluationData extends DataShape {
  /** The native dataset (a Dataset's). */
  handle(): NativeDataset;
}

const loadOptionsSchema = s.object({ strict: s.optional(s.boolean()) });

// Frees the native network when a Model is collected without dispose().
const finalizer = new FinalizationRegistry<NativeModel>((handle) => handle.dispose());

/** A residual network in native memory: forward, predict, train, save and export. Made by createModel() or loadModel(). */
export class Model {
  /** The validated spec with every default filled in. */
  readonly spec: ResolvedModelSpec;
  /** Class names used by predict(); set from the spec, a dataset or a checkpoint. */
  classNames?: string[];
  /** How inputs were normalised in training (set by train(), saved in checkpoints); evaluate() applies it. */
  preprocessing?: Preprocessing;
  #native: NativeModel | undefined;

  /** @internal use createModel() */
  constructor(handle: NativeModel, spec: ResolvedModelSpec) {
    this.#native = handle;
    this.spec = spec;
    this.classNames = spec.classNames;
    finalizer.register(this, handle, this);
  }

  /** @internal the native handle, for the trainer and the io modules. */
  handle(): NativeModel {
    if (!this.#native) throw new DisposedError('the model');
    return this.#native;
  }

  /** Classes of the classifier. */
  get numClasses(): number {
    return this.spec.numClasses;
  }

  /** Channels of the input images. */
  get inChannels(): number {
    return this.spec.inChannels;
  }

  /** Where the weights are: 'cpu' or 'cuda:N'. */
  get device(): string {
    return this.handle().device();
  }

  /** True in training mode (BatchNorm uses batch statistics), false in eval mode. */
  get training(): boolean {
    return this.handle().isTraining();
  }

  /** Side of the smallest input the network takes (32 for the ImageNet family, 4 for CIFAR nets). */
  get minInputSize(): number {
    return this.handle().minInputSize();
  }

  /** True once dispose() ran. */
  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** Logits for a batch {data: Float32Array, shape: [N, C, H, W]}, in the current mode. */
  async forward(x: Tensor): Promise<Tensor> {
    return this.#run(x, false);
  }

  /** The top-k classes per image with softmax probabilities, computed in eval mode. */
  async predict(x: Tensor, options: PredictOptions = {}): Promise<Prediction[][]> {
    return topK(await this.#run(x, true), parseTopK(options, this.numClasses), this.classNames);
  }

  /** The top-k classes of one image: the bytes of a JPEG/PNG/WebP file, a path, or raw pixels. It is decoded
   *  (off the event loop), resized to the training size and normalised as in training, then run in eval mode. */
  async predictImage(image: ImageSource, options: PredictOptions & ImageOptions = {}): Promise<Prediction[]> {
    return (await this.#predictImages([image], options, () => 'image'))[0];
  }

  /** The top-k classes of each image, in one forward. */
  async predictImages(images: ImageSource[], options: PredictOptions & ImageOptions = {}): Promise<Prediction[][]> {
    return this.#predictImages(images, options, (i) => `images[${i}]`);
  }

  async #predictImages(images: ImageSource[], options: PredictOptions & ImageOptions, names: (i: number) => string) {
    const k = parseTopK(options, this.numClasses);
    const info = { inChannels: this.inChannels, preprocessing: this.preprocessing, inputSize: this.imageSize };
    return topK(await this.#run(await imagesToBatch(images, info, options, names), true), k, this.classNames);
  }

  /** [height, width] predictImage resizes images to: the training size, else the family's default. */
  get imageSize(): [number, number] {
    return resolveInputSize(this.spec, undefined, trainedImageSize(this.preprocessing), this.minInputSize);
  }

  async #run(x: Tensor, forceEval: boolean): Promise<Tensor> {
    const handle = this.handle();
    const input = checkImageBatch(x, 'input', {
      channels: this.inChannels,
      minSize: handle.minInputSize(),
      arch: this.spec.arch,
    });
    try {
      return await handle.forward(input.data, input.shape, forceEval);
    } catch (err) {
      // The model is unchanged and the cache was released: a smaller batch can go on.
      if (err instanceof OutOfMemoryError)
        throw new OutOfMemoryError(`${err.message} (forward of a batch of ${input.shape[0]} on ${this.device})`);
      throw err;
    }
  }

  /** An eval-only snapshot with BN folded into the convolutions (and channels_last on the CPU), for fast
   *  inference. Later training of this model does not change the snapshot. */
  async optimizeForInference(options: InferenceOptions = {}): Promise<InferenceModel> {
    s.object({
      inputSize: s.optional(s.any()),
      channelsLast: s.optional(s.boolean()),
      engine: s.optional(s.enum(['native', 'onnxruntime', 'auto'] as const)),
      kernels: s.optional(s.enum(NATIVE_KERNELS)),
      precision: s.optional(s.enum(INFERENCE_PRECISIONS)),
      calibration: s.optional(s.any()),
    }).parse(options, 'options');
    const size = resolveInputSize(
      this.spec,
      options.inputSize,
      trainedImageSize(this.preprocessing),
      this.minInputSize,
    );
    const precision = options.precision ?? 'float32';
    const backend = await openEngine(this.handle(), {
      engine: options.engine ?? 'native',
      kernels: options.kernels ?? 'auto',
      precision,
      calibration: checkCalibration(precision, options.calibration, size, this.inChannels),
      channelsLast: options.channelsLast ?? (!this.device.startsWith('cuda') && native().info().mkldnn),
      device: this.device,
      head: { arch: this.spec.arch, inChannels: this.inChannels, numClasses: this.numClasses },
      size,
      structure: { ...this.spec, seed: undefined, classNames: undefined, weights: undefined },
    });
    return new InferenceModel(backend, {
      numClasses: this.numClasses,
      inChannels: this.inChannels,
      classNames: this.classNames,
      minInputSize: this.minInputSize,
      preprocessing: this.preprocessing,
      inputSize: size,
    });
  }

  /** Training mode (BN uses batch statistics and updates its running ones). */
  train(on = true): this {
    this.handle().setTraining(on);
    return this;
  }

  /** Evaluation mode (BN uses its running statistics). */
  eval(): this {
    return this.train(false);
  }

  /** Moves the weights to 'cpu', 'cuda' or 'cuda:N'. */
  async to(device: string): Promise<this> {
    s.string().parse(device, 'device');
    await this.handle().to(device);
    return this;
  }

  /** Number of parameters (all, or only those that train). */
  parameterCount(options: { trainable?: boolean } = {}): number {
    return this.#entries()
      .filter((e) => e.parameter && (!options.trainable || e.requiresGrad))
      .reduce((sum, e) => sum + e.shape.reduce((a, b) => a * b, 1), 0);
  }

  /** Names, shapes and dtypes of every parameter and buffer, in torchvision's state_dict order. */
  stateDict(): StateEntry[] {
    return this.#entries().map((e) => ({
      name: e.name,
      shape: e.shape,
      dtype: e.dtype,
      kind: e.parameter ? 'parameter' : 'buffer',
      trainable: e.parameter && e.requiresGrad,
    }));
  }

  /** Per layer: output shape, parameters and multiply-adds, for one image of the given size. */
  summary(options: { inputSize?: number | [number, number] } = {}): ModelSummary {
    s.object({ inputSize: s.optional(s.any()) }).parse(options, 'options');
    const [h, w] = resolveInputSize(
      this.spec,
      options.inputSize,
      trainedImageSize(this.preprocessing),
      this.minInputSize,
    );
    return summarize(this.handle().trace(h, w), {
      ...(this.spec.arch ? { arch: this.spec.arch } : {}),
      inputShape: [1, this.inChannels, h, w],
      totalParams: this.parameterCount(),
      trainableParams: this.parameterCount({ trainable: true }),
    });
  }

  /** Writes the weights and BN buffers as safetensors with torchvision's names (atomically). */
  async saveWeights(file: string): Promise<void> {
    s.string().parse(file, 'path');
    await saveWeights(this.handle(), { ...this.spec, classNames: this.classNames }, file, this.preprocessing);
  }

  /** Loads safetensors weights; every mismatch of name, shape or dtype is listed in one error unless
   *  `strict: false`, which loads what matches and reports the rest. */
  async loadWeights(file: string, options: LoadOptions = {}): Promise<LoadReport> {
    s.string().parse(file, 'path');
    loadOptionsSchema.parse(options, 'options');
    return loadWeights(this.handle(), file, options);
  }

  /** Loss, top-1/top-5 error, per-class accuracy and confusion matrix on a dataset, in eval mode,
   *  with the normalisation the model was trained with (or `preprocessing`). */
  async evaluate(
    data: EvaluationData,
    options: { batchSize?: number; preprocessing?: Preprocessing; split?: string } = {},
  ): Promise<EvalMetrics> {
    if (typeof data?.handle !== 'function')
      throw new ValidationError('data', data, 'a Dataset (from the datasets readers or fromArrays)');
    const batchSize = s.integer({ min: 1, max: 1_000_000 }).parse(options.batchSize ?? EVAL_BATCH_SIZE, 'batchSize');
    const pre = options.preprocessing ?? this.preprocessing ?? { normalize: 'none' };
    checkDataFits('data', data, this);
    if (pre.normalize === 'per-pixel' && pre.meanShape && pre.meanShape.some((v, i) => v !== data.shape[i]))
      throw new ValidationError(
        'data',
        data.name,
        `images of [${pre.meanShape.join(', ')}]`,
        `data: the model's per-pixel mean is [${pre.meanShape.join(', ')}], ${data.name} has images of [${data.shape.join(', ')}]`,
      );
    return toEvalMetrics(
      await data.handle().evaluate(this.handle(), evaluationAugment(pre), batchSize, options.split ?? data.name),
    );
  }

  /** Loads a PyTorch state dict (`torch.save(model.state_dict())`, .pth/.pt zip format) with torchvision's
   *  names, checked like loadWeights. */
  async loadPytorch(file: string, options: LoadOptions = {}): Promise<LoadReport> {
    s.string().parse(file, 'path');
    loadOptionsSchema.parse(options, 'options');
    return loadPytorchWeights(this.handle(), file, options);
  }

  /** Writes an ONNX file (eval-mode network, dynamic batch dimension, opset 13 or later). */
  async exportOnnx(file: string, options: OnnxOptions = {}): Promise<void> {
    s.string().parse(file, 'path');
    s.object({
      opset: s.optional(s.integer({ min: ONNX_OPSET.min, max: ONNX_OPSET.max })),
      inputSize: s.optional(s.any()),
    }).parse(options, 'options');
    const size = resolveInputSize(
      this.spec,
      options.inputSize,
      trainedImageSize(this.preprocessing),
      this.minInputSize,
    );
    await exportOnnx(
      this.handle(),
      { arch: this.spec.arch, inChannels: this.inChannels, numClasses: this.numClasses },
      file,
      { opset: options.opset ?? ONNX_OPSET.default, size },
    );
  }

  /** Stops training the parameters under these module names ('conv1', 'bn1', 'layer1', 'layer2.0', ...). */
  freeze(modules: string[]): this {
    return this.#setTrainable(modules, false, 'freeze');
  }

  /** Trains them again. */
  unfreeze(modules: string[]): this {
    return this.#setTrainable(modules, true, 'unfreeze');
  }

  #setTrainable(modules: string[], on: boolean, verb: string): this {
    s.array(s.string(), { minLength: 1 }).parse(modules, 'modules');
    const names = this.stateDict()
      .filter((e) => e.kind === 'parameter')
      .map((e) => e.name);
    for (const m of modules)
      if (!names.some((n) => n === m || n.startsWith(`${m}.`)))
        throw new ValidationError(
          'modules',
          m,
          'a module name of this model',
          `${verb}: no parameter under "${m}" (modules are named like conv1, bn1, layer1, layer2.0, fc)`,
        );
    this.handle().setRequiresGrad(modules, on);
    return this;
  }

  /** A new classifier for `numClasses` (fine-tuning): fc is re-initialised; the rest is kept. */
  replaceHead(numClasses: number, options: { classNames?: string[]; seed?: number } = {}): this {
    s.integer({ min: 1, max: 1_000_000 }).parse(numClasses, 'numClasses');
    if (options.classNames && options.classNames.length !== numClasses)
      throw new ValidationError('classNames', options.classNames, `${numClasses} names, one per class`);
    this.handle().replaceHead(numClasses, options.seed ?? this.spec.seed + 1);
    (this as { spec: ResolvedModelSpec }).spec = {
      ...this.spec,
      numClasses,
      ...(options.classNames ? { classNames: options.classNames } : {}),
    };
    this.classNames = options.classNames;
    return this;
  }

  /** Frees the native network now (otherwise when the Model is collected). */
  dispose(): void {
    if (!this.#native) return;
    finalizer.unregister(this);
    this.#native.dispose();
    this.#native = undefined;
  }

  #entries(): NativeStateEntry[] {
    return this.handle().stateEntries();
  }
}

/** Builds a network from a spec (validated first; nothing reaches C++ before it passes). */
export async function createModel(spec: ModelSpec): Promise<Model> {
  const resolved = resolveSpec(spec);
  const binding = native();
  let device: string;
  try {
    device = binding.checkDevice(resolved.device);
  } catch (e) {
    throw inContext(e, 'device');
  }
  const handle = await binding.createModel({ ...resolved }, device);
  const model = new Model(handle, { ...resolved, device });
  if (spec.weights !== undefined) {
    try {
      await loadStartingWeights(model, spec.weights);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return model;
}

/** A .pth (a zip: torch.save's format) or a safetensors file of ours, by its first bytes. */
async function loadStartingWeights(model: Model, file: string): Promise<void> {
  let head: Buffer;
  try {
    const handle = await fsp.open(file, 'r');
    try {
      head = Buffer.alloc(4);
      await handle.read(head, 0, 4, 0);
    } finally {
      await handle.close();
    }
  } catch (e) {
    throw new ValidationError(
      'weights',
      file,
      'a readable weights file',
      `weights: cannot read ${file}: ${(e as Error).message}`,
    );
  }
  if (head.toString('latin1') === 'PK\x03\x04') await model.loadPytorch(file);
  else await model.loadWeights(file);
}
