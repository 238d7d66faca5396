// Training-time augmentation and input normalisation: what the native thread does to each batch before the
// forward (native/data/augment.cpp), and the preprocessing the model records for prediction.
import type { Dataset } from '../../datasets/dataset';
import type { StreamingDataset } from '../../datasets/image-folder';
import type { NativeAugment, NativeTrainConfig } from '../../native';
import {
  NormalizeOption,
  Preprocessing,
  RANDOM_AUGMENT_OFF,
  nativeNormalization,
  normalizeSchema,
  resolvePreprocessing,
} from '../../preprocess';
import { ValidationError } from '../../errors';
import { Schema, Fields, s } from '../../validate';
import { pair } from './common';

/** Training-time augmentation, drawn per image on the native thread. */
export interface AugmentOptions {
  /** Pad with zeros by this many pixels and crop back at a random offset (the paper: 4). */
  padCrop?: number;
  /** Random horizontal flip. */
  flip?: boolean;
  /** ImageNet-style random-resized-crop to `size`. */
  randomResizedCrop?: {
    /** Output side, or [height, width] (default: the image's). */
    size?: number | [number, number];
    /** Range of the crop's area, as a fraction of the image's (default [0.08, 1]). */
    scale?: [number, number];
    /** Range of the crop's aspect ratio (default [3/4, 4/3]). */
    ratio?: [number, number];
    /** The size evaluation and prediction resize images to (default: `size`). FixRes: torchvision's new recipe
     *  trains on 176 crops and evaluates at 224, where its validation images are. */
    evalSize?: number | [number, number];
  };
  /** torchvision's TrivialAugmentWide: each image one operation of 14 at a random magnitude bin, after the crop
   *  and flip, on the uint8 pixels (`true` for torchvision's 31 bins). Not with `randAugment`. */
  trivialAugment?: boolean | { numMagnitudeBins?: number };
  /** torchvision's RandAugment: each image `numOps` operations at the magnitude bin `magnitude` of
   *  `numMagnitudeBins` (torchvision's defaults 2, 9, 31). Not with `trivialAugment`. */
  randAugment?: boolean | { numOps?: number; magnitude?: number; numMagnitudeBins?: number };
  /** torchvision's RandomErasing on the normalised image: with probability `prob`, one rectangle of `scale` of the
   *  area and aspect `ratio` set to `value` (0, the mean after normalisation, or 'random': standard normal). */
  randomErasing?: {
    prob?: number;
    scale?: [number, number];
    ratio?: [number, number];
    value?: number | 'random';
  };
  /** Mixup and CutMix on each batch, as timm's Mixup (mode "batch"): each image mixed with the batch reversed, the
   *  targets mixed alike (label smoothing goes into them); the loss takes the soft targets. */
  mix?: MixOptions;
}

/** timm's Mixup arguments (--mixup, --cutmix, --mixup-prob, --mixup-switch-prob, mode "batch"). */
export interface MixOptions {
  /** Beta(α, α) of mixup's λ; 0 turns mixup off (default 0). */
  mixup?: number;
  /** Beta(α, α) of cutmix's λ; 0 turns cutmix off (default 0). At least one of the two is above 0. */
  cutmix?: number;
  /** Probability that a batch is mixed at all (default 1). */
  prob?: number;
  /** With both on, the probability of cutmix rather than mixup (default 0.5). */
  switchProb?: number;
  /** Only 'batch' (one draw per batch; timm's default). */
  mode?: 'batch';
  /** CutMix's λ from the clipped box's area (default true, timm's correct_lam). */
  correctLam?: boolean;
}

export interface AugmentGroupOptions {
  /** Training-time augmentation (default none). */
  augment?: AugmentOptions;
  /** Input normalisation: the per-pixel mean image (the paper's CIFAR), per-channel mean/std (default),
   *  explicit values, or none. Statistics come from the training set. */
  normalize?: NormalizeOption;
}

export const AUGMENT_DEFAULTS = {
  augment: { padCrop: 0, flip: false },
  randomResizedCrop: { scale: [0.08, 1] as [number, number], ratio: [3 / 4, 4 / 3] as [number, number] },
  normalize: 'per-channel' as NormalizeOption,
  mix: { mixup: 0, cutmix: 0, prob: 1, switchProb: 0.5, correctLam: true },
  // torchvision's defaults (transforms.TrivialAugmentWide, RandAugment, RandomErasing).
  trivialAugment: { numMagnitudeBins: 31 },
  randAugment: { numOps: 2, magnitude: 9, numMagnitudeBins: 31 },
  randomErasing: {
    prob: 0.5,
    scale: [0.02, 0.33] as [number, number],
    ratio: [0.3, 3.3] as [number, number],
    value: 0,
  },
};
const D = AUGMENT_DEFAULTS;

