// MNIST-style folders of IDX files: Fashion-MNIST (Debian's dataset-fashion-mnist by default), MNIST, KMNIST.
import { promises as fsp } from 'fs';
import * as path from 'path';

import { DatasetError, ValidationError } from '../errors';
import { s } from '../validate';
import { Dataset, fromArrays } from './dataset';
import { readIdxImages, readIdxLabels } from './idx';
import { useStatsCache } from './stats-cache';

/** Where Debian's dataset-fashion-mnist package puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
/** Fashion-MNIST's ten class names, in label order. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
/** MNIST's class names: the digits. */
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** Where an IDX folder (MNIST's format) is, and which split. */
export interface IdxFolderOptions {
  /** Folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. */
  path?: string;
  /** 'train' (default) or 'test'. */
  split?: 'train' | 'test';
  /** Names of the classes. */
  classNames?: string[];
  /** The dataset's name. */
  name?: string;
}

async function findFile(dir: string, base: string): Promise<string> {
  for (const candidate of [`${base}.gz`, base]) {
    const file = path.join(dir, candidate);
    try {
      await fsp.access(file);
      return file;
    } catch {
      // next
    }
  }
  try {
    await fsp.access(dir);
  } catch {
    throw new DatasetError(
      dir,
      'no such folder' + (dir === FASHION_MNIST_DIR ? " (install Debian's dataset-fashion-mnist, or pass path)" : ''),
    );
  }
  throw new DatasetError(path.join(dir, `${base}.gz`), `missing (looked for ${base}.gz and ${base})`);
}

const optionsSchema = s.object<IdxFolderOptions>({
  path: s.optional(s.string()),
  split: s.optional(s.enum(['train', 'test'] as const)),
  classNames: s.optional(s.array(s.string(), { minLength: 1 })),
  name: s.optional(s.string()),
});

/** The options object (a bare path is the usual slip: it would otherwise load the default folder). */
function parseOptions<T extends IdxFolderOptions>(options: T, reader: string): T {
  if (typeof options === 'string')
    throw new ValidationError(
      'options',
      options,
      'an object',
      `${reader}(options): expected an object such as { path: ${JSON.stringify(options)} }, got a string`,
    );
  return optionsSchema.parse(options ?? {}, 'options') as T;
}

/** Reads one split of an MNIST-layout IDX folder into native memory. */
export async function idxFolder(options: IdxFolderOptions & { path: string }): Promise<Dataset> {
  parseOptions(options, 'idxFolder');
  s.string().parse(options.path, 'path');
  const split = options.split ?? 'train';
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesFile = await findFile(options.path, `${prefix}-images-idx3-ubyte`);
  const labelsFile = await findFile(options.path, `${prefix}-labels-idx1-ubyte`);
  const [{ images, shape }, labels] = await Promise.all([readIdxImages(imagesFile), readIdxLabels(labelsFile)]);
  if (labels.length !== shape[0])
    throw new DatasetError(
      labelsFile,
      `${labels.length} labels for ${shape[0]} images in ${path.basename(imagesFile)}`,
    );
  const numClasses = options.classNames?.length ?? 10;
  for (let i = 0; i < labels.length; i++)
    if (labels[i] < 0 || labels[i] >= numClasses)
      throw new DatasetError(labelsFile, `label ${labels[i]} of image ${i} is out of range for ${numClasses} classes`);
  const name = `${options.name ?? path.basename(options.path)} ${split}`;
  const dataset = await fromArrays(
    { images, shape, labels, numClasses, classNames: options.classNames, name },
    imagesFile,
  );
  await useStatsCache(imagesFile, dataset);
  return dataset;
}

/** Fashion-MNIST: 60,000 training and 10,000 test images of 28x28, 10 classes. */
export async function fashionMnist(options: IdxFolderOptions = {}): Promise<Dataset> {
  parseOptions(options, 'fashionMnist');
  return idxFolder({
    ...options,
    path: options.path ?? FASHION_MNIST_DIR,
    classNames: options.classNames ?? FASHION_MNIST_CLASSES,
    name: options.name ?? 'fashion-mnist',
  });
}

/** MNIST (or KMNIST, any MNIST-layout folder): pass its path. */
export async function mnist(options: IdxFolderOptions & { path: string }): Promise<Dataset> {
  parseOptions(options, 'mnist');
  return idxFolder({ ...options, classNames: options.classNames ?? MNIST_CLASSES, name: options.name ?? 'mnist' });
}
