// Image folders: one sub-folder per class holding JPEG, PNG or WebP files. Small folders load into memory
// (imageFolder); folders larger than memory stream batches to the trainer (streamImageFolder).
import * as path from 'path';

import { DatasetError } from '../../errors';
import { Dataset, fromArrays } from '../dataset';
import { decodeAll } from './decode';
import { ImageFolderOptions, resolveFolderOptions } from './options';
import { scanImageFolder } from './scan';
import { StreamingDataset } from './stream';

export { decodeImageFile } from './decode';
export type { ImageFolderOptions } from './options';
export { IMAGE_EXTENSIONS, scanImageFolder } from './scan';
export type { ImageFile } from './scan';
export { StreamingDataset } from './stream';
export type { StreamParams } from './stream';

/** An image folder decoded into memory. */
export async function imageFolder(options: ImageFolderOptions): Promise<Dataset> {
  const o = resolveFolderOptions(options);
  const { classNames, files } = await scanImageFolder(o.root, o.classNames);
  const { images, labels, skipped } = await decodeAll(files, o);
  if (labels.length === 0) throw new DatasetError(o.root, `no image could be decoded (${skipped.length} skipped)`);
  const dataset = await fromArrays(
    {
      images,
      shape: [labels.length, o.channels, o.height, o.width],
      labels,
      numClasses: classNames.length,
      classNames,
      name: path.basename(o.root),
    },
    o.root,
  );
  dataset.skipped = skipped;
  return dataset;
}

/** An image folder too large for memory: decoded batch by batch while the trainer runs. */
export async function streamImageFolder(options: ImageFolderOptions): Promise<StreamingDataset> {
  const o = resolveFolderOptions(options);
  const { classNames, files } = await scanImageFolder(o.root, o.classNames);
  return new StreamingDataset(files, classNames, o, path.basename(o.root));
}
