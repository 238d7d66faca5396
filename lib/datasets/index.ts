/**
 * The dataset readers: Fashion-MNIST and MNIST (IDX), CIFAR-10/100 (binary), image folders (loaded or
 * streamed), and in-memory arrays.
 * @module
 */
export { Dataset, fromArrays } from './dataset';
export type { ArraysInput, DatasetInfo, DatasetStats } from './dataset';
export { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, MNIST_CLASSES, fashionMnist, idxFolder, mnist } from './mnist';
export type { IdxFolderOptions } from './mnist';
export { parseIdx, readIdx, readIdxImages, readIdxLabels } from './idx';
export { cifar10, cifar100, parseCifarRecords } from './cifar';
export type { CifarOptions } from './cifar';
export {
  IMAGE_EXTENSIONS,
  StreamingDataset,
  decodeImageFile,
  imageFolder,
  scanImageFolder,
  streamImageFolder,
} from './image-folder';
export type { ImageFile, ImageFolderOptions, StreamParams } from './image-folder';
