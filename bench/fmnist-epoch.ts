// A whole Fashion-MNIST epoch (load, augment, train, evaluate on the test set) against the usual torchvision
// pipeline (FashionMNIST + transforms + DataLoader) with the same augmentation, model, batch and optimizer; ours and
// theirs alternating, median (range) of the rounds, each round's ratio against its fastest PyTorch run.
//   node .test-build/bench/fmnist-epoch.js [--workers 0,2] [--iterations N] [--repeats 3]
import { execFileSync } from 'child_process';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';

import { createModel, datasets, train } from '../lib';
import { runPython } from '../harness/python';
import { argValue, formatTable, medianRange } from './table';
import { describeMachine } from './machine';

async function ours(iterations?: number) {
  const start = performance.now();
  const tr = await datasets.fashionMnist({ split: 'train' });
  const te = await datasets.fashionMnist({ split: 'test' });
  const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, seed: 0 });
  const result = await train(model, tr, {
    ...(iterations ? { iterations } : { epochs: 1 }),
    batchSize: 128,
    augment: { padCrop: 4, flip: true },
    normalize: 'per-channel',
    test: te,
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 },
    logEvery: 100,
  });
  return { seconds: (performance.now() - start) / 1000, accuracy: result.evaluations.test!.accuracy };
}

async function rawFolder(): Promise<string> {
  // torchvision reads the uncompressed files from <root>/FashionMNIST/raw (it would download otherwise).
  const root = path.join(os.tmpdir(), 'resnet-torch-bench-fmnist');
  const raw = path.join(root, 'FashionMNIST', 'raw');
  await fsp.mkdir(raw, { recursive: true });
  for (const f of [
    'train-images-idx3-ubyte',
    'train-labels-idx1-ubyte',
    't10k-images-idx3-ubyte',
    't10k-labels-idx1-ubyte',
  ]) {
    const out = path.join(raw, f);
    try {
      await fsp.access(out);
    } catch {
      await fsp.writeFile(
        out,
        execFileSync('gzip', ['-dc', path.join(datasets.FASHION_MNIST_DIR, `${f}.gz`)], { maxBuffer: 1 << 30 }),
      );
    }
  }
  return root;
}

async function main() {
  console.log(describeMachine(os.cpus().length));
  const workers = argValue('workers', '0,2').split(',').map(Number);
  const iterations = process.argv.includes('--iterations') ? Number(argValue('iterations', '0')) : undefined;
  const threads = os.cpus().length;
  const root = await rawFolder();
  const repeats = Number(argValue('repeats', '3'));
  const pytorch = async (w: number) =>
    JSON.parse(
      (
        await runPython(
          '../../bench/python/fmnist_epoch.py',
          [root, '128', String(w), String(threads), 'channels_last', ...(iterations ? [String(iterations)] : [])],
          { OMP_NUM_THREADS: String(threads) },
        )
      )
        .trim()
        .split('\n')
        .pop()!,
    ) as { seconds: number; testAccuracy: number };
  const mine: { seconds: number; accuracy: number }[] = [];
  const theirs = new Map<number, { seconds: number; accuracy: number }[]>(workers.map((w) => [w, []]));
  for (let r = 0; r < repeats; r++) {
    mine.push(await ours(iterations));
    for (const w of workers) {
      const out = await pytorch(w);
      theirs.get(w)!.push({ seconds: out.seconds, accuracy: out.testAccuracy });
    }
  }
  // Each round's fastest PyTorch pipeline over ours.
  const ratios = mine.map((m, k) => Math.min(...workers.map((w) => theirs.get(w)![k].seconds)) / m.seconds);
  const rows: (string | number)[][] = [
    [
      'resnet-torch (native loader, batched augmentation)',
      medianRange(
        mine.map((m) => m.seconds),
        1,
      ),
      medianRange(
        mine.map((m) => m.accuracy),
        4,
      ),
    ],
    ...workers.map((w) => [
      `PyTorch DataLoader, num_workers=${w}`,
      medianRange(
        theirs.get(w)!.map((t) => t.seconds),
        1,
      ),
      medianRange(
        theirs.get(w)!.map((t) => t.accuracy),
        4,
      ),
    ]),
  ];
  console.log(
    `\nOne Fashion-MNIST epoch${iterations ? ` (${iterations} iterations)` : ''}: load + train (pad-crop 4, flip, batch 128, CIFAR ResNet-20, channels_last) + test evaluation, ${threads} threads; median (range) of ${repeats} alternating rounds`,
  );
  console.log(formatTable(['pipeline', 'seconds', 'test accuracy'], rows));
  console.log(`ratio (each round's fastest PyTorch seconds / ours): ${medianRange(ratios, 2)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
