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
  /** timm's RandAugment (`--aa rand-m9-mstd0.5-inc1`): its config string, or the same as fields. Pillow's
   *  operations on the uint8 pixels after the crop and flip; one policy of the three. */
  timmRandAugment?: string | TimmRandAugmentOptions;
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

/** timm's RandAugment (timm.data.rand_augment_transform), by the sections of its config string. */
export interface TimmRandAugmentOptions {
  /** m: the magnitude, of 10 (default 10, timm's). */
  magnitude?: number;
  /** n: operations drawn per image, with replacement (default 2). */
  numOps?: number;
  /** mstd: the standard deviation of the magnitude's Gaussian noise, per operation (default 0); above 100,
   *  uniform in [0, magnitude] (as timm). The noisy magnitude is clipped to [0, 10]. */
  magnitudeStd?: number;
  /** p: each drawn operation applies with this probability (default 0.5). */
  prob?: number;
  /** inc1: timm's increasing operations (PosterizeIncreasing, SolarizeIncreasing, the Increasing enhancements;
   *  default false). */
  increasing?: boolean;
  /** Resampling of Rotate, Shear and Translate (default 'random': bilinear or bicubic per operation, as timm's
   *  train.py default --train-interpolation). */
  interpolation?: 'bilinear' | 'bicubic' | 'random';
  /** Their fill per channel, 0-255 (default: timm's img_mean, round(255 × the per-channel normalisation's mean);
   *  128 per channel with another normalisation). */
  fill?: number[];
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
  // timm's (rand_augment_transform, AugmentOp, _FILL).
  timmRandAugment: {
    magnitude: 10,
    numOps: 2,
    magnitudeStd: 0,
    prob: 0.5,
    increasing: false,
    interpolation: 'random' as const,
    fill: 128,
  },
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
  timmRandAugment: s.optional(
    s.union<string | TimmRandAugmentOptions>(
      s.string(),
      s.object<TimmRandAugmentOptions>({
        magnitude: s.optional(s.integer({ min: 0, max: 10 })),
        numOps: s.optional(s.integer({ min: 1, max: 16 })),
        magnitudeStd: s.optional(s.number({ min: 0, max: 1e9 })),
        prob: s.optional(s.number({ min: 0, max: 1 })),
        increasing: s.optional(s.boolean()),
        interpolation: s.optional(s.enum(['bilinear', 'bicubic', 'random'] as const)),
        fill: s.optional(s.array(s.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 3 })),
      }),
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
    autoAugment: autoAugmentConfig(o.augment ?? {}, data, preprocessing),
    erase: eraseConfig(o.augment?.randomErasing),
    channelsLast,
  };
  return { preprocessing, augment };
}

/** The sections of timm's RandAugment config string (rand_augment_transform): 'rand-m9-n2-mstd0.5-p0.5-inc1'. */
export function parseTimmRandAugment(config: string): TimmRandAugmentOptions {
  const field = 'augment.timmRandAugment';
  const [head, ...sections] = config.split('-');
  if (head !== 'rand')
    throw new ValidationError(
      field,
      config,
      "timm's RandAugment string, starting 'rand' (e.g. 'rand-m9-mstd0.5-inc1')",
    );
  const o: TimmRandAugmentOptions = {};
  for (const section of sections) {
    const m = /^([a-z]+)(\d[\d.]*)$/.exec(section);
    const value = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(value))
      throw new ValidationError(field, config, `sections m, n, p, mstd, inc with a number (not '${section}')`);
    switch (m[1]) {
      case 'm':
        o.magnitude = Math.trunc(value);
        break;
      case 'n':
        o.numOps = Math.trunc(value);
        break;
      case 'p':
        o.prob = value;
        break;
      case 'mstd':
        o.magnitudeStd = value;
        break;
      case 'inc':
        o.increasing = Math.trunc(value) !== 0;
        break;
      default:
        throw new ValidationError(
          field,
          config,
          'sections m, n, p, mstd, inc',
          `${field}: section '${section}' is not supported (timm's mmax and t<weights> are not; m, n, p, mstd and inc are)`,
        );
    }
  }
  return o;
}

/** TrivialAugmentWide, RandAugment or timm's RandAugment as C++ runs them; checks they fit the data. */
function autoAugmentConfig(
  a: AugmentOptions,
  data: Dataset | StreamingDataset,
  preprocessing: Preprocessing,
): NativeAugment['autoAugment'] {
  const ta = a.trivialAugment === true ? {} : a.trivialAugment || undefined;
  const ra = a.randAugment === true ? {} : a.randAugment || undefined;
  const timm = a.timmRandAugment;
  const chosen = (['trivialAugment', 'randAugment', 'timmRandAugment'] as const).filter(
    (k) => (k === 'trivialAugment' ? ta : k === 'randAugment' ? ra : timm) !== undefined,
  );
  if (chosen.length === 0) return RANDOM_AUGMENT_OFF.autoAugment;
  const key = chosen[0],
    field = `augment.${key}`;
  if (chosen.length > 1)
    throw new ValidationError(`augment.${chosen[1]}`, a[chosen[1]], `no ${chosen[1]} beside ${chosen[0]} (one policy)`);
  const channels = data.shape[0];
  if (channels !== 1 && channels !== 3)
    throw new ValidationError(
      field,
      a[key],
      'images of 1 or 3 channels',
      `${field}: the policy's operations take 1 or 3 channels (as torchvision's and Pillow's); these images have ${channels}`,
    );
  if ('dtype' in data && data.dtype !== 'uint8')
    throw new ValidationError(
      field,
      a[key],
      'uint8 images',
      `${field}: the policy's operations are defined on uint8 pixels (as torchvision's and Pillow's); this dataset holds ${data.dtype}`,
    );
  const off = RANDOM_AUGMENT_OFF.autoAugment;
  if (ta)
    return {
      ...off,
      kind: 'trivial-augment-wide',
      numOps: 1,
      numBins: ta.numMagnitudeBins ?? D.trivialAugment.numMagnitudeBins,
    };
  if (ra)
    return {
      ...off,
      kind: 'rand-augment',
      numOps: ra.numOps ?? D.randAugment.numOps,
      magnitude: ra.magnitude ?? D.randAugment.magnitude,
      numBins: ra.numMagnitudeBins ?? D.randAugment.numMagnitudeBins,
    };
  // The string's sections are checked as the fields are.
  const t =
    typeof timm === 'string'
      ? (augmentSchema.parse({ timmRandAugment: parseTimmRandAugment(timm) }, 'augment')
          .timmRandAugment as TimmRandAugmentOptions)
      : timm!;
  const T = D.timmRandAugment;
  const mean = preprocessing.normalize === 'per-channel' ? preprocessing.mean : undefined;
  const fill =
    t.fill ??
    Array.from({ length: channels }, (_, c) => (mean ? Math.min(255, Math.max(0, Math.round(255 * mean[c]))) : T.fill));
  if (fill.length !== channels)
    throw new ValidationError(`${field}.fill`, t.fill, `${channels} values, one per channel`);
  const std = t.magnitudeStd ?? T.magnitudeStd;
  return {
    kind: 'timm-rand-augment',
    numOps: t.numOps ?? T.numOps,
    magnitude: t.magnitude ?? T.magnitude,
    numBins: 0,
    magnitudeStd: std > 100 ? Infinity : std,
    prob: t.prob ?? T.prob,
    increasing: t.increasing ?? T.increasing,
    resample: t.interpolation ?? T.interpolation,
    fill,
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
