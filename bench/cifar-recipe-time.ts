// How long the paper's CIFAR-10 ResNet-20 recipe takes (64k iterations at batch 128, pad-4 crops and flips,
// per-pixel mean, SGD with the 32k/48k steps), measured over the first N iterations and extrapolated, on
// CIFAR-shaped synthetic data when CIFAR-10 is absent.
//   node .test-build/bench/cifar-recipe-time.js [--device cuda] [--iterations 3000] [--cifar DIR]
import * as os from 'os';
import { createModel, datasets, fromArrays, train } from '../lib';
import { argValue, formatTable } from './table';
import { describeMachine } from './machine';

async function main() {
  console.log(describeMachine(os.cpus().length));
  const device = argValue('device', 'cpu');
  const measured = Number(argValue('iterations', device.startsWith('cuda') ? '3000' : '100'));
  const cifar = argValue('cifar', '');
  const data = cifar
    ? await datasets.cifar10({ path: cifar })
    : await fromArrays({
        images: new Uint8Array(50000 * 3072).map((_, i) => (i * 2654435761) >>> 24),
        shape: [50000, 3, 32, 32],
        labels: Array.from({ length: 50000 }, (_, i) => i % 10),
        name: 'CIFAR-shaped synthetic',
      });
  const rows: (string | number)[][] = [];
  for (const [label, extra] of [
    ['float32', {}],
    ['bfloat16 + channels_last', { precision: 'bfloat16' as const }],
    ['float32, CUDA graph', { cudaGraph: true, memoryFormat: 'contiguous' as const }],
  ] as const) {
    if (!device.startsWith('cuda') && label !== 'float32') continue;
    const model = await createModel({ arch: 'cifar-resnet20', seed: 0, device });
    const r = await train(model, data, {
      iterations: measured,
      batchSize: 128,
      optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 },
      schedule: { type: 'multistep', milestones: [Math.floor(measured / 2), Math.floor(measured * 0.75)] },
      augment: { padCrop: 4, flip: true },
      normalize: 'per-pixel',
      logEvery: 1000,
      ...extra,
    });
    rows.push([label, r.imagesPerSecond, r.elapsedSeconds, ((64000 / measured) * r.elapsedSeconds) / 60]);
    model.dispose();
  }
  console.log(
    `\nCIFAR-10 ResNet-20 recipe (64k iterations, batch 128) on ${device}, data: ${data.name}; measured over ${measured} iterations`,
  );
  console.log(formatTable(['settings', 'images/s', `seconds for ${measured}`, 'minutes for 64k (extrapolated)'], rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
