// Soak: long use of one process must not grow it. Resident memory (RSS) is sampled through each part; growth is
// measured from the end of a warm-up (allocator pools, libtorch's caches and JIT-compiled JS settle there) to the
// end, and must stay under --bound-mb. Parts:
//   predict    N predict() calls of one image, then N predictImage() calls (PNG bytes, decoded by sharp)
//   train      2N/2 iterations in one train() call, and 2N/2 more in runs of 100 (per-run setup and teardown)
//   lifecycle  N/10 cycles of createModel + forward + dispose, and fromArrays + subset + dispose
//   workers    N/100 worker threads terminated in the middle of training: the process must live on
//   node .test-build/reliability/soak.js [--n 10000] [--parts predict,train,lifecycle,workers] [--bound-mb 64]
import * as path from 'path';
import { Worker } from 'worker_threads';

import { Model, createModel, fromArrays, train } from '../lib';
import { argValue, formatTable } from '../bench/table';
import { pseudoRandomBytes } from '../harness/synthetic';

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

interface Row {
  part: string;
  count: number;
  warmupRss: number;
  halfRss: number;
  endRss: number;
  maxRss: number;
  seconds: number;
}

/** Runs `step(i)` n times, sampling RSS as it goes; growth counts from step `warmupSteps`, and from the half. */
async function soak(part: string, n: number, warmupSteps: number, step: (i: number) => Promise<void>): Promise<Row> {
  const warmup = Math.floor(warmupSteps);
  const started = performance.now();
  const every = Math.max(1, Math.floor(n / 50));
  const half = Math.floor(n / 2);
  let warmupRss = 0,
    halfRss = 0,
    maxRss = 0;
  for (let i = 0; i < n; i++) {
    await step(i);
    if (i % every === 0 || i === warmup || i === half) {
      const r = rssMb();
      maxRss = Math.max(maxRss, r);
      if (i === warmup) warmupRss = r;
      if (i === half) halfRss = r;
    }
  }
  const endRss = rssMb();
  return {
    part,
    count: n,
    warmupRss,
    halfRss,
    endRss,
    maxRss: Math.max(maxRss, endRss),
    seconds: (performance.now() - started) / 1000,
  };
}

async function cifarModel(seed = 1): Promise<Model> {
  return createModel({ arch: 'cifar-resnet20', inChannels: 3, numClasses: 10, seed });
}

async function predictPart(n: number): Promise<Row[]> {
  const model = await cifarModel();
  const x = { data: Float32Array.from(pseudoRandomBytes(3 * 32 * 32, 1), (v) => v / 255), shape: [1, 3, 32, 32] };
  const sharp = (await import('sharp')).default;
  const png = await sharp(Buffer.from(pseudoRandomBytes(32 * 32 * 3, 2)), {
    raw: { width: 32, height: 32, channels: 3 },
  })
    .png()
    .toBuffer();
  const rows = [
    await soak('predict()', n, n / 10, async () => void (await model.predict(x, { topK: 3 }))),
    await soak('predictImage() of PNG bytes', n, n / 10, async () => void (await model.predictImage(png, { topK: 3 }))),
  ];
  model.dispose();
  return rows;
}

async function trainPart(n: number): Promise<Row[]> {
  const data = await fromArrays({
    images: pseudoRandomBytes(256 * 3 * 16 * 16, 3),
    shape: [256, 3, 16, 16],
    labels: Array.from({ length: 256 }, (_, i) => i % 10),
    numClasses: 10,
  });
  const validation = await data.subset(Array.from({ length: 64 }, (_, i) => i));
  const model = await cifarModel();
  const half = n / 2;
  // One long run: RSS sampled from its progress events.
  const started = performance.now();
  let warmupRss = 0,
    halfRss = 0,
    maxRss = 0;
  await train(model, data, {
    iterations: half,
    batchSize: 8,
    logEvery: Math.max(1, half / 50),
    evalEvery: { iterations: Math.max(1, half / 10) },
    validation,
    onProgress: (e) => {
      if (e.kind !== 'iteration') return;
      const r = rssMb();
      maxRss = Math.max(maxRss, r);
      if (e.iteration === half / 10) warmupRss = r;
      if (e.iteration === half / 2) halfRss = r;
    },
  });
  const one: Row = {
    part: 'train(), one run',
    count: half,
    warmupRss,
    halfRss,
    endRss: rssMb(),
    maxRss: Math.max(maxRss, rssMb()),
    seconds: (performance.now() - started) / 1000,
  };
  const runs = half / 100;
  const many = await soak(`train(), ${runs} runs of 100`, runs, runs / 10, async () => {
    await train(model, data, {
      iterations: 100,
      batchSize: 8,
      logEvery: 50,
      evalEvery: { iterations: 50 },
      validation,
    });
  });
  model.dispose();
  data.dispose();
  validation.dispose();
  return [one, { ...many, count: runs * 100 }];
}

