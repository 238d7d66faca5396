// Dataset entries of a run config -> datasets.
import { Dataset, fromArrays } from '../datasets/dataset';
import { StreamingDataset, imageFolder, streamImageFolder } from '../datasets/image-folder';
import { cifar10, cifar100 } from '../datasets/cifar';
import { fashionMnist, idxFolder, mnist } from '../datasets/mnist';
import { ValidationError } from '../errors';
import { DatasetConfig } from './schema';

export type LoadedData = Dataset | StreamingDataset;

function needPath(c: DatasetConfig, field: string): string {
  if (!c.path)
    throw new ValidationError(`${field}.path`, undefined, 'a folder', `${field}.path: required for ${c.type} data`);
  return c.path;
}

/** Loads one dataset entry; `field` is its path in the config, for messages. */
export async function loadDataset(c: DatasetConfig, field: string, seed = 0): Promise<LoadedData> {
  const split = c.split ?? 'train';
  let data: LoadedData;
  switch (c.type) {
    case 'fashion-mnist':
      data = await fashionMnist({ path: c.path, split });
      break;
    case 'mnist':
      data = await mnist({ path: needPath(c, field), split });
      break;
    case 'idx':
      data = await idxFolder({ path: needPath(c, field), split });
      break;
    case 'cifar10':
      data = await cifar10({ path: needPath(c, field), split });
      break;
    case 'cifar100':
      data = await cifar100({ path: needPath(c, field), split, labels: c.labels });
      break;
    case 'image-folder': {
      if (c.size === undefined)
        throw new ValidationError(
          `${field}.size`,
          undefined,
          'an image size',
          `${field}.size: required for image folders`,
        );
      const options = {
        path: needPath(c, field),
        size: c.size,
        resize: c.resize,
        channels: c.channels,
        onBadImage: c.onBadImage,
      };
      data = c.stream ? await streamImageFolder(options) : await imageFolder(options);
      break;
    }
    case 'synthetic': {
      const [ch, h, w] = c.shape ?? [3, 32, 32];
      const count = c.count ?? 1024;
      const classes = c.classes ?? 10;
      const images = new Uint8Array(count * ch * h * w);
      let x = (seed + (split === 'test' ? 7 : 1)) >>> 0 || 1;
      for (let i = 0; i < images.length; i++) {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        images[i] = x & 0xff;
      }
      data = await fromArrays({
        images,
        shape: [count, ch, h, w],
        labels: Array.from({ length: count }, (_, i) => i % classes),
        numClasses: classes,
        name: `synthetic ${split}`,
      });
      break;
    }
  }
  if (c.limit !== undefined && c.limit < data.length) {
    data =
      data instanceof Dataset
        ? await data.take(c.limit, seed)
        : data.subset(Array.from({ length: c.limit }, (_, i) => i));
  }
  return data;
}

/** The test split of the same source as `train`, when that source has one. */
export function defaultTest(train: DatasetConfig): DatasetConfig | undefined {
  if (['fashion-mnist', 'mnist', 'idx', 'cifar10', 'cifar100', 'synthetic'].includes(train.type)) {
    const { limit: _limit, ...rest } = train;
    return { ...rest, split: 'test' };
  }
  return undefined;
}
