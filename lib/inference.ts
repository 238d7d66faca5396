// Fast inference: an eval-only snapshot of a model with every BatchNormalization folded into the
// convolution before it, channels_last weights on the CPU (oneDNN's fast path). On the CPU one image
// through a wide net (ResNet-18 and up, option B/C) runs on oneDNN's blocked layout with weights reordered once.
import { OutOfMemoryError } from './errors';
import { NativeFused, NativeModel, native } from './native';
import { Prediction, topK } from './predictions';
import { Tensor, checkImageBatch } from './tensor';
import { s } from './validate';

export interface InferenceOptions {
  /** Input height and width the trace uses for the folded graph (any batch; default as summary()). */
  inputSize?: number | [number, number];
  /** Weights and inputs in channels_last (default: on the CPU). */
  channelsLast?: boolean;
}

/** What the folded model keeps of the model it was made from. */
export interface InferenceHead {
  numClasses: number;
  inChannels: number;
  classNames?: string[];
  minInputSize: number;
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
  constructor(handle: NativeFused, head: InferenceHead) {
    this.#native = handle;
    this.numClasses = head.numClasses;
    this.inChannels = head.inChannels;
    this.classNames = head.classNames;
    this.folded = handle.folded();
    this.#minSize = head.minInputSize;
  }

  async forward(x: Tensor): Promise<Tensor> {
    const input = checkImageBatch(x, 'input', { channels: this.inChannels, minSize: this.#minSize });
    try {
      return await this.#native.forward(input.data, input.shape);
    } catch (err) {
      if (err instanceof OutOfMemoryError)
        throw new OutOfMemoryError(`${err.message} (inference batch of ${input.shape[0]})`);
      throw err;
    }
  }

  async predict(x: Tensor, options: { topK?: number } = {}): Promise<Prediction[][]> {
    const k = s.integer({ min: 1, max: this.numClasses }).parse(options.topK ?? Math.min(5, this.numClasses), 'topK');
    return topK(await this.forward(x), k, this.classNames);
  }
}

/** Folds `handle`'s network for inputs of `size` ([height, width]; any batch). */
export async function optimizeForInference(
  handle: NativeModel,
  head: InferenceHead,
  size: [number, number],
  channelsLast: boolean,
): Promise<InferenceModel> {
  return new InferenceModel(await native().fuse(handle, size[0], size[1], channelsLast), head);
}
