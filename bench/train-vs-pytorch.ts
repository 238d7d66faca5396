// Our training against PyTorch's (Python: $RESNET_TORCH_PYTHON, else python3 or Debian's python3-torch) on this
// machine: the same model, batch, optimizer, threads, device, precision and memory format; alternating runs,
// medians and ranges, each ratio taken against the PyTorch run beside it. --compile adds torch.compile (inductor;
// its compilation is outside the timed window) in each round.
//   node .test-build/bench/train-vs-pytorch.js [--device cpu|cuda] [--repeats 3] [--cases cifar20,cifar20b16,cifar56,resnet18,resnet50,resnet26d]
//     (resnet26d: the reference is timm's model, so $RESNET_TORCH_PYTHON must have timm: the venv's)
//     [--formats channels_last,contiguous] [--precisions float32,bfloat16] [--compile] [--cuda-graph]
//     [--iterations N] (the warm-up and the timed window, instead of each case's own) [--budget-s S] (starts no
//     new case after S seconds, so a time-limited GPU call still prints the table of what it measured)
import * as os from 'os';

import { createModel, fromArrays, setNumThreads, train } from '../lib';
import { runPython } from '../harness/python';
import { info } from '../lib';
import { argValue, formatTable, median, medianRange } from './table';
import { describeMachine } from './machine';

interface Case {
  id: string;
  label: string;
  arch: string;
  batch: number;
  gpuBatch?: number;
  size: number;
  iterations: number;
  gpuIterations?: number;
}

const CASES: Case[] = [
  {
    id: 'cifar20',
    label: 'CIFAR ResNet-20, batch 128, 32x32',
    arch: 'cifar-resnet20',
    batch: 128,
    size: 32,
    iterations: 40,
    gpuIterations: 300,
  },
  {
    id: 'cifar20b16',
    label: 'CIFAR ResNet-20, batch 16, 32x32',
    arch: 'cifar-resnet20',
    batch: 16,
    size: 32,
    iterations: 150,
    gpuIterations: 500,
  },
  {
    id: 'cifar56',
    label: 'CIFAR ResNet-56, batch 128, 32x32',
    arch: 'cifar-resnet56',
    batch: 128,
    size: 32,
    iterations: 15,
    gpuIterations: 200,
  },
  {
    id: 'resnet18',
    label: 'ResNet-18, batch 16, 224x224',
    arch: 'resnet18',
    batch: 16,
    size: 224,
    iterations: 8,
    gpuIterations: 100,
  },
  {
    id: 'resnet50',
    label: 'ResNet-50, 224x224 (batch 32 CPU, 256 GPU)',
    arch: 'resnet50',
    batch: 32,
    gpuBatch: 256,
    size: 224,
    iterations: 4,
    gpuIterations: 40,
  },
  {
    // timm's ResNet-D (deep stem, average-pool shortcuts); the reference is timm's own model (the venv's Python).
    id: 'resnet26d',
    label: "ResNet-26d (timm's), batch 16, 160x160",
    arch: 'resnet26d',
    batch: 16,
    size: 160,
    iterations: 6,
    gpuIterations: 100,
  },
];

interface Setting {
  device: string;
  format: string;
  precision: string;
  cudaGraph?: boolean;
}

const iterationsFlag = Number(argValue('iterations', '0'));

function iterationsOf(c: Case, gpu: boolean): number {
  return iterationsFlag || (gpu ? (c.gpuIterations ?? c.iterations) : c.iterations);
}

async function ours(c: Case, threads: number, s: Setting): Promise<number> {
  const gpu = s.device.startsWith('cuda');
  const batch = gpu ? (c.gpuBatch ?? c.batch) : c.batch;
  const iterations = iterationsOf(c, gpu);
  const count = Math.max(batch * 8, 1024);
  const images = new Uint8Array(count * 3 * c.size * c.size).map((_, i) => (i * 2654435761) >>> 24);
  const data = await fromArrays({
    images,
    shape: [count, 3, c.size, c.size],
    labels: Array.from({ length: count }, (_, i) => i % 10),
  });
  const model = await createModel({ arch: c.arch, numClasses: 10, seed: 0, device: s.device });
  let rate = 0;
  // Events at `iterations` (the warm-up window) and twice that (the timed window).
  await train(model, data, {
    iterations: 2 * iterations,
    batchSize: batch,
    logEvery: iterations,
    threads,
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 },
    memoryFormat: s.format as 'channels_last',
    precision: s.precision as 'float32',
    cudaGraph: s.cudaGraph ?? false,
    onProgress: (e) => {
      if (e.kind === 'iteration') rate = e.imagesPerSecond!;
    },
  });
  model.dispose();
  return rate;
}

