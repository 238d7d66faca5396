// What training does to a batch, shown: images of a Dataset prepared exactly as the native loop prepares a
// training batch (crop, flip, TrivialAugment / RandAugment, normalisation, random erasing), with what each image
// drew. For looking at an augmentation before a long run, and the tests' way to hold the operations against
// torchvision's on the same images and draws.
import { Dataset } from '../datasets/dataset';
import { ValidationError } from '../errors';
import { s } from '../validate';
import { AugmentGroupOptions, augmentConfig, augmentFields } from './options/augment';

/** Which images of the dataset, and the seed of their draws. */
export interface AugmentPreviewOptions {
  /** The first image (default 0). */
  start?: number;
  /** How many images (default 16). */
  count?: number;
  /** The draw's seed (default 0): one seed, one batch of draws. */
  seed?: number;
}

/** One image's draws. */
export interface AugmentDraw {
  /** The policy's operations in order, with the signed magnitude torchvision's `_apply_op` receives (timm's
   *  RandAugment: the argument its level function gives the operation, whether it applied, and the filter of a
   *  geometric one). */
  ops: { name: string; magnitude: number; applied?: boolean; resample?: 'bilinear' | 'bicubic' }[];
  /** Random erasing's rectangle, when one was erased. */
  erased?: { top: number; left: number; height: number; width: number };
}

/** Augmented images and what each drew. */
export interface AugmentPreview {
  /** N×C×H×W float32, normalised as the network receives it. */
  images: Float32Array;
  shape: [number, number, number, number];
  draws: AugmentDraw[];
}

const previewSchema = s.object<AugmentGroupOptions & AugmentPreviewOptions>({
  ...augmentFields,
  start: { schema: s.integer({ min: 0 }), optional: true },
  count: { schema: s.integer({ min: 1, max: 65536 }), optional: true },
  seed: { schema: s.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), optional: true },
});

/** Images of `data` augmented as `train(model, data, options)` would augment them, and their draws. */
export async function previewAugmentation(
  data: Dataset,
  options: AugmentGroupOptions & AugmentPreviewOptions = {},
): Promise<AugmentPreview> {
  if (!(data instanceof Dataset)) throw new ValidationError('data', data, 'a Dataset');
  const o = previewSchema.parse(options, '');
  const start = o.start ?? 0;
  if (start >= data.length) throw new ValidationError('start', start, `below the dataset's ${data.length} images`);
  const count = o.count ?? Math.min(16, data.length - start);
  if (start + count > data.length)
    throw new ValidationError(
      'count',
      o.count,
      `at most ${data.length - start} (the dataset has ${data.length} images)`,
    );
  const { augment } = await augmentConfig(o, data, false);
  const out = await data.handle().augment(start, count, augment, o.seed ?? 0);
  const steps = out.ops ? out.ops.length / count : 0;
  const draws: AugmentDraw[] = [];
  for (let i = 0; i < count; i++) {
    const ops: AugmentDraw['ops'] = [];
    for (let k = 0; k < steps; k++) {
      const j = i * steps + k;
      ops.push({
        name: out.opNames![Number(out.ops![j])],
        magnitude: out.magnitudes![j],
        ...(out.applied ? { applied: out.applied[j] === 1 } : {}),
        ...(out.bicubic ? { resample: out.bicubic[j] === 1 ? ('bicubic' as const) : ('bilinear' as const) } : {}),
      });
    }
    const draw: AugmentDraw = { ops };
    const box = out.eraseBoxes?.subarray(i * 4, i * 4 + 4);
    if (box && box[2] > 0n)
      draw.erased = { top: Number(box[0]), left: Number(box[1]), height: Number(box[2]), width: Number(box[3]) };
    draws.push(draw);
  }
  return { images: out.images, shape: out.shape as AugmentPreview['shape'], draws };
}
