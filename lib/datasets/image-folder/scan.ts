// An image folder's layout: one sub-folder per class (sorted names give the labels) holding JPEG, PNG or
// WebP files.
import { promises as fsp } from 'fs';
import * as path from 'path';

import { DatasetError } from '../../errors';

/** The file extensions an image folder reads. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

/** One image of a folder and its label. */
export interface ImageFile {
  /** Its path. */
  file: string;
  /** Its class, by the folder it is in. */
  label: number;
}

/** Lists the classes (sorted sub-folders) and their image files. */
export async function scanImageFolder(
  root: string,
  classNames?: string[],
): Promise<{
  /** The class names (the subfolders, sorted). */
  classNames: string[];
  /** Every image with its label. */
  files: ImageFile[];
}> {
  let entries;
  try {
    entries = await fsp.readdir(root, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(
      root,
      code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : (e as Error).message,
    );
  }
  const folders = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (folders.length === 0)
    throw new DatasetError(root, 'no class sub-folders: an image folder holds one sub-folder of images per class');
  const names = classNames ?? folders;
  for (const name of names)
    if (!folders.includes(name)) throw new DatasetError(path.join(root, name), 'class folder missing');
  const files: ImageFile[] = [];
  for (let label = 0; label < names.length; label++) {
    const dir = path.join(root, names[label]);
    const images = (await fsp.readdir(dir, { withFileTypes: true }))
      .filter(
        (e) => e.isFile() && !e.name.startsWith('.') && IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase()),
      )
      .map((e) => e.name)
      .sort();
    if (images.length === 0)
      throw new DatasetError(dir, `empty class folder: no ${IMAGE_EXTENSIONS.join(', ')} images`);
    for (const f of images) files.push({ file: path.join(dir, f), label });
  }
  return { classNames: names, files };
}
