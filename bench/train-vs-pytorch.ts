// Our training against PyTorch's (Python, Debian's python3-torch: the same libtorch) on this machine:
// the same model, batch, optimizer, threads and memory format, alternating runs, medians.
//   node .test-build/bench/train-vs-pytorch.js [--repeats 3] [--threads N] [--cases cifar128,cifar16,resnet18]
import * as os from 'os';

import { createModel, fromArrays, setNumThreads, train } from '../lib';
import { runPython } from '../test/helpers/python';
import { argValue, formatTable, median } from './table';

interface Case {
  id: string;
  label: string;
  arch: string;
  batch: number;
  size: number;
  channels: number;
  iterations: number;
}

const CASES: Case[] = [
  { id: 'cifar128', label: 'CIFAR ResNet-20, batch 128, 32x32', arch: 'cifar-resnet20', batch: 128, size: 32, channels: 3, iterations: 40 },
  { id: 'cifar16', label: 'CIFAR ResNet-20, batch 16, 32x32', arch: 'cifar-resnet20', batch: 16, size: 32, channels: 3, iterations: 150 },
  { id: 'resnet18', label: 'ResNet-18, batch 16, 224x224', arch: 'resnet18', batch: 16, size: 224, channels: 3, iterations: 8 },
];

async function ours(c: Case, threads: number, memoryFormat: string): Promise<number> {
  const count = Math.max(c.batch * 8, 1024);
  const images = new Uint8Array(count * c.channels * c.size * c.size).map((_, i) => (i * 2654435761) >>> 24);
  const data = await fromArrays({ images, shape: [count, c.channels, c.size, c.size], labels: Array.from({ length: count }, (_, i) => i % 10) });
  const model = await createModel({ arch: c.arch, numClasses: 10, inChannels: c.channels, seed: 0 });
  let rate = 0;
  // Events at `iterations` (warm-up window) and 2x (the timed window).
  await train(model, data, { iterations: 2 * c.iterations, batchSize: c.batch, logEvery: c.iterations, threads, normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 }, memoryFormat: memoryFormat as 'channels_last',
    onProgress: (e) => { if (e.kind === 'iteration') rate = e.imagesPerSecond!; } });
  model.dispose();
  return rate;
}

async function pytorch(c: Case, threads: number, memoryFormat: string): Promise<number> {
  const out = await runPython('../../bench/python/train_step.py', [c.arch, String(c.batch), String(c.size), String(c.channels), String(c.iterations),
    String(c.iterations), String(threads), memoryFormat], { OMP_NUM_THREADS: String(threads) });
  return JSON.parse(out.trim().split('\n').pop()!).imagesPerSecond;
}

async function main() {
  const repeats = Number(argValue('repeats', '3'));
  const threads = Number(argValue('threads', String(os.cpus().length)));
  const formats = argValue('formats', 'channels_last,contiguous').split(',');
  const wanted = argValue('cases', CASES.map((c) => c.id).join(',')).split(',');
  setNumThreads(threads);
  const rows: (string | number)[][] = [];
  for (const c of CASES.filter((x) => wanted.includes(x.id))) {
    for (const format of formats) {
      const a: number[] = [], b: number[] = [];
      for (let r = 0; r < repeats; r++) {
        a.push(await ours(c, threads, format));
        b.push(await pytorch(c, threads, format));
      }
      const row = [c.label, format, median(a), median(b), median(a) / median(b)];
      rows.push(row);
      console.error(`  ${c.label} ${format}: ours ${a.map((x) => x.toFixed(0))} pytorch ${b.map((x) => x.toFixed(0))}`);
    }
  }
  console.log(`\nTraining throughput, CPU, ${threads} threads, ${os.cpus()[0].model}, median of ${repeats} alternating runs`);
  console.log(formatTable(['case', 'memory format', 'ours img/s', 'PyTorch img/s', 'ratio'], rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
