// The one image decoder, shared by the image-folder datasets, predictImage and the server: sharp (libvips:
// fast, maintained, prebuilt npm binaries, decoding on libuv's thread pool) turns a file, encoded bytes or raw
// pixels into planar C×H×W uint8 at the size the model takes.
import { ImageError, ValidationError } from './errors';
import { isTypedArray } from './tensor';

/** Raw interleaved pixels (H×W×C uint8, row-major), as a camera, a canvas or sharp's `raw()` gives them. */
export interface RawImage {
  /** Interleaved pixels, row by row. */
  data: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 1 (grayscale), 3 (RGB) or 4 (RGBA: alpha is dropped). */
  channels: 1 | 3 | 4;
}

/** What can be decoded: a file path, the bytes of a JPEG/PNG/WebP/GIF/TIFF/AVIF file, or raw pixels. */
export type ImageSource = string | Uint8Array | RawImage;

/** How decodeImage() turns an image into pixels: size, channels, fit, and a bound on pixels. */
export interface DecodeOptions {
  /** Output height. */
  height: number;
  /** Output width. */
  width: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
  /** 'cover' (default): resize the shorter side, centre-crop the rest; 'fill': stretch. */
  fit?: 'cover' | 'fill';
  /** With 'cover': the side the shorter edge is resized to before the centre crop to height×width (torchvision's
   *  `Resize(232)` + `CenterCrop(224)`: resize 232 for a 224 output); default the output's shorter side. */
  resize?: number;
  /** Refuse inputs with more pixels than this before decoding them (default 100 million, sharp's own is 268M). */
  maxPixels?: number;
  /** Names the input in errors (default: the path, or "image"). */
  name?: string;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

/** Python's round(): halves to even, as torchvision's CenterCrop rounds its offsets. */
const roundHalfEven = (x: number) => (Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x));

/** The box the image is resized to ('cover') and where the output is cut from it: with `resize`, the shorter
 *  edge at `resize` and the output centred as torchvision's CenterCrop centres it. */
function coverBox(o: { width: number; height: number; fit: 'cover' | 'fill'; resize?: number }) {
  if (o.resize === undefined || o.fit !== 'cover') return { width: o.width, height: o.height, left: 0, top: 0 };
  const shorter = Math.min(o.width, o.height);
  const width = Math.round((o.width * o.resize) / shorter),
    height = Math.round((o.height * o.resize) / shorter);
  return { width, height, left: roundHalfEven((width - o.width) / 2), top: roundHalfEven((height - o.height) / 2) };
}

/** Decodes one image to planar C×H×W uint8 at the requested size; an input that is not an image, or is too
 *  large, throws ImageError naming it. */
export async function decodeImage(source: ImageSource, options: DecodeOptions): Promise<Uint8Array> {
  const o = { fit: 'cover' as const, maxPixels: DEFAULT_MAX_PIXELS, ...options };
  const name = o.name ?? (typeof source === 'string' ? source : 'image');
  const input = sharpInput(source, name);
  let result;
  try {
    const sharp = (await import('sharp')).default; // loaded on first use: most runs never decode images
    const box = coverBox(o);
    let p = sharp(input.data, { failOn: 'warning', limitInputPixels: o.maxPixels, ...input.options })
      .rotate()
      .resize(box.width, box.height, { fit: o.fit, position: 'centre' });
    if (box.width !== o.width || box.height !== o.height)
      p = p.extract({ left: box.left, top: box.top, width: o.width, height: o.height });
    p = o.channels === 1 ? p.greyscale() : p.toColourspace('srgb');
    result = await p.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    const reason = (e as Error).message.split('\n')[0];
    const tooLarge = /pixel limit/i.test(reason);
    throw new ImageError(
      name,
      tooLarge ? `has more than ${o.maxPixels} pixels (${reason})` : `cannot decode the image (${reason})`,
      tooLarge ? 'too-large' : 'undecodable',
    );
  }
  const { data, info } = result;
  const hw = o.height * o.width;
  if (info.width !== o.width || info.height !== o.height)
    throw new ImageError(name, `decoded to ${info.width}x${info.height}, expected ${o.width}x${o.height}`);
  const out = new Uint8Array(o.channels * hw);
  if (info.channels === o.channels) {
    // interleaved HWC -> planar CHW
    for (let c = 0; c < o.channels; c++) for (let i = 0; i < hw; i++) out[c * hw + i] = data[i * info.channels + c];
  } else if (info.channels === 1) {
    for (let c = 0; c < o.channels; c++) out.set(data.subarray(0, hw), c * hw);
  } else {
    throw new ImageError(name, `decoded to ${info.channels} channels, expected ${o.channels}`);
  }
  return out;
}

function sharpInput(source: ImageSource, name: string): { data: string | Buffer; options: object } {
  if (typeof source === 'string') return { data: source, options: {} };
  if (isTypedArray(source, 'Uint8Array')) {
    if (source.length === 0) throw new ImageError(name, 'is empty (0 bytes)', 'undecodable');
    return { data: Buffer.from(source.buffer, source.byteOffset, source.length), options: {} };
  }
  if (source === null || typeof source !== 'object')
    throw new ValidationError(name, source, 'a file path, a Buffer/Uint8Array of image bytes, or raw pixels');
  const { data, width, height, channels } = source as Partial<RawImage>;
  const field = (k: string) => `${name}.${k}`;
  if (!isTypedArray(data, 'Uint8Array')) throw new ValidationError(field('data'), data, 'a Uint8Array of pixels');
  for (const [k, v] of [
    ['width', width],
    ['height', height],
  ] as const)
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535)
      throw new ValidationError(field(k), v, 'an integer from 1 to 65535');
  if (channels !== 1 && channels !== 3 && channels !== 4)
    throw new ValidationError(field('channels'), channels, '1, 3 or 4');
  const expected = width! * height! * channels;
  if (data.length !== expected)
    throw new ImageError(
      name,
      `holds ${data.length} bytes, but ${width}x${height}x${channels} raw pixels need ${expected}`,
      'wrong-shape',
    );
  return {
    data: Buffer.from(data.buffer, data.byteOffset, data.length),
    options: { raw: { width: width!, height: height!, channels } },
  };
}
