// Decoding with sharp (libvips: fast, maintained, prebuilt npm binaries, decoding on libuv's thread pool):
// resized and centre-cropped to the configured size, grayscale or RGB, planar C×H×W uint8.
import { DatasetError } from '../../errors';
import type { FolderSettings } from './options';
import type { ImageFile } from './scan';

/** Decodes one image to C×H×W uint8 at the configured size. */
export async function decodeImage(
  file: string,
  o: Pick<FolderSettings, 'height' | 'width' | 'channels' | 'fit'>,
): Promise<Uint8Array> {
  let result;
  try {
    const sharp = (await import('sharp')).default; // loaded on first use: most runs never decode images
    let p = sharp(file, { failOn: 'warning' }).rotate().resize(o.width, o.height, { fit: o.fit, position: 'centre' });
    p = o.channels === 1 ? p.greyscale() : p.toColourspace('srgb');
    result = await p.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new DatasetError(file, `cannot decode the image (${(e as Error).message.split('\n')[0]})`);
  }
  const { data, info } = result;
  const hw = o.height * o.width;
  if (info.width !== o.width || info.height !== o.height)
    throw new DatasetError(file, `decoded to ${info.width}x${info.height}, expected ${o.width}x${o.height}`);
  const out = new Uint8Array(o.channels * hw);
  if (info.channels === o.channels) {
    // interleaved HWC -> planar CHW
    for (let c = 0; c < o.channels; c++) for (let i = 0; i < hw; i++) out[c * hw + i] = data[i * info.channels + c];
  } else if (info.channels === 1) {
    for (let c = 0; c < o.channels; c++) out.set(data.subarray(0, hw), c * hw);
  } else {
    throw new DatasetError(file, `decoded to ${info.channels} channels, expected ${o.channels}`);
  }
  return out;
}

/**
 * Runs `work` over items with at most `limit` in flight, keeping the order of results. On a failure no new item
 * starts; the items in flight finish and the failure of the earliest item is thrown, so the error names the same
 * file on every run whatever order the decodes finish in.
 */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failedAt = Infinity;
  let failure: unknown;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && failedAt === Infinity) {
      const i = next++;
      try {
        out[i] = await work(items[i], i);
      } catch (error) {
        if (i < failedAt) [failedAt, failure] = [i, error];
      }
    }
  });
  await Promise.all(workers);
  if (failedAt !== Infinity) throw failure;
  return out;
}

/** Decodes files; bad ones fail (with the path) or are skipped (warned, counted). */
export async function decodeAll(files: ImageFile[], o: FolderSettings) {
  const size = o.channels * o.height * o.width;
  const decoded = await mapLimited(files, o.concurrency, async (f) => {
    try {
      return await decodeImage(f.file, o);
    } catch (e) {
      if (o.onBadImage === 'fail') throw e;
      o.warn(`skipping ${(e as Error).message}`);
      return undefined;
    }
  });
  const kept = decoded.map((d, i) => (d ? i : -1)).filter((i) => i >= 0);
  const images = new Uint8Array(kept.length * size);
  kept.forEach((i, k) => images.set(decoded[i]!, k * size));
  return {
    images,
    labels: kept.map((i) => files[i].label),
    skipped: files.filter((_, i) => !decoded[i]).map((f) => f.file),
  };
}
