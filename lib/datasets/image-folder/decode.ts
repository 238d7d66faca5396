// Decoding an image folder's files with the package's one decoder; a bad file is a DatasetError naming it.
import { DatasetError, ImageError } from '../../errors';
import { decodeImage as decode } from '../../images';
import type { FolderSettings } from './options';
import type { ImageFile } from './scan';

/** Decodes one image file of a folder to C×H×W uint8 at the configured size; a bad file is a DatasetError naming it. */
export async function decodeImageFile(
  file: string,
  o: Pick<FolderSettings, 'height' | 'width' | 'channels' | 'fit' | 'resize'>,
): Promise<Uint8Array> {
  try {
    return await decode(file, { height: o.height, width: o.width, channels: o.channels, fit: o.fit, resize: o.resize });
  } catch (e) {
    if (e instanceof ImageError) throw new DatasetError(file, e.message.slice(file.length + 2));
    throw e;
  }
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
      return await decodeImageFile(f.file, o);
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
