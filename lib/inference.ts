// Fast inference: an eval-only snapshot of a model with every BatchNormalization folded into the
// convolution before it, channels_last weights on the CPU (oneDNN's fast path), and the model's
// normalisation applied to raw pixels. On the CPU one image through a wide net (ResNet-18 and up, option B/C)
// runs on oneDNN's blocked layout with weights reordered once.
import { fromNative, OutOfMemoryError } from './errors';
import type { Model, Prediction } from './model';
import { NativeFused, native } from './native';
import { Tensor, checkImageBatch } from './tensor';
import { s } from './validate';

export interface InferenceOptions {
  /** Input height and width the trace uses for the folded graph (any batch; default as summary()). */
  inputSize?: number | [number, number];
  /** Weights and inputs in channels_last (default: on the CPU). */
  channelsLast?: boolean;
}

export class InferenceModel {
  readonly numClasses: number;
  readonly inChannels: number;
  readonly classNames?: string[];
  /** BatchNormalizations folded into convolutions. */
  readonly folded: number;
  #native: NativeFused;
  #minSize: number;

  /** @internal */
  constructor(handle: NativeFused, model: Model) {
    this.#native = handle;
    this.numClasses = model.numClasses;
    this.inChannels = model.inChannels;
    this.classNames = model.classNames;
    this.folded = handle.folded();
    this.#minSize = model.minInputSize;
  }

  async forward(x: Tensor): Promise<Tensor> {
    const input = checkImageBatch(x, 'input', { channels: this.inChannels, minSize: this.#minSize });
    try {
      return await this.#native.forward(input.data, input.shape);
    } catch (e) {
      const err = fromNative(e);
      if (err instanceof OutOfMemoryError) throw new OutOfMemoryError(`${err.message} (inference batch of ${input.shape[0]})`);
      throw err;
    }
  }

  async predict(x: Tensor, options: { topK?: number } = {}): Promise<Prediction[][]> {
    const topK = s.integer({ min: 1, max: this.numClasses }).parse(options.topK ?? Math.min(5, this.numClasses), 'topK');
    const logits = await this.forward(x);
    const [n, k] = logits.shape;
    return Array.from({ length: n }, (_, i) => {
      const row = logits.data.subarray(i * k, (i + 1) * k);
      const max = Math.max(...row);
      const exps = Array.from(row, (v) => Math.exp(v - max));
      const sum = exps.reduce((a, b) => a + b, 0);
      return exps.map((e, index) => ({ index, probability: e / sum })).sort((a, b) => b.probability - a.probability).slice(0, topK)
        .map((p) => (this.classNames ? { ...p, label: this.classNames[p.index] } : p));
    });
  }
}

export async function optimizeForInference(model: Model, options: InferenceOptions = {}): Promise<InferenceModel> {
  s.object({ inputSize: s.optional(s.union(s.integer({ min: 1 }), s.array(s.integer({ min: 1 }), { minLength: 2, maxLength: 2 }))),
    channelsLast: s.optional(s.boolean()) }).parse(options, 'options');
  const size = options.inputSize ?? model.preprocessing?.size ?? (model.spec.stem === 'imagenet' ? 224 : 32);
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  const channelsLast = options.channelsLast ?? !model.device.startsWith('cuda');
  try {
    return new InferenceModel(await native().fuse(model.handle(), h, w, channelsLast), model);
  } catch (e) {
    throw fromNative(e);
  }
}
