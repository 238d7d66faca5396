export { Dataset, fromArrays } from './dataset';
export type { ArraysInput, DatasetInfo, DatasetStats } from './dataset';
export { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, MNIST_CLASSES, fashionMnist, idxFolder, mnist } from './mnist';
export type { IdxFolderOptions } from './mnist';
export { parseIdx, readIdx, readIdxImages, readIdxLabels } from './idx';
