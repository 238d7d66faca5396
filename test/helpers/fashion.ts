// The reduced-precision inference tests' model: a cifar-resnet8 trained 2 epochs on 3,000 Fashion-MNIST images
// (made once per test file), the test set, 500 other training images to calibrate int8 on, and two engines'
// accuracy on the test set in batches of 500.
import { InferenceModel, Model, createModel, datasets, normalizeImages, train } from '../../lib';
import { maxAbs, maxAbsDiff } from '../../harness/files';

let fashionRun: Promise<{ model: Model; test: Awaited<ReturnType<typeof datasets.fashionMnist>> }> | undefined;
export function fashionModel() {
  fashionRun ??= (async () => {
    const trainSet = await (await datasets.fashionMnist({ split: 'train' })).take(3000, 1);
    const test = await datasets.fashionMnist({ split: 'test' });
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 10, seed: 5 });
    // lr 0.02: 64% on both ISAs here (0.05 diverged to 31% on the AVX2 kernels)
    await train(model, trainSet, { epochs: 2, batchSize: 64, optimizer: { type: 'sgd', lr: 0.02, momentum: 0.9 } });
    return { model, test };
  })();
  return fashionRun;
}
const argmax = (d: Float32Array, i: number) => {
  let best = 0;
  for (let k = 1; k < 10; k++) if (d[i * 10 + k] > d[i * 10 + best]) best = k;
  return best;
};
/** An engine's logits for a batch. */
export type Logits = (x: { data: Float32Array; shape: number[] }) => Promise<Float32Array>;
const logitsOf =
  (m: InferenceModel): Logits =>
  async (x) =>
    (await m.forward(x)).data;

/** Test-set accuracy of `a` and `b`, and their largest logit difference relative to the largest logit. */
export async function compareOnTest(first: InferenceModel | Logits, second: InferenceModel | Logits) {
  const { model, test } = await fashionModel();
  const [a, b] = [first, second].map((m) => (typeof m === 'function' ? m : logitsOf(m)));
  let rightA = 0,
    rightB = 0,
    worst = 0;
  for (let start = 0; start < test.length; start += 500) {
    const { images, labels, shape } = test.get(start, 500);
    const x = { data: normalizeImages(images, shape, model.preprocessing), shape };
    const [ya, yb] = [await a(x), await b(x)];
    worst = Math.max(worst, maxAbsDiff(ya, yb) / Math.max(1, maxAbs(ya)));
    for (let i = 0; i < labels.length; i++) {
      rightA += Number(argmax(ya, i) === labels[i]);
      rightB += Number(argmax(yb, i) === labels[i]);
    }
  }
  return { a: rightA / test.length, b: rightB / test.length, worst };
}

/** 500 other training images, normalised as the model takes them. */
export async function calibrationImages() {
  const { model } = await fashionModel();
  const calibrationSet = await (await datasets.fashionMnist({ split: 'train' })).take(500, 2);
  const { images, shape } = calibrationSet.get(0, 500);
  return { data: normalizeImages(images, shape, model.preprocessing), shape };
}
