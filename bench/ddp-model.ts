// Data-parallel scaling on paper, from what this machine measures: what 8, 64 and 256 ranks of ResNet-50 would reach
// over 25 and 100 Gb/s links, and where NCCL takes over on GPUs.
// Measured here, in this run:
//   - Gloo's all-reduce (c10d's ProcessGroupGloo, which our ranks use), 2 processes on 127.0.0.1: the per-step
//     latency alpha (the fastest of 9 all-reduces of 4 KiB, over its 2 ring steps) and the rate at which a rank reduces and copies
//     (bus bandwidth of a 25 MiB all-reduce: what a CPU rank can process, whatever the link);
//   - our ResNet-50 training step on this CPU (one process, batch --batch at 224x224): forward, backward and optimizer
//     seconds per iteration (result.phases);
//   - the gradient buckets c10d's Reducer forms for it (reverse order of the parameters, the first 1 MiB, then 25 MiB).
// The model: a ring all-reduce of S bytes over N ranks takes 2(N-1)/N * S / min(link, rank rate) + 2(N-1) alpha. Every
// bucket but the last (the first layers' gradients, complete only when backward ends) runs during backward: exposed =
// all-reduce(last bucket) + max(0, all-reduce(the others) - backward). Efficiency = step / (step + exposed).
// The GPU rows take an H100's ResNet-50 step from published figures (an assumption, named in the output: no GPU
// measured it here), with NCCL over NVLink inside a node of 8 and the link between nodes.
//   node .test-build/bench/ddp-model.js [--batch 32] [--iterations 3] [--repeats 3]
import * as net from 'net';

import { createModel, fromArrays, setNumThreads, train } from '../lib';
import { runPython } from '../harness/python';
import { argValue, formatTable, median } from './table';
import { describeMachine } from './machine';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const MiB = 1024 * 1024;
const GBPS = (gbit: number) => (gbit * 1e9) / 8; // bytes per second of a link of `gbit` Gb/s

/** c10d's Reducer buckets (compute_bucket_assignment_by_size): parameters in reverse order, the first bucket up to
 *  1 MiB, the others up to 25 MiB. Bytes per bucket, in the order they become ready in backward. */
function buckets(paramBytes: number[]): number[] {
  const out: number[] = [];
  let current = 0;
  for (const b of [...paramBytes].reverse()) {
    current += b;
    if (current >= (out.length === 0 ? MiB : 25 * MiB)) {
      out.push(current);
      current = 0;
    }
  }
  if (current > 0) out.push(current);
  return out;
}

interface Ring {
  alpha: number; // seconds per ring step
  rate: number; // bytes per second a rank sends, receives and reduces
}

const allReduce = (bytes: number, n: number, ring: Ring) =>
  n < 2 ? 0 : ((2 * (n - 1)) / n) * (bytes / ring.rate) + 2 * (n - 1) * ring.alpha;

/** Seconds per iteration not hidden behind backward. */
function exposed(bucketBytes: number[], n: number, ring: Ring, backward: number): number {
  const last = bucketBytes[bucketBytes.length - 1];
  const overlapped = bucketBytes.slice(0, -1).reduce((t, b) => t + allReduce(b, n, ring), 0);
  return allReduce(last, n, ring) + Math.max(0, overlapped - backward);
}

