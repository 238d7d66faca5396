// Train a ResNet-20 on Fashion-MNIST from a Node script, with the CLI's progress bar, then save the weights.
//   node examples/train.js [out.safetensors]
// EXAMPLES_QUICK=1 trains on 512 images for 20 iterations (what the test suite runs).
const { createModel, datasets, progressBar, train } = require('resnet-torch');

const quick = process.env.EXAMPLES_QUICK === '1';

async function main() {
  const out = process.argv[2] ?? 'fashion-resnet20.safetensors';
  let trainSet = await datasets.fashionMnist({ split: 'train' }); // Debian's dataset-fashion-mnist
  let test = await datasets.fashionMnist({ split: 'test' });
  if (quick) [trainSet, test] = await Promise.all([trainSet.take(512, 0), test.take(256, 0)]);

  const model = await createModel({
    arch: 'cifar-resnet20',
    inChannels: 1,
    numClasses: 10,
    classNames: trainSet.classNames,
    seed: 0,
  });
  const result = await train(model, trainSet, {
    ...(quick ? { iterations: 20 } : { epochs: 3 }),
    batchSize: 64,
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 },
    schedule: { type: 'cosine' },
    augment: { padCrop: 2, flip: true },
    test,
    logEvery: quick ? 5 : 50,
    onProgress: progressBar(), // a bar on a terminal, plain lines in a pipe or a log
  });
  await model.saveWeights(out); // the class names and normalisation travel with the weights
  console.log(
    `test error ${(result.evaluations.test.top1Error * 100).toFixed(2)}% after ${result.iteration} iterations; weights in ${out}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