async function pytorch(c: Case, threads: number, s: Setting, compile = false): Promise<number> {
  const gpu = s.device.startsWith('cuda');
  const iterations = iterationsOf(c, gpu);
  const config = {
    arch: c.arch,
    batch: gpu ? (c.gpuBatch ?? c.batch) : c.batch,
    size: c.size,
    channels: 3,
    warmup: compile ? iterations + 3 : iterations,
    iters: iterations,
    threads,
    format: s.format,
    device: s.device,
    precision: s.precision,
    compile,
  };
  const out = await runPython('../../bench/python/train_step.py', [JSON.stringify(config)], {
    OMP_NUM_THREADS: String(threads),
  });
  return JSON.parse(out.trim().split('\n').pop()!).imagesPerSecond;
}

async function main() {
  console.log(describeMachine(Number(argValue('threads', String(os.cpus().length)))));
  const device = argValue('device', 'cpu');
  const gpu = device.startsWith('cuda');
  const repeats = Number(argValue('repeats', gpu ? '1' : '3'));
  const threads = Number(argValue('threads', String(os.cpus().length)));
  const formats = argValue('formats', gpu ? 'channels_last' : 'channels_last,contiguous').split(',');
  const precisions = argValue('precisions', gpu ? 'float32,bfloat16' : 'float32').split(',');
  const wanted = argValue('cases', CASES.map((c) => c.id).join(',')).split(',');
  const budgetMs = Number(argValue('budget-s', 'Infinity')) * 1000;
  const started = Date.now();
  setNumThreads(threads);
  const rows: (string | number)[][] = [];
  const skipped: string[] = [];
  for (const c of CASES.filter((x) => wanted.includes(x.id))) {
    for (const format of formats) {
      for (const precision of precisions) {
        if (Date.now() - started > budgetMs) {
          skipped.push(`${c.id} ${format} ${precision}`);
          continue;
        }
        const s: Setting = { device, format, precision };
        const compile = process.argv.includes('--compile');
        const a: number[] = [],
          b: number[] = [],
          compiled: number[] = [];
        for (let r = 0; r < repeats; r++) {
          a.push(await ours(c, threads, s));
          b.push(await pytorch(c, threads, s));
          if (compile) compiled.push(await pytorch(c, threads, s, true));
        }
        // Each run's ratio against the PyTorch run beside it: the range says how far one pair can mislead.
        const against = (theirs: number[], label: string) =>
          rows.push([
            c.label,
            `${format}, ${precision}`,
            medianRange(a, median(a) < 100 ? 1 : 0),
            label,
            medianRange(theirs, median(theirs) < 100 ? 1 : 0),
            medianRange(
              a.map((v, k) => v / theirs[k]),
              2,
            ),
          ]);
        against(b, 'PyTorch eager, same settings');
        if (compile) against(compiled, 'torch.compile, same settings');
        console.error(
          `  ${c.label} ${format} ${precision}: ours ${a.map((x) => x.toFixed(0))} pytorch ${b.map((x) => x.toFixed(0))}` +
            (compile ? ` compiled ${compiled.map((x) => x.toFixed(0))}` : ''),
        );
        if (gpu && process.argv.includes('--cuda-graph') && precision === 'float32' && c.arch.startsWith('cifar')) {
          const g = await ours(c, threads, { ...s, cudaGraph: true });
          rows.push([
            c.label,
            `${format}, ${precision}, CUDA graph`,
            g,
            'PyTorch eager, same settings',
            median(b),
            g / median(b),
          ]);
        }
      }
    }
  }
  const i = info();
  console.log(
    `\nTraining throughput, ${device}${gpu ? '' : `, ${threads} threads, ${os.cpus()[0].model}`}, median (range) of ${repeats} alternating run(s)`,
  );
  console.log(
    `libtorch ${i.libtorchVersion} (${i.libtorchLibrary}), kernel ${os.release()}, CPU cache ` +
      `${process.env.RESNET_TORCH_CPU_CACHE_MB === '0' ? 'off' : `${process.env.RESNET_TORCH_CPU_CACHE_MB ?? 4096} MB`}`,
  );
  console.log(formatTable(['case', 'settings', 'ours img/s', 'against', 'their img/s', 'ratio'], rows));
  if (skipped.length) console.log(`Not run (over --budget-s): ${skipped.join('; ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
