// One rank of bench/ddp-scaling (or the single process it is compared with): CIFAR ResNet-20 on synthetic data,
// images/s of the world over the second half of the run. Rank and world come from the environment (torchrun's).
import { createModel, processGroup, setNumThreads, train } from '../lib';
import { syntheticCifar } from './synthetic';

async function main() {
  const { iterations, batch } = JSON.parse(process.argv[2]) as { iterations: number; batch: number };
  setNumThreads(1);
  const data = await syntheticCifar(4096);
  const model = await createModel({ arch: 'cifar-resnet20', seed: 0 });
  let rate = 0;
  // Events at `iterations` (the warm-up window) and twice that (the timed window); images/s are the world's.
  await train(model, data, {
    iterations: 2 * iterations,
    batchSize: batch,
    logEvery: iterations,
    threads: 1,
    seed: 1,
    optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 },
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    onProgress: (e) => {
      if (e.kind === 'iteration') rate = e.imagesPerSecond!;
    },
  });
  if (processGroup().rank === 0) process.stdout.write(`${JSON.stringify({ imagesPerSecond: rate })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).name}: ${(e as Error).message}\n`);
  process.exit(1);
});
