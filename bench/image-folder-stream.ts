// Streaming an image folder: how fast sharp decodes (images/s) against how fast the trainer consumes, and
// how long the trainer waited for data while streaming.
//   node .test-build/bench/image-folder-stream.js [--images 2000] [--source 96] [--size 32]
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';

import sharp from 'sharp';

import { createModel, datasets, train } from '../lib';
import { argValue, formatTable } from './table';
import { describeMachine } from './machine';

async function makeFolder(count: number, side: number): Promise<string> {
  const dir = path.join(os.tmpdir(), `resnet-torch-bench-images-${count}-${side}`);
  try {
    await fsp.access(path.join(dir, 'done'));
    return dir;
  } catch {
    // build it
  }
  for (let i = 0; i < count; i++) {
    const cls = `class${i % 10}`;
    await fsp.mkdir(path.join(dir, cls), { recursive: true });
    const raw = Buffer.alloc(side * side * 3);
    for (let k = 0; k < raw.length; k++) raw[k] = (k * (i + 3) + (k >> 5) * 13) & 0xff;
    await sharp(raw, { raw: { width: side, height: side, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(path.join(dir, cls, `${i}.jpg`));
  }
  await fsp.writeFile(path.join(dir, 'done'), '');
  return dir;
}

async function main() {
  console.log(describeMachine(os.cpus().length));
  const count = Number(argValue('images', '2000'));
  const source = Number(argValue('source', '96'));
  const size = Number(argValue('size', '32'));
  const arch = argValue('arch', 'cifar-resnet20');
  const dir = await makeFolder(count, source);

  const t0 = performance.now();
  const loaded = await datasets.imageFolder({ path: dir, size });
  const decodeRate = loaded.length / ((performance.now() - t0) / 1000);

  const model = await createModel({ arch, seed: 0 });
  const inMemory = await train(model, loaded, { epochs: 1, batchSize: 64, logEvery: 1000, normalize: 'none' });

  const stream = await datasets.streamImageFolder({ path: dir, size });
  let wait = 0;
  const streamed = await train(model, stream, {
    epochs: 1,
    batchSize: 64,
    logEvery: 1000,
    normalize: 'none',
    onProgress: (e) => {
      if (e.kind === 'epoch') wait += e.dataWaitSeconds ?? 0;
    },
  });
  console.log(
    `\nImage folder of ${count} JPEGs (${source}x${source}) decoded to ${size}x${size} RGB with sharp; ${arch}, batch 64, ${os.cpus().length} cores`,
  );
  console.log(
    formatTable(
      [
        'decode (img/s)',
        'train in memory (img/s)',
        'train streamed (img/s)',
        'trainer waited for data (s)',
        'epoch (s)',
      ],
      [[decodeRate, inMemory.imagesPerSecond, streamed.imagesPerSecond, wait, streamed.elapsedSeconds]],
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
