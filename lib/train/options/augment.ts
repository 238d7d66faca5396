// Training-time augmentation and input normalisation: what the native thread does to each batch before the
// forward (native/data/augment.cpp), and the preprocessing the model records for prediction.
import type { Dataset } from '../../datasets/dataset';
import type { StreamingDataset } from '../../datasets/image-folder';
import type { NativeAugment, NativeTrainConfig } from '../../native';
import {
  NormalizeOption,
  Preprocessing,
  nativeNormalization,
  normalizeSchema,
  resolvePreprocessing,
} from '../../preprocess';
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
  if (rrc && (h !== data.shape[1] || w !== data.shape[2])) preprocessing.size = [h, w];
  preprocessing.inputSize = [h, w];
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
    channelsLast,
  };
  return { preprocessing, augment };
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
