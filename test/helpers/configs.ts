// A tiny run config (synthetic 8x8 data, a few epochs) for the config and CLI tests.
export const tiny = (dir: string, extra: object = {}) => ({
  name: 'tiny',
  seed: 3,
  model: { arch: 'cifar-resnet8' },
  data: { train: { type: 'synthetic', shape: [1, 8, 8], classes: 3, count: 96 }, validation: { fromTrain: 32 } },
  train: { epochs: 3, batchSize: 16, logEvery: 2, optimizer: { type: 'sgd', lr: 0.05 } },
  checkpoint: { everyEpochs: 1 },
  output: { dir },
  ...extra,
});
