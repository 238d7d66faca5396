// The Model facade: a typed, validated handle on a native network.
import { ResolvedModelSpec, ModelSpec, defaultInputSize, resolveSpec } from './spec';
import { DisposedError, OutOfMemoryError, ShapeError, ValidationError, fromNative } from './errors';
import { InferenceModel, InferenceOptions, optimizeForInference } from './inference';
import { NativeModel, NativeStateEntry, native } from './native';
import { Tensor, checkImageBatch } from './tensor';
import { s } from './validate';
import type { Preprocessing, EvalMetrics } from './train';
import { nativeNormalization } from './train';
import type { Dataset } from './datasets/dataset';
import { LoadOptions, LoadReport, loadWeights, saveWeights } from './io/weights';
import { loadPytorchWeights } from './io/pth';
import { OnnxOptions, exportOnnx } from './io/onnx';

export interface Prediction {
  index: number;
  probability: number;
  label?: string;
}

export interface StateEntry {
  name: string;
  shape: number[];
  dtype: string;
  kind: 'parameter' | 'buffer';
  trainable: boolean;
}

export interface LayerSummary {
  name: string;
  type: string;
  outputShape: number[];
  params: number;
  macs: number;
}

export interface ModelSummary {
  arch?: string;
  inputShape: number[];
  layers: LayerSummary[];
  totalParams: number;
  trainableParams: number;
  /** Multiply-adds of one image (convolutions and fc): the paper's "FLOPs". */
  totalMacs: number;
}

const LAYER_TYPES: Record<string, string> = {
  Conv: 'Conv2d', BatchNormalization: 'BatchNorm2d', Relu: 'ReLU', MaxPool: 'MaxPool2d', Add: 'Add',
  GlobalAveragePool: 'AdaptiveAvgPool2d', Flatten: 'Flatten', Gemm: 'Linear', Slice: 'Subsample', Pad: 'ZeroPadChannels',
  Mul: 'Scale',
};

