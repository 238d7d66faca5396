// A whole Fashion-MNIST epoch (load, augment, train, evaluate on the test set) against the usual torchvision
// pipeline (FashionMNIST + transforms + DataLoader) with the same augmentation, model, batch and optimizer.
//   node .test-build/bench/fmnist-epoch.js [--workers 0,2] [--iterations N]
import { execFileSync } from 'child_process';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';

import { createModel, datasets, train } from '../lib';
import { runPython } from '../harness/python';
import { argValue, formatTable } from './table';
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
  const rows: (string | number)[][] = [];
  const mine = await ours(iterations);
  const theirs: { workers: number; seconds: number; accuracy: number }[] = [];
  for (const w of workers) {
    const out = JSON.parse(
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
    );
    theirs.push({ workers: w, seconds: out.seconds, accuracy: out.testAccuracy });
  }
  const best = theirs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  rows.push(['resnet-torch (native loader, batched augmentation)', mine.seconds, mine.accuracy, '']);
  for (const t of theirs)
    rows.push([
      `PyTorch DataLoader, num_workers=${t.workers}`,
      t.seconds,
      t.accuracy,
      best === t ? 'fastest PyTorch' : '',
    ]);
  console.log(
    `\nOne Fashion-MNIST epoch${iterations ? ` (${iterations} iterations)` : ''}: load + train (pad-crop 4, flip, batch 128, CIFAR ResNet-20, channels_last) + test evaluation, ${threads} threads`,
  );
  console.log(formatTable(['pipeline', 'seconds', 'test accuracy', 'note'], rows));
  console.log(`ratio (fastest PyTorch seconds / ours): ${(best.seconds / mine.seconds).toFixed(2)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
