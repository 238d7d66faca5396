// Input normalisation, one definition for every path: training resolves it from the options and the
// training set, stores it on the model and in checkpoints; evaluation hands it to C++; predictions from
// decoded image files apply it here in JS.
import { ValidationError } from './errors';
import type { NativeAugment, NativeNormalization } from './native';
import { isTypedArray } from './tensor';
import { Schema, s } from './validate';

/** How inputs are normalised; kept on the model after training so evaluation and prediction match. */
export interface Preprocessing {
  /** How images were normalised. */
  normalize: 'none' | 'per-pixel' | 'per-channel';
  /** The mean subtracted (per channel, or per pixel). */
  mean?: number[];
  meanShape?: number[];
  /** The standard deviation divided by (per channel). */
  std?: number[];
  /** Training crop size when random-resized-crop trains at another size than the stored images. */
  size?: [number, number];
  /** The [height, width] the network saw in training; predictImage resizes images to it. */
  inputSize?: [number, number];
}

/** The `normalize` training option: the per-pixel mean image (the paper's CIFAR), per-channel mean/std
 *  from the training set (default), explicit values, or none. */
export type NormalizeOption =
  | 'none'
  | 'per-pixel'
  | 'per-channel'
  | {
      /** Per-channel mean, in [0, 1] units. */
      mean: number[];
      /** Per-channel standard deviation. */
      std: number[];
    };

export const normalizeSchema: Schema<NormalizeOption> = s.union<NormalizeOption>(
  s.enum(['none', 'per-pixel', 'per-channel'] as const),
  s.object({
    mean: s.array(s.number(), { minLength: 1 }),
    std: s.array(s.number({ min: 0, minExclusive: true }), { minLength: 1 }),
  }),
);

const size = s.array(s.integer({ min: 1, max: 16384 }), { minLength: 2, maxLength: 2 }) as unknown as Schema<
  [number, number]
>;

/** Checks preprocessing read from a file's metadata (a weights file, a checkpoint): nothing malformed reaches a model. */
export const preprocessingSchema: Schema<Preprocessing> = s.object<Preprocessing>({
  normalize: s.enum(['none', 'per-pixel', 'per-channel'] as const),
  mean: s.optional(s.array(s.number())),
  meanShape: s.optional(s.array(s.integer({ min: 1, max: 16384 }), { minLength: 1, maxLength: 3 })),
  std: s.optional(s.array(s.number({ min: 0, minExclusive: true }))),
  size: s.optional(size),
  inputSize: s.optional(size),
});

/** What resolving the option needs of a training set. */
export interface StatsSource {
  shape: readonly number[];
  stats(): Promise<{ meanImage: Float32Array; channelMean: number[]; channelStd: number[] }>;
}

export async function resolvePreprocessing(option: NormalizeOption, data: StatsSource): Promise<Preprocessing> {
  if (option === 'none') return { normalize: 'none' };
  if (typeof option === 'object') {
    const c = data.shape[0];
    if (option.mean.length !== c || option.std.length !== c)
      throw new ValidationError('normalize', option, `mean and std of ${c} values, one per channel`);
    return { normalize: 'per-channel', mean: [...option.mean], meanShape: [c], std: [...option.std] };
  }
  const stats = await data.stats();
  if (option === 'per-pixel')
    return { normalize: 'per-pixel', mean: Array.from(stats.meanImage), meanShape: [...data.shape] };
  return {
    normalize: 'per-channel',
    mean: stats.channelMean,
    meanShape: [data.shape[0]],
    std: stats.channelStd.map((v) => (v > 0 ? v : 1)),
  };
}

/** Normalisation settings as the native side takes them (training and evaluation). */
export function nativeNormalization(p: Preprocessing): NativeNormalization {
  if (p.normalize === 'none') return { norm: 'none' };
  return {
    norm: p.normalize,
    // In float64: the native side converts them to the model's element type (a float64 model keeps every digit).
    mean: Float64Array.from(p.mean ?? []),
    meanShape: p.meanShape ?? [p.mean?.length ?? 0],
    ...(p.std ? { std: Float64Array.from(p.std) } : {}),
  };
}

/** The random parts of NativeAugment switched off (evaluation; training without a policy or erasing). */
export const RANDOM_AUGMENT_OFF: Pick<NativeAugment, 'autoAugment' | 'erase'> = {
  autoAugment: {
    kind: 'none',
    numOps: 0,
    magnitude: 0,
    numBins: 0,
    magnitudeStd: 0,
    prob: 0,
    increasing: false,
    resample: 'random',
    fill: [],
  },
  erase: { prob: 0, scaleMin: 0, scaleMax: 0, ratioMin: 0, ratioMax: 0, randomValue: false, value: 0 },
};

/** What evaluation hands to C++: the normalisation, and the training crop size when it differs. */
export function evaluationAugment(p: Preprocessing): NativeAugment {
  // With randomResizedCrop evaluation resizes the whole image to the training crop: scale and ratio are unused.
  return {
    ...nativeNormalization(p),
    pad: 0,
    flip: false,
    randomResizedCrop: p.size !== undefined,
    scaleMin: 1,
    scaleMax: 1,
    ratioMin: 1,
    ratioMax: 1,
    outHeight: p.size?.[0] ?? 0,
    outWidth: p.size?.[1] ?? 0,
    evalHeight: 0,
    evalWidth: 0,
    ...RANDOM_AUGMENT_OFF,
    channelsLast: false,
  };
}

/** uint8 pixels N×C×H×W -> the float input the model was trained on. */
export function normalizeImages(
  images: Uint8Array | Float32Array,
  shape: number[],
  p: Preprocessing | undefined,
): Float32Array {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const out = new Float32Array(images.length);
  const scale = isTypedArray(images, 'Float32Array') ? 1 : 1 / 255;
  for (let i = 0; i < images.length; i++) out[i] = images[i] * scale;
  if (!p || p.normalize === 'none') return out;
  const mean = p.mean ?? [];
  for (let k = 0; k < n; k++)
    for (let ch = 0; ch < c; ch++) {
      const base = (k * c + ch) * plane;
      if (p.normalize === 'per-pixel') {
        for (let i = 0; i < plane; i++) out[base + i] -= mean[ch * plane + i];
      } else {
        const m = mean[ch],
          s = p.std?.[ch] ?? 1;
        for (let i = 0; i < plane; i++) out[base + i] = (out[base + i] - m) / s;
      }
    }
  return out;
}
