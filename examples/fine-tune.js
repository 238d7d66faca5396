// Fine-tuning without a hub: pretrain on five Fashion-MNIST classes, then start a 10-class model from those weights
// (createModel({ weights })), give it a new head, freeze the early layers and train on all ten classes.
//   node examples/fine-tune.js
// From torchvision's zoo, see fine-tune-torchvision.js.
const os = require('os');
const path = require('path');
const { createModel, datasets, fromArrays, train } = require('resnet-torch');

const quick = process.env.EXAMPLES_QUICK === '1';

async function main() {
  const all = quick ? await (await datasets.fashionMnist()).take(1024, 0) : await datasets.fashionMnist();
  const test = quick
    ? await (await datasets.fashionMnist({ split: 'test' })).take(256, 0)
    : await datasets.fashionMnist({ split: 'test' });
  const options = { iterations: quick ? 10 : 600, batchSize: 64, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } };

  // Pretrain on T-shirt, Trouser, Pullover, Dress and Coat (labels 0-4) only.
  const { images, labels } = all.get(0, all.length);
  const keep = labels.flatMap((l, i) => (l < 5 ? [i] : []));
  const size = 28 * 28;
  const firstFive = await fromArrays({
    images: Uint8Array.from(
      { length: keep.length * size },
      (_, j) => images[keep[Math.floor(j / size)] * size + (j % size)],
    ),
    shape: [keep.length, 1, 28, 28],
    labels: keep.map((i) => labels[i]),
    numClasses: 5,
    classNames: all.classNames.slice(0, 5),
  });
  const base = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 5, seed: 0 });
  await train(base, firstFive, options);
  const weights = path.join(os.tmpdir(), `fashion-first-five-${process.pid}.safetensors`);
  await base.saveWeights(weights);

  // Strict loading: numClasses must be the file's (5); the head changes afterwards.
  const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 5, weights });
  model.replaceHead(10, { classNames: all.classNames });
  model.freeze(['conv1', 'bn1', 'layer1']); // the stem and the first stage keep what pretraining learned
  const tuned = await train(model, all, { ...options, test });
  console.log(
    `fine-tuned ${model.parameterCount({ trainable: true })} of ${model.parameterCount()} parameters; ` +
      `test error ${(tuned.evaluations.test.top1Error * 100).toFixed(2)}%`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