async function lifecyclePart(cycles: number): Promise<Row[]> {
  const x = { data: new Float32Array(3 * 32 * 32).fill(0.5), shape: [1, 3, 32, 32] };
  const models = await soak('createModel + forward + dispose', cycles, cycles / 10, async (i) => {
    const m = await cifarModel(i);
    await m.forward(x);
    m.dispose();
  });
  const images = pseudoRandomBytes(512 * 3 * 32 * 32, 4);
  const datasets = await soak('fromArrays + subset + dispose', cycles, cycles / 10, async () => {
    const d = await fromArrays({ images, shape: [512, 3, 32, 32], labels: new Int32Array(512), numClasses: 10 });
    const s = await d.subset([0, 1, 2, 3]);
    await d.stats();
    d.dispose();
    s.dispose();
  });
  return [models, datasets];
}

async function workersPart(count: number): Promise<Row[]> {
  const entry = JSON.stringify(path.join(__dirname, '..', 'lib', 'index.js'));
  const script = `
    const { parentPort } = require('worker_threads');
    const r = require(${entry});
    (async () => {
      const images = new Uint8Array(64 * 3 * 16 * 16).map((_, i) => (i * 31) % 251);
      const data = await r.fromArrays({ images, shape: [64, 3, 16, 16], labels: Array.from({ length: 64 }, (_, i) => i % 4) });
      const m = await r.createModel({ arch: 'cifar-resnet20', inChannels: 3, numClasses: 4, seed: 1 });
      await r.train(m, data, { iterations: 1000000, batchSize: 16, logEvery: 1,
        onProgress: (e) => e.kind === 'iteration' && parentPort.postMessage(e.iteration) });
    })();`;
  let terminatedAt = 0;
  const row = await soak('worker terminated mid-training', count, count / 10, async (i) => {
    const worker = new Worker(script, { eval: true });
    const stopAfter = 1 + (i % 5); // iterations before the terminate, varied
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (it: number) => it >= stopAfter && resolve());
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the worker exited by itself (${code})`)));
    });
    await worker.terminate();
    terminatedAt++;
  });
  if (terminatedAt !== count) throw new Error(`${terminatedAt} of ${count} workers were terminated`);
  return [row];
}

async function main(): Promise<void> {
  const n = Number(argValue('n', '10000'));
  const parts = argValue('parts', 'predict,train,lifecycle,workers').split(',');
  const bound = Number(argValue('bound-mb', '64'));
  const rows: Row[] = [];
  const started = rssMb();
  if (parts.includes('predict')) rows.push(...(await predictPart(n)));
  if (parts.includes('train')) rows.push(...(await trainPart(2 * n)));
  if (parts.includes('lifecycle')) rows.push(...(await lifecyclePart(n / 10)));
  if (parts.includes('workers')) rows.push(...(await workersPart(n / 100)));
  const growth = (r: Row) => r.endRss - r.warmupRss;
  console.log(`RSS at start ${started.toFixed(0)} MiB; growth bound ${bound} MiB after warm-up (the first tenth)`);
  console.log(
    formatTable(
      [
        'part',
        'count',
        'RSS after warm-up MiB',
        'at half',
        'at end',
        'growth MiB',
        'second half MiB',
        'max MiB',
        's',
        'within bound',
      ],
      rows.map((r) => [
        r.part,
        r.count,
        r.warmupRss.toFixed(0),
        r.halfRss.toFixed(0),
        r.endRss.toFixed(0),
        growth(r).toFixed(1),
        (r.endRss - r.halfRss).toFixed(1),
        r.maxRss.toFixed(0),
        r.seconds.toFixed(0),
        growth(r) <= bound ? 'yes' : 'NO',
      ]),
    ),
  );
  if (rows.some((r) => growth(r) > bound)) process.exitCode = 1;
}

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