// Frees the native network when a Model is collected without dispose().
const finalizer = new FinalizationRegistry<NativeModel>((handle) => handle.dispose());

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

  get numClasses(): number {
    return this.spec.numClasses;
  }

  get inChannels(): number {
    return this.spec.inChannels;
  }

  get device(): string {
    return this.handle().device();
  }

  get training(): boolean {
    return this.handle().isTraining();
  }

  /** Side of the smallest input the network takes (32 for the ImageNet family, 4 for CIFAR nets). */
  get minInputSize(): number {
    return this.handle().minInputSize();
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** Logits for a batch {data: Float32Array, shape: [N, C, H, W]}, in the current mode. */
  async forward(x: Tensor): Promise<Tensor> {
    return this.#run(x, false);
  }

  /** The top-k classes per image with softmax probabilities, computed in eval mode. */
  async predict(x: Tensor, options: { topK?: number } = {}): Promise<Prediction[][]> {
    const topK = s.integer({ min: 1, max: this.numClasses }).parse(options.topK ?? Math.min(5, this.numClasses), 'topK');
    const logits = await this.#run(x, true);
    const [n, k] = logits.shape;
    const out: Prediction[][] = [];
    for (let i = 0; i < n; i++) {
      const row = logits.data.subarray(i * k, (i + 1) * k);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      const probs = Array.from(row, (v) => {
        const e = Math.exp(v - max);
        sum += e;
        return e;
      });
      const order = probs.map((p, index) => ({ index, probability: p / sum })).sort((a, b) => b.probability - a.probability);
      out.push(order.slice(0, topK).map((p) => (this.classNames ? { ...p, label: this.classNames[p.index] } : p)));
    }
    return out;
  }

  async #run(x: Tensor, forceEval: boolean): Promise<Tensor> {
    const handle = this.handle();
    const input = checkImageBatch(x, 'input', { channels: this.inChannels, minSize: handle.minInputSize(), arch: this.spec.arch });
    try {
      return await handle.forward(input.data, input.shape, forceEval);
    } catch (e) {
      const err = fromNative(e);
      // The model is unchanged and the cache was released: a smaller batch can go on.
      if (err instanceof OutOfMemoryError) throw new OutOfMemoryError(`${err.message} (forward of a batch of ${input.shape[0]} on ${this.device})`);
      throw err;
    }
  }

  /** An eval-only snapshot with BN folded into the convolutions (and channels_last on the CPU), for fast
   *  inference. Later training of this model does not change the snapshot. */
  async optimizeForInference(options: InferenceOptions = {}): Promise<InferenceModel> {
    return optimizeForInference(this, options);
  }

  /** Training mode (BN uses batch statistics and updates its running ones). */
  train(on = true): this {
    try {
      this.handle().setTraining(on);
    } catch (e) {
      throw fromNative(e);
    }
    return this;
  }

  /** Evaluation mode (BN uses its running statistics). */
  eval(): this {
    return this.train(false);
  }

  /** Moves the weights to 'cpu', 'cuda' or 'cuda:N'. */
  async to(device: string): Promise<this> {
    s.string().parse(device, 'device');
    try {
      await this.handle().to(device);
    } catch (e) {
      throw fromNative(e);
    }
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
    return this.#entries().map((e) => ({ name: e.name, shape: e.shape, dtype: e.dtype,
      kind: e.parameter ? 'parameter' : 'buffer', trainable: e.parameter && e.requiresGrad }));
  }

  /** Per layer: output shape, parameters and multiply-adds, for one image of the given size. */
  summary(options: { inputSize?: number | [number, number] } = {}): ModelSummary {
    const size = options.inputSize ?? defaultInputSize(this.spec);
    const [h, w] = typeof size === 'number' ? [size, size] : size;
    for (const [field, v] of [['inputSize', h], ['inputSize', w]] as const)
      s.integer({ min: this.minInputSize, max: 16384 }).parse(v, field);
    const graph = this.handle().trace(h, w);
    const layers = graph.nodes.map((n) => ({ name: n.name, type: LAYER_TYPES[n.op] ?? n.op, outputShape: n.outputShape,
      params: n.params, macs: n.macs }));
    return {
      ...(this.spec.arch ? { arch: this.spec.arch } : {}),
      inputShape: [1, this.inChannels, h, w],
      layers,
      totalParams: this.parameterCount(),
      trainableParams: this.parameterCount({ trainable: true }),
      totalMacs: graph.nodes.filter((n) => n.op === 'Conv' || n.op === 'Gemm').reduce((sum, n) => sum + n.macs, 0),
    };
  }

  /** Writes the weights and BN buffers as safetensors with torchvision's names (atomically). */
  async saveWeights(file: string): Promise<void> {
    s.string().parse(file, 'path');
    await saveWeights(this, file);
  }

  /** Loads safetensors weights; every mismatch of name, shape or dtype is listed in one error unless
   *  `strict: false`, which loads what matches and reports the rest. */
  async loadWeights(file: string, options: LoadOptions = {}): Promise<LoadReport> {
    s.string().parse(file, 'path');
    s.object({ strict: s.optional(s.boolean()) }).parse(options, 'options');
    return loadWeights(this, file, options);
  }

  /** Loss, top-1/top-5 error, per-class accuracy and confusion matrix on a dataset, in eval mode,
   *  with the normalisation the model was trained with (or `preprocessing`). */
  async evaluate(data: Dataset, options: { batchSize?: number; preprocessing?: Preprocessing; split?: string } = {}): Promise<EvalMetrics> {
    const batchSize = s.integer({ min: 1, max: 1_000_000 }).parse(options.batchSize ?? 500, 'batchSize');
    const pre = options.preprocessing ?? this.preprocessing ?? { normalize: 'none' };
    if (data.shape[0] !== this.inChannels)
      throw new ShapeError(`${data.name} has ${data.shape[0]}-channel images, the model takes ${this.inChannels}`);
    if (data.shape[1] < this.minInputSize || data.shape[2] < this.minInputSize)
      throw new ShapeError(`${data.name} has ${data.shape[1]}x${data.shape[2]} images: too small for the model (minimum ${this.minInputSize}x${this.minInputSize})`);
    if (data.numClasses > this.numClasses)
      throw new ShapeError(`${data.name} has ${data.numClasses} classes, the model ${this.numClasses} outputs`);
    if (pre.normalize === 'per-pixel' && pre.meanShape && pre.meanShape.some((v, i) => v !== data.shape[i]))
      throw new ShapeError(`the model's per-pixel mean is [${pre.meanShape.join(', ')}], ${data.name} has images of [${data.shape.join(', ')}]`);
    const augment = { ...nativeNormalization(pre), ...(pre.size ? { randomResizedCrop: true, outHeight: pre.size[0], outWidth: pre.size[1] } : {}) };
    try {
      const m = await data.handle().evaluate(this.handle(), augment, batchSize, options.split ?? data.name);
      return { ...m, accuracy: 1 - m.top1Error };
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Loads a PyTorch state dict (`torch.save(model.state_dict())`, .pth/.pt zip format) with torchvision's
   *  names, checked like loadWeights. */
  async loadPytorch(file: string, options: LoadOptions = {}): Promise<LoadReport> {
    s.string().parse(file, 'path');
    s.object({ strict: s.optional(s.boolean()) }).parse(options, 'options');
    return loadPytorchWeights(this, file, options);
  }

  /** Writes an ONNX file (eval-mode network, dynamic batch dimension, opset 13 or later). */
  async exportOnnx(file: string, options: OnnxOptions = {}): Promise<void> {
    await exportOnnx(this, file, options);
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
    const names = this.stateDict().filter((e) => e.kind === 'parameter').map((e) => e.name);
    for (const m of modules)
      if (!names.some((n) => n === m || n.startsWith(`${m}.`)))
        throw new ValidationError('modules', m, 'a module name of this model', `${verb}: no parameter under "${m}" (modules are named like conv1, bn1, layer1, layer2.0, fc)`);
    try {
      this.handle().setRequiresGrad(modules, on);
    } catch (e) {
      throw fromNative(e);
    }
    return this;
  }

  /** A new classifier for `numClasses` (fine-tuning): fc is re-initialised; the rest is kept. */
  replaceHead(numClasses: number, options: { classNames?: string[]; seed?: number } = {}): this {
    s.integer({ min: 1, max: 1_000_000 }).parse(numClasses, 'numClasses');
    if (options.classNames && options.classNames.length !== numClasses)
      throw new ValidationError('classNames', options.classNames, `${numClasses} names, one per class`);
    try {
      this.handle().replaceHead(numClasses, options.seed ?? this.spec.seed + 1);
    } catch (e) {
      throw fromNative(e);
    }
    (this as { spec: ResolvedModelSpec }).spec = { ...this.spec, numClasses, ...(options.classNames ? { classNames: options.classNames } : {}) };
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
    throw fromNative(e, 'device');
  }
  try {
    const handle = await binding.createModel({ ...resolved }, device);
    return new Model(handle, { ...resolved, device });
  } catch (e) {
    throw fromNative(e);
  }
}

/** Formats a summary as a fixed-width table. */
export function formatSummary(summary: ModelSummary): string {
  const rows = summary.layers.map((l) => [l.name, l.type, `[${l.outputShape.join(', ')}]`, l.params ? l.params.toLocaleString('en-US') : '-',
    l.macs ? l.macs.toLocaleString('en-US') : '-']);
  const header = ['layer', 'type', 'output shape', 'params', 'mult-adds'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [
    `${summary.arch ?? 'model'}, input [${summary.inputShape.join(', ')}]`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    `parameters: ${summary.totalParams.toLocaleString('en-US')} (${summary.trainableParams.toLocaleString('en-US')} trainable)`,
    `mult-adds:  ${(summary.totalMacs / 1e9).toFixed(2)} G per image`,
  ].join('\n');
}