const sizeSchema = s.union<number | [number, number]>(
  s.integer({ min: 1, max: 16384 }),
  pair(s.integer({ min: 1, max: 16384 })),
);
const range = (item: Schema<number>, name: string) =>
  s.refine(pair(item), (v) => (v[0] <= v[1] ? undefined : `${name} must be [min, max] with min ≤ max`));

export const augmentSchema: Schema<AugmentOptions> = s.object<AugmentOptions>({
  padCrop: s.optional(s.integer({ min: 0, max: 512 })),
  flip: s.optional(s.boolean()),
  randomResizedCrop: s.optional(
    s.object({
      size: s.optional(sizeSchema),
      scale: s.optional(range(s.number({ min: 0, minExclusive: true, max: 1 }), 'scale')),
      ratio: s.optional(range(s.number({ min: 0, minExclusive: true, max: 100 }), 'ratio')),
      evalSize: s.optional(sizeSchema),
    }),
  ),
  trivialAugment: s.optional(
    s.union<boolean | { numMagnitudeBins?: number }>(
      s.boolean(),
      s.object({ numMagnitudeBins: s.optional(s.integer({ min: 2, max: 1000 })) }),
    ),
  ),
  randAugment: s.optional(
    s.refine(
      s.union<boolean | { numOps?: number; magnitude?: number; numMagnitudeBins?: number }>(
        s.boolean(),
        s.object({
          numOps: s.optional(s.integer({ min: 1, max: 16 })),
          magnitude: s.optional(s.integer({ min: 0, max: 999 })),
          numMagnitudeBins: s.optional(s.integer({ min: 2, max: 1000 })),
        }),
      ),
      (r) =>
        typeof r === 'boolean' ||
        (r.magnitude ?? D.randAugment.magnitude) < (r.numMagnitudeBins ?? D.randAugment.numMagnitudeBins)
          ? undefined
          : 'magnitude must be a bin: below numMagnitudeBins',
    ),
  ),
  randomErasing: s.optional(
    s.object({
      prob: s.optional(s.number({ min: 0, max: 1 })),
      scale: s.optional(range(s.number({ min: 0, minExclusive: true, max: 1 }), 'scale')),
      ratio: s.optional(range(s.number({ min: 0, minExclusive: true, max: 100 }), 'ratio')),
      value: s.optional(s.union<number | 'random'>(s.number({ min: -1e6, max: 1e6 }), s.enum(['random'] as const))),
    }),
  ),
  mix: s.optional(
    s.refine(
      s.object<MixOptions>({
        mixup: s.optional(s.number({ min: 0, max: 100 })),
        cutmix: s.optional(s.number({ min: 0, max: 100 })),
        prob: s.optional(s.number({ min: 0, max: 1 })),
        switchProb: s.optional(s.number({ min: 0, max: 1 })),
        mode: s.optional(s.enum(['batch'] as const)),
        correctLam: s.optional(s.boolean()),
      }),
      (m) => ((m.mixup ?? 0) > 0 || (m.cutmix ?? 0) > 0 ? undefined : 'give mixup or cutmix an alpha above 0'),
    ),
  ),
});

export const augmentFields: Fields = {
  augment: s.optional(augmentSchema),
  normalize: s.optional(normalizeSchema),
};

/** The size the network trains at: random-resized-crop's, else the images'. */
export function trainingSize(o: AugmentGroupOptions, imageShape: number[]): [number, number] {
  const size = o.augment?.randomResizedCrop?.size;
  return size === undefined ? [imageShape[1], imageShape[2]] : typeof size === 'number' ? [size, size] : size;
}