async function main() {
  const batch = Number(argValue('batch', '32'));
  const iterations = Number(argValue('iterations', '3'));
  console.log(describeMachine(2));

  const repeats = Number(argValue('repeats', '3'));
  // Gloo's all-reduce (2 processes of 1 thread) and our ResNet-50 step, alternating, `repeats` times.
  const sizes = [4096, MiB, 25 * MiB];
  setNumThreads(2);
  const count = 2 * batch;
  const data = await fromArrays({
    images: new Uint8Array(count * 3 * 224 * 224).map((_, i) => (i * 2654435761) >>> 24),
    shape: [count, 3, 224, 224],
    labels: Array.from({ length: count }, (_, i) => i % 1000),
    numClasses: 1000,
  });
  const model = await createModel({ arch: 'resnet50', seed: 0 });
  const options = {
    batchSize: batch,
    seed: 1,
    memoryFormat: 'channels_last' as const,
    optimizer: { type: 'sgd' as const, lr: 0.01, momentum: 0.9 },
  };
  await train(model, data, { ...options, iterations: 1 }); // primitives created, memory touched
  const m = { alpha: [] as number[], rate: [] as number[], step: [] as number[], backward: [] as number[] };
  let engine = '';
  for (let k = 0; k < repeats; k++) {
    const rows = JSON.parse(
      (
        await runPython(
          '../../bench/python/allreduce_bw.py',
          [JSON.stringify({ world: 2, sizes, repeats: 9, port: await freePort() })],
          { OMP_NUM_THREADS: '1' },
        )
      )
        .trim()
        .split('\n')
        .pop()!,
    ) as { bytes: number; seconds: number; fastest: number }[];
    // The latency from the fastest 4 KiB all-reduce: two processes sharing 2 cores with nothing else wake each
    // other up late now and then (0.3 to 4 ms here), which one rank per machine would not.
    const alpha = rows[0].fastest / 2; // 2 ring steps of a 2-rank all-reduce
    m.alpha.push(alpha);
    m.rate.push(rows[2].bytes / 2 / Math.max(1e-9, rows[2].seconds - 2 * alpha)); // 2(N-1)/N = 1 at N = 2
    const timed = await train(model, data, { ...options, iterations });
    const p = timed.phases;
    m.step.push((p.dataWait + p.forward + p.backward + p.optimizer + p.other) / iterations);
    m.backward.push(p.backward / iterations);
    engine = timed.engine;
    console.error(
      `  run ${k + 1}: all-reduce ${rows.map((r) => `${(r.seconds * 1000).toFixed(2)} ms`).join(' / ')}, ` +
        `step ${m.step[k].toFixed(2)} s (backward ${m.backward[k].toFixed(2)} s)`,
    );
  }
  const alpha = median(m.alpha),
    rankRate = median(m.rate),
    step = median(m.step),
    backward = median(m.backward);
  const range = (v: number[], f: (x: number) => string) =>
    `${f(median(v))} (${f(Math.min(...v))}-${f(Math.max(...v))})`;
  const paramBytes = model
    .stateDict()
    .filter((e) => e.kind === 'parameter' && e.trainable)
    .map((e) => 4 * e.shape.reduce((a, b) => a * b, 1));
  const bucketBytes = buckets(paramBytes);
  const total = paramBytes.reduce((a, b) => a + b, 0);
  console.log(
    `Measured, median (range) of ${repeats} alternating runs. Gloo all-reduce, 2 ranks on 127.0.0.1 (4 KiB, 1 MiB, ` +
      `25 MiB): alpha ${range(m.alpha, (x) => (x * 1e6).toFixed(0))} us per ring step, a rank reduces ` +
      `${range(m.rate, (x) => (x / 1e9).toFixed(2))} GB/s. ResNet-50 step here (batch ${batch}, 224x224, ${engine}): ` +
      `${range(m.step, (x) => x.toFixed(2))} s, backward ${range(m.backward, (x) => x.toFixed(2))} s; gradients ` +
      `${(total / MiB).toFixed(1)} MiB in ${bucketBytes.length} buckets (${bucketBytes.map((b) => (b / MiB).toFixed(1)).join(', ')} MiB, the last exposed)`,
  );

  const table: string[][] = [];
  const cpuRow = (n: number, gbit: number) => {
    const ring = { alpha, rate: Math.min(GBPS(gbit), rankRate) };
    const e = exposed(bucketBytes, n, ring, backward);
    table.push([
      `this CPU, 1 rank per machine (measured step)`,
      String(n),
      `${gbit} Gb/s`,
      `${(bucketBytes.reduce((t, b) => t + allReduce(b, n, ring), 0) * 1000).toFixed(0)} ms`,
      `${(e * 1000).toFixed(0)} ms`,
      `${((100 * step) / (step + e)).toFixed(0)}%`,
      `${((n * batch) / (step + e)).toFixed(0)}`,
    ]);
  };
  for (const gbit of [25, 100]) for (const n of [8, 64, 256]) cpuRow(n, gbit);

  // An H100 (assumed): about 3,000 images/s of ResNet-50 training in mixed precision at batch 256 per GPU (NVIDIA's
  // published DGX H100 figures), backward about 2/3 of the step. NCCL: inside a node of 8 over NVLink (about 450 GB/s
  // bus bandwidth), between nodes a ring over the link with 8 GPUs' shares crossing one NIC per node.
  const gpuBatch = 256,
    gpuStep = gpuBatch / 3000,
    gpuBackward = (2 / 3) * gpuStep;
  for (const gbit of [25, 100])
    for (const n of gbit === 25 ? [8, 64, 256] : [64, 256]) {
      const nodes = n / 8;
      const nvlink = { alpha: 5e-6, rate: 450e9 };
      const inter = { alpha: 10e-6, rate: GBPS(gbit) };
      // Hierarchical: reduce-scatter and all-gather inside the node (NVLink), all-reduce of each GPU's 1/8 between
      // nodes, all 8 shares over the node's one link.
      const ar = (b: number) => allReduce(b, 8, nvlink) + (nodes > 1 ? allReduce(b, nodes, inter) : 0);
      const last = bucketBytes[bucketBytes.length - 1];
      const rest = bucketBytes.slice(0, -1).reduce((t, b) => t + ar(b), 0);
      const e = ar(last) + Math.max(0, rest - gpuBackward);
      table.push([
        'H100 (assumed 3,000 img/s), NCCL, 8 per node',
        String(n),
        n === 8 ? 'NVLink only' : `${gbit} Gb/s`,
        `${(bucketBytes.reduce((t, b) => t + ar(b), 0) * 1000).toFixed(1)} ms`,
        `${(e * 1000).toFixed(1)} ms`,
        `${((100 * gpuStep) / (gpuStep + e)).toFixed(0)}%`,
        `${((n * gpuBatch) / (gpuStep + e)).toFixed(0)}`,
      ]);
    }
  // The same GPUs with Gloo: gradients through host memory, reduced by the CPU at the rate measured above, a flat
  // ring over every rank. This is why CUDA tensors take NCCL (the default where the build has it).
  for (const n of [8, 64, 256]) {
    const ring = { alpha, rate: Math.min(GBPS(100), rankRate) };
    const e = exposed(bucketBytes, n, ring, gpuBackward);
    table.push([
      'H100 (assumed), Gloo through host memory',
      String(n),
      '100 Gb/s',
      `${(bucketBytes.reduce((t, b) => t + allReduce(b, n, ring), 0) * 1000).toFixed(0)} ms`,
      `${(e * 1000).toFixed(0)} ms`,
      `${((100 * gpuStep) / (gpuStep + e)).toFixed(0)}%`,
      `${((n * gpuBatch) / (gpuStep + e)).toFixed(0)}`,
    ]);
  }
  console.log(
    `\nResNet-50 data-parallel, modelled (float32 gradients; ring all-reduce; every bucket but the last hidden behind backward)`,
  );
  console.log(
    formatTable(
      ['ranks of', 'ranks', 'link', 'all-reduce per step', 'not hidden', 'efficiency', 'images/s of the world'],
      table,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
