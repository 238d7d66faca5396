// From image bytes to the input tensor a model was trained on: decode and resize (sharp), then the model's
// own normalisation. Model, InferenceModel, the batcher and the server all prepare images here.
import { ValidationError } from '../errors';
import { ImageSource, decodeImage } from '../images';
import { Preprocessing, normalizeImages } from '../preprocess';
import { Tensor } from '../tensor';
import { s } from '../validate';

/** What preparing an image needs to know about the model. */
export interface ImageModelInfo {
  /** Channels the model takes. */
  inChannels: number;
  /** The normalisation it was trained with. */
  preprocessing?: Preprocessing;
  /** The [height, width] images are resized to. */
  inputSize: [number, number];
}

/** Bounds on images given to predictImage(): the most pixels decoded. */
export interface ImageOptions {
  /** 'cover' (default, as the image-folder datasets): resize the shorter side, centre-crop; 'fill': stretch. */
  fit?: 'cover' | 'fill';
  /** Inputs with more pixels are refused before decoding (default 100 million). */
  maxPixels?: number;
}

export const imageOptionsSchema = {
  fit: s.optional(s.enum(['cover', 'fill'] as const)),
  maxPixels: s.optional(s.integer({ min: 1, max: 2 ** 40 })),
};

/** The size a model takes images at: its training size, else its per-pixel mean's, else the family default. */
export function trainedImageSize(p: Preprocessing | undefined): [number, number] | undefined {
  if (p?.size) return p.size;
  if (p?.inputSize) return p.inputSize;
  if (p?.normalize === 'per-pixel' && p.meanShape?.length === 3) return [p.meanShape[1], p.meanShape[2]];
  return undefined;
}

/** Decodes `sources` (concurrently, on libuv's pool) into one normalised batch [N, C, H, W]. */
export async function imagesToBatch(
  sources: readonly ImageSource[],
  model: ImageModelInfo,
  options: ImageOptions = {},
  names: (i: number) => string = (i) => `images[${i}]`,
): Promise<Tensor> {
  if (!Array.isArray(sources) || sources.length === 0)
    throw new ValidationError('images', sources, 'a non-empty array of images');
  const [height, width] = model.inputSize;
  const c = model.inChannels;
  if (c !== 1 && c !== 3)
    throw new ValidationError('model', c, 'a model of 1 or 3 input channels', `images: the model takes ${c} channels`);
  const decoded = await Promise.all(
    sources.map((src, i) =>
      decodeImage(src, { height, width, channels: c, fit: options.fit, maxPixels: options.maxPixels, name: names(i) }),
    ),
  );
  const plane = c * height * width;
  const pixels = new Uint8Array(decoded.length * plane);
  decoded.forEach((d, i) => pixels.set(d, i * plane));
  const shape = [decoded.length, c, height, width];
  return { data: normalizeImages(pixels, shape, model.preprocessing), shape };
}