/** The preprocessing a trained model records (statistics from `data`), and the native augmentation. */
export async function augmentConfig(
  o: AugmentGroupOptions,
  data: Dataset | StreamingDataset,
  channelsLast: boolean,
): Promise<{ preprocessing: Preprocessing; augment: NativeAugment }> {
  const rrc = o.augment?.randomResizedCrop;
  const [h, w] = trainingSize(o, data.shape);
  const preprocessing = await resolvePreprocessing(o.normalize ?? D.normalize, data);
  const evalSize = rrc?.evalSize;
  const [eh, ew] = evalSize === undefined ? [h, w] : typeof evalSize === 'number' ? [evalSize, evalSize] : evalSize;
  if (rrc && (eh !== data.shape[1] || ew !== data.shape[2])) preprocessing.size = [eh, ew];
  preprocessing.inputSize = [eh, ew];
  const augment: NativeAugment = {
    ...nativeNormalization(preprocessing),
    pad: o.augment?.padCrop ?? D.augment.padCrop,
    flip: o.augment?.flip ?? D.augment.flip,
    randomResizedCrop: rrc !== undefined,
    scaleMin: rrc?.scale?.[0] ?? D.randomResizedCrop.scale[0],
    scaleMax: rrc?.scale?.[1] ?? D.randomResizedCrop.scale[1],
    ratioMin: rrc?.ratio?.[0] ?? D.randomResizedCrop.ratio[0],
    ratioMax: rrc?.ratio?.[1] ?? D.randomResizedCrop.ratio[1],
    outHeight: rrc ? h : 0,
    outWidth: rrc ? w : 0,
    evalHeight: rrc?.evalSize !== undefined ? eh : 0,
    evalWidth: rrc?.evalSize !== undefined ? ew : 0,
    autoAugment: autoAugmentConfig(o.augment ?? {}, data),
    erase: eraseConfig(o.augment?.randomErasing),
    channelsLast,
  };
  return { preprocessing, augment };
}

/** TrivialAugmentWide or RandAugment as C++ runs them; checks they fit the data. */
function autoAugmentConfig(a: AugmentOptions, data: Dataset | StreamingDataset): NativeAugment['autoAugment'] {
  const ta = a.trivialAugment === true ? {} : a.trivialAugment || undefined;
  const ra = a.randAugment === true ? {} : a.randAugment || undefined;
  if (!ta && !ra) return RANDOM_AUGMENT_OFF.autoAugment;
  const key = ta ? 'trivialAugment' : 'randAugment',
    field = `augment.${key}`;
  if (ta && ra)
    throw new ValidationError(
      'augment.randAugment',
      a.randAugment,
      'no randAugment beside trivialAugment (one policy)',
    );
  if (data.shape[0] !== 1 && data.shape[0] !== 3)
    throw new ValidationError(
      field,
      a[key],
      'images of 1 or 3 channels',
      `${field}: the policy's operations take 1 or 3 channels (as torchvision's); these images have ${data.shape[0]}`,
    );
  if ('dtype' in data && data.dtype !== 'uint8')
    throw new ValidationError(
      field,
      a[key],
      'uint8 images',
      `${field}: the policy's operations are defined on uint8 pixels (as torchvision's); this dataset holds ${data.dtype}`,
    );
  if (ta)
    return {
      kind: 'trivial-augment-wide',
      numOps: 1,
      magnitude: 0,
      numBins: ta.numMagnitudeBins ?? D.trivialAugment.numMagnitudeBins,
    };
  return {
    kind: 'rand-augment',
    numOps: ra!.numOps ?? D.randAugment.numOps,
    magnitude: ra!.magnitude ?? D.randAugment.magnitude,
    numBins: ra!.numMagnitudeBins ?? D.randAugment.numMagnitudeBins,
  };
}

function eraseConfig(e: AugmentOptions['randomErasing']): NativeAugment['erase'] {
  if (!e || (e.prob ?? D.randomErasing.prob) === 0) return RANDOM_AUGMENT_OFF.erase;
  const d = D.randomErasing;
  const value = e.value ?? d.value;
  return {
    prob: e.prob ?? d.prob,
    scaleMin: e.scale?.[0] ?? d.scale[0],
    scaleMax: e.scale?.[1] ?? d.scale[1],
    ratioMin: e.ratio?.[0] ?? d.ratio[0],
    ratioMax: e.ratio?.[1] ?? d.ratio[1],
    randomValue: value === 'random',
    value: value === 'random' ? 0 : value,
  };
}

/** Mixup / CutMix for the native loop (both alphas 0: off). */
export function mixConfig(o: AugmentGroupOptions): Pick<NativeTrainConfig, 'mix'> {
  const m = o.augment?.mix;
  return {
    mix: {
      mixupAlpha: m?.mixup ?? D.mix.mixup,
      cutmixAlpha: m?.cutmix ?? D.mix.cutmix,
      prob: m?.prob ?? D.mix.prob,
      switchProb: m?.switchProb ?? D.mix.switchProb,
      correctLam: m?.correctLam ?? D.mix.correctLam,
    },
  };
}
