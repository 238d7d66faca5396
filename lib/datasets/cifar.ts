// CIFAR-10 and CIFAR-100, binary versions. Records are a label byte (CIFAR-100: coarse then fine) and
// 3072 pixels: the red plane, then green, then blue, each 32x32 row-major, which is already C×H×W.
import { promises as fsp } from 'fs';
import * as path from 'path';

import { DatasetError } from '../errors';
import { s } from '../validate';
import { Dataset, fromArrays } from './dataset';
import { useStatsCache } from './stats-cache';

const PIXELS = 3 * 32 * 32;

async function readFile(file: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(file, code === 'ENOENT' ? 'missing' : (e as Error).message);
  }
}

async function readNames(file: string, expected: number): Promise<string[]> {
  const names = (await readFile(file))
    .toString('utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (names.length !== expected) throw new DatasetError(file, `${names.length} class names, expected ${expected}`);
  return names;
}

/** Parses CIFAR records: `labelBytes` leading label bytes per record, `labelIndex` the one to use. */
export function parseCifarRecords(
  buffer: Uint8Array,
  file: string,
  labelBytes: number,
  labelIndex: number,
  numClasses: number,
): {
  /** The images, N×3×32×32. */
  images: Uint8Array;
  /** Their labels. */
  labels: Int32Array;
} {
  const record = labelBytes + PIXELS;
  if (buffer.length === 0) throw new DatasetError(file, 'empty file');
  if (buffer.length % record !== 0)
    throw new DatasetError(
      file,
      `${buffer.length} bytes is not a whole number of ${record}-byte records (truncated or not a CIFAR ${labelBytes === 1 ? '10' : '100'} binary file)`,
    );
  const n = buffer.length / record;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = buffer[i * record + labelIndex];
    if (label >= numClasses)
      throw new DatasetError(file, `label ${label} of record ${i} is out of range for ${numClasses} classes`);
    labels[i] = label;
    images.set(buffer.subarray(i * record + labelBytes, (i + 1) * record), i * PIXELS);
  }
  return { images, labels };
}

async function assemble(
  files: string[],
  labelBytes: number,
  labelIndex: number,
  numClasses: number,
  classNames: string[],
  name: string,
): Promise<Dataset> {
  const parts = [];
  for (const f of files) parts.push(parseCifarRecords(await readFile(f), f, labelBytes, labelIndex, numClasses));
  const n = parts.reduce((a, p) => a + p.labels.length, 0);
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let offset = 0;
  for (const p of parts) {
    images.set(p.images, offset * PIXELS);
    labels.set(p.labels, offset);
    offset += p.labels.length;
  }
  const dataset = await fromArrays({ images, shape: [n, 3, 32, 32], labels, numClasses, classNames, name }, files[0]);
  await useStatsCache(files[0], dataset);
  return dataset;
}

/** Where a CIFAR binary folder is, which split, and (CIFAR-100) which labels. */
export interface CifarOptions {
  /** The folder holding the binary files (cifar-10-batches-bin, or cifar-100-binary). */
  path: string;
  /** 'train' (default) or 'test'. */
  split?: 'train' | 'test';
}

/** CIFAR-10: data_batch_1..5.bin (train), test_batch.bin (test), batches.meta.txt (class names). */
export async function cifar10(options: CifarOptions): Promise<Dataset> {
  s.object({ path: s.string(), split: s.optional(s.enum(['train', 'test'] as const)) }).parse(options, 'options');
  const split = options.split ?? 'train';
  const files =
    split === 'train'
      ? [1, 2, 3, 4, 5].map((i) => path.join(options.path, `data_batch_${i}.bin`))
      : [path.join(options.path, 'test_batch.bin')];
  const classNames = await readNames(path.join(options.path, 'batches.meta.txt'), 10);
  return assemble(files, 1, 0, 10, classNames, `cifar-10 ${split}`);
}

/** CIFAR-100: train.bin / test.bin with coarse and fine labels; fine (100 classes) by default. */
export async function cifar100(options: CifarOptions & { labels?: 'fine' | 'coarse' }): Promise<Dataset> {
  s.object({
    path: s.string(),
    split: s.optional(s.enum(['train', 'test'] as const)),
    labels: s.optional(s.enum(['fine', 'coarse'] as const)),
  }).parse(options, 'options');
  const split = options.split ?? 'train';
  const fine = (options.labels ?? 'fine') === 'fine';
  const classes = fine ? 100 : 20;
  const classNames = await readNames(
    path.join(options.path, fine ? 'fine_label_names.txt' : 'coarse_label_names.txt'),
    classes,
  );
  return assemble(
    [path.join(options.path, `${split}.bin`)],
    2,
    fine ? 1 : 0,
    classes,
    classNames,
    `cifar-100 ${split}`,
  );
}
