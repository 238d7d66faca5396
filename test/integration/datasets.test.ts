// Dataset readers on fixture files written byte by byte (valid and broken), and on the real Fashion-MNIST.
import { createHash } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';

import sharp from 'sharp';

import { DatasetError, ValidationError, createModel, datasets, fromArrays, train } from '../../lib';
import { cifarRecord, idxBytes, pngBytes, pngFolder, writeFiles } from '../../harness/fixtures';
import { tempDir } from '../../harness/files';
import { rejection } from '../helpers/errors';

async function rejectsWith(promise: Promise<unknown>, file: string, pattern: RegExp) {
  const e = await rejection(promise);
  expect(e).toBeInstanceOf(DatasetError);
  expect(e.file).toBe(file);
  expect(e.message).toMatch(pattern);
}

/** A valid MNIST-layout folder: n images of h×w with pixel (i, y, x) = (i + 3y + 5x) mod 256, labels i mod 10. */
async function mnistFolder(
  n: number,
  h: number,
  w: number,
  gzip: boolean,
  overrides: Record<string, Buffer> = {},
): Promise<string> {
  const dir = await tempDir();
  const pixels = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) pixels[(i * h + y) * w + x] = (i + 3 * y + 5 * x) % 256;
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  const z = (b: Buffer) => (gzip ? zlib.gzipSync(b) : b);
  const ext = gzip ? '.gz' : '';
  const files: Record<string, Buffer> = {
    [`train-images-idx3-ubyte${ext}`]: z(idxBytes(0x08, [n, h, w], pixels)),
    [`train-labels-idx1-ubyte${ext}`]: z(idxBytes(0x08, [n], labels)),
    ...overrides,
  };
  await writeFiles(dir, files);
  return dir;
}

describe('IDX (MNIST layout)', () => {
  for (const gzip of [false, true]) {
    it(`reads ${gzip ? 'gzipped' : 'raw'} files: shape, pixels and labels exactly`, async () => {
      const dir = await mnistFolder(12, 5, 4, gzip);
      const d = await datasets.mnist({ path: dir });
      expect(d.length).toBe(12);
      expect(d.shape).toEqual([1, 5, 4]);
      expect(d.numClasses).toBe(10);
      const { images, labels } = d.get(7, 1);
      expect(labels).toEqual([7]);
      expect(images[2 * 4 + 3]).toBe((7 + 3 * 2 + 5 * 3) % 256);
      expect(d.labelCounts()).toEqual([2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    });
  }
  it("computes the per-pixel mean and per-channel mean/std by hand's arithmetic", async () => {
    const dir = await mnistFolder(4, 2, 2, false);
    const st = await (await datasets.mnist({ path: dir })).stats();
    // pixel (i, y, x) = i + 3y + 5x over i = 0..3: mean image = 1.5 + 3y + 5x
    expect(Array.from(st.meanImage, (v) => Math.round(v * 255 * 1000) / 1000)).toEqual([1.5, 6.5, 4.5, 9.5]);
    const values = [0, 1, 2, 3].flatMap((i) => [0, 1].flatMap((y) => [0, 1].map((x) => (i + 3 * y + 5 * x) / 255)));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
    expect(Math.abs(st.channelMean[0] - mean) < 1e-6 && Math.abs(st.channelStd[0] - std) < 1e-6).toBeTruthy();
  });
  const img = (n: number) => idxBytes(0x08, [n, 2, 2], new Uint8Array(n * 4));
  const lab = (values: number[]) => idxBytes(0x08, [values.length], Uint8Array.from(values));
  const broken: [string, Record<string, Buffer>, string, RegExp][] = [
    ['a missing label file', { 'train-images-idx3-ubyte': img(3) }, 'train-labels-idx1-ubyte.gz', /missing/],
    [
      'a truncated image file',
      { 'train-images-idx3-ubyte': img(3).subarray(0, 20), 'train-labels-idx1-ubyte': lab([0, 1, 2]) },
      'train-images-idx3-ubyte',
      /truncated: dimensions \[3, 2, 2\] need 12 bytes of data, the file has 4/,
    ],
    [
      'a file cut inside its header',
      { 'train-images-idx3-ubyte': img(3).subarray(0, 10), 'train-labels-idx1-ubyte': lab([0, 1, 2]) },
      'train-images-idx3-ubyte',
      /truncated inside the header/,
    ],
    [
      'a wrong magic number',
      {
        'train-images-idx3-ubyte': Buffer.concat([Buffer.from([1, 2, 3, 4]), img(3).subarray(4)]),
        'train-labels-idx1-ubyte': lab([0, 1, 2]),
      },
      'train-images-idx3-ubyte',
      /wrong magic number 0x01020304/,
    ],
    [
      'a wrong dimension count',
      {
        'train-images-idx3-ubyte': idxBytes(0x08, [12], new Uint8Array(12)),
        'train-labels-idx1-ubyte': lab([0, 1, 2]),
      },
      'train-images-idx3-ubyte',
      /images must have 3 dimensions \(N, H, W\) or 4/,
    ],
    [
      'labels of rank 2',
      {
        'train-images-idx3-ubyte': img(3),
        'train-labels-idx1-ubyte': idxBytes(0x08, [3, 1], Uint8Array.from([0, 1, 2])),
      },
      'train-labels-idx1-ubyte',
      /labels must have 1 dimension/,
    ],
    [
      'image and label counts that differ',
      { 'train-images-idx3-ubyte': img(3), 'train-labels-idx1-ubyte': lab([0, 1]) },
      'train-labels-idx1-ubyte',
      /2 labels for 3 images/,
    ],
    [
      'a label out of range',
      { 'train-images-idx3-ubyte': img(3), 'train-labels-idx1-ubyte': lab([0, 10, 2]) },
      'train-labels-idx1-ubyte',
      /label 10 of image 1 is out of range for 10 classes/,
    ],
    [
      'bytes after the data',
      {
        'train-images-idx3-ubyte': Buffer.concat([img(3), Buffer.alloc(5)]),
        'train-labels-idx1-ubyte': lab([0, 1, 2]),
      },
      'train-images-idx3-ubyte',
      /5 bytes after the data/,
    ],
    [
      'a corrupt gzip stream',
      {
        'train-images-idx3-ubyte.gz': zlib.gzipSync(img(3)).subarray(0, 15),
        'train-labels-idx1-ubyte': lab([0, 1, 2]),
      },
      'train-images-idx3-ubyte.gz',
      /gzip data is corrupt or truncated/,
    ],
  ];
  for (const [name, files, bad, pattern] of broken) {
    it(`refuses ${name}, naming the file`, async () => {
      const dir = await tempDir();
      await writeFiles(dir, files);
      await rejectsWith(datasets.mnist({ path: dir }), path.join(dir, bad), pattern);
    });
  }
  it('names a missing folder', async () => {
    await rejectsWith(datasets.mnist({ path: '/nonexistent/mnist' }), '/nonexistent/mnist', /no such folder/);
  });
});

describe("Fashion-MNIST from Debian's dataset-fashion-mnist", () => {
  it('has 60,000 training and 10,000 test images of 28x28, 6,000 and 1,000 per class, and the known statistics', async () => {
    const tr = await datasets.fashionMnist({ split: 'train' });
    const te = await datasets.fashionMnist({ split: 'test' });
    expect(tr.length).toBe(60000);
    expect(te.length).toBe(10000);
    expect(tr.shape).toEqual([1, 28, 28]);
    expect(tr.labelCounts()).toEqual(new Array(10).fill(6000));
    expect(te.labelCounts()).toEqual(new Array(10).fill(1000));
    expect(tr.classNames[9]).toBe('Ankle boot');
    const st = await tr.stats();
    expect(Math.abs(st.channelMean[0] * 255 - 72.94)).toBeLessThan(0.01);
    expect(Math.abs(st.channelStd[0] * 255 - 90.02)).toBeLessThan(0.01);
  });
  it('a folder given as a bare string is refused, not read as "no options" (which would load the default folder)', async () => {
    const e = await rejection(datasets.fashionMnist('/some/dir' as never));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toBe('fashionMnist(options): expected an object such as { path: "/some/dir" }, got a string');
    await expect(datasets.mnist('/some/dir' as never)).rejects.toThrow(/mnist\(options\): expected an object/);
    await expect(datasets.cifar10('/some/dir' as never)).rejects.toThrow(ValidationError);
  });
});

describe('CIFAR-10 and CIFAR-100 binary files', () => {
  // Pixel value = plane offset + position: R planes hold 0..., G 85+..., B 170+...: any channel mix-up shows.
  const pixel = (i: number) => (c: number, y: number, x: number) => (c * 85 + y * 2 + x + i) % 256;
  async function cifar10Folder(perBatch: number, overrides: Record<string, Buffer | string> = {}): Promise<string> {
    const dir = await tempDir();
    const files: Record<string, Buffer | string> = {
      'batches.meta.txt': 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n',
    };
    for (let b = 1; b <= 5; b++)
      files[`data_batch_${b}.bin`] = Buffer.concat(
        Array.from({ length: perBatch }, (_, i) => cifarRecord([(b + i) % 10], pixel(b * 10 + i))),
      );
    files['test_batch.bin'] = Buffer.concat([cifarRecord([3], pixel(99)), cifarRecord([9], pixel(98))]);
    await writeFiles(dir, { ...files, ...overrides });
    return dir;
  }
  it('round trip: pixels come back exactly, in C×H×W order (R, then G, then B), with the labels', async () => {
    const dir = await cifar10Folder(3);
    const tr = await datasets.cifar10({ path: dir });
    expect(tr.length).toBe(15);
    expect(tr.shape).toEqual([3, 32, 32]);
    expect(tr.classNames[3]).toBe('cat');
    for (const [index, batch, i] of [
      [0, 1, 0],
      [4, 2, 1],
      [14, 5, 2],
    ]) {
      const { images, labels } = tr.get(index, 1);
      expect(labels[0]).toBe((batch + i) % 10);
      const p = pixel(batch * 10 + i);
      for (const [c, y, x] of [
        [0, 0, 0],
        [0, 31, 31],
        [1, 5, 7],
        [2, 30, 1],
      ])
        expect(images[c * 1024 + y * 32 + x]).toBe(p(c, y, x));
    }
    const te = await datasets.cifar10({ path: dir, split: 'test' });
    expect(te.get(0, 2).labels).toEqual([3, 9]);
  });
  it('CIFAR-100 with fine and coarse labels', async () => {
    const dir = await tempDir();
    await writeFiles(dir, {
      'train.bin': Buffer.concat([cifarRecord([4, 72], pixel(1)), cifarRecord([19, 99], pixel(2))]),
      'test.bin': cifarRecord([0, 0], pixel(3)),
      'fine_label_names.txt': Array.from({ length: 100 }, (_, i) => `fine${i}`).join('\n'),
      'coarse_label_names.txt': Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n'),
    });
    const fine = await datasets.cifar100({ path: dir });
    expect(fine.get(0, 2).labels).toEqual([72, 99]);
    expect(fine.numClasses).toBe(100);
    const coarse = await datasets.cifar100({ path: dir, labels: 'coarse' });
    expect(coarse.get(0, 2).labels).toEqual([4, 19]);
    expect(coarse.classNames[19]).toBe('coarse19');
    expect(coarse.get(1, 1).images[1024 + 3]).toBe(pixel(2)(1, 0, 3));
  });
  it('refuses a truncated batch, a label out of range, a missing batch and a wrong class-name count', async () => {
    let dir = await cifar10Folder(2, { 'data_batch_3.bin': cifarRecord([1], pixel(0)).subarray(0, 3000) });
    await rejectsWith(
      datasets.cifar10({ path: dir }),
      path.join(dir, 'data_batch_3.bin'),
      /3000 bytes is not a whole number of 3073-byte records/,
    );
    dir = await cifar10Folder(2, {
      'data_batch_2.bin': Buffer.concat([cifarRecord([1], pixel(0)), cifarRecord([12], pixel(0))]),
    });
    await rejectsWith(
      datasets.cifar10({ path: dir }),
      path.join(dir, 'data_batch_2.bin'),
      /label 12 of record 1 is out of range for 10 classes/,
    );
    dir = await cifar10Folder(2);
    await fsp.rm(path.join(dir, 'data_batch_4.bin'));
    await rejectsWith(datasets.cifar10({ path: dir }), path.join(dir, 'data_batch_4.bin'), /missing/);
    dir = await cifar10Folder(2, { 'batches.meta.txt': 'a\nb\n' });
    await rejectsWith(
      datasets.cifar10({ path: dir }),
      path.join(dir, 'batches.meta.txt'),
      /2 class names, expected 10/,
    );
    dir = await cifar10Folder(2, { 'test_batch.bin': Buffer.alloc(0) });
    await rejectsWith(datasets.cifar10({ path: dir, split: 'test' }), path.join(dir, 'test_batch.bin'), /empty file/);
  });
});

describe('image folders', () => {
  // 3 classes; PNGs written byte by byte, JPEG and WebP encoded by sharp.
  async function folder(): Promise<string> {
    const dir = await tempDir();
    const grey = (w: number, h: number, f: (x: number, y: number) => number) =>
      pngBytes(
        w,
        h,
        1,
        Uint8Array.from({ length: w * h }, (_, i) => f(i % w, Math.floor(i / w))),
      );
    const rgb = new Uint8Array(4 * 4 * 3).map((_, i) => (i * 17) % 256);
    await writeFiles(dir, {
      'cat/a.png': grey(4, 4, (x, y) => 10 * y + x),
      'cat/b.PNG': grey(8, 4, (x) => x * 30), // wider: cover crops the centre 4 columns after resizing to 8x4 -> 4x4? (height fits)
      'dog/c.png': pngBytes(4, 4, 3, rgb),
      'dog/notes.txt': 'not an image',
      'emu/d.jpg': await sharp({ create: { width: 6, height: 6, channels: 3, background: { r: 200, g: 100, b: 50 } } })
        .jpeg({ quality: 95 })
        .toBuffer(),
      'emu/e.webp': await sharp({ create: { width: 5, height: 7, channels: 3, background: { r: 0, g: 0, b: 255 } } })
        .webp({ lossless: true })
        .toBuffer(),
    });
    return dir;
  }
  it('reads classes from sorted sub-folders, resizes and converts, and keeps exact PNG pixels at native size', async () => {
    const dir = await folder();
    const d = await datasets.imageFolder({ path: dir, size: 4, channels: 1 });
    expect(d.classNames).toEqual(['cat', 'dog', 'emu']);
    expect(d.length).toBe(5);
    expect(d.shape).toEqual([1, 4, 4]);
    expect(d.get(0, 5).labels).toEqual([0, 0, 1, 2, 2]);
    expect(Array.from(d.get(0, 1).images)).toEqual([0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33]);
    const rgb = await datasets.imageFolder({ path: dir, size: [4, 4], channels: 3 });
    expect(rgb.shape).toEqual([3, 4, 4]);
    const c = rgb.get(2, 1).images; // the RGB PNG, planar now
    for (let i = 0; i < 16; i++) for (let ch = 0; ch < 3; ch++) expect(c[ch * 16 + i]).toBe(((i * 3 + ch) * 17) % 256);
    const grey = rgb.get(0, 1).images; // a grey PNG in RGB: three equal planes
    expect(Array.from(grey.subarray(0, 16))).toEqual(Array.from(grey.subarray(32, 48)));
    const jpeg = rgb.get(3, 1).images;
    expect(Math.abs(jpeg[0] - 200) <= 3 && Math.abs(jpeg[16] - 100) <= 3 && Math.abs(jpeg[32] - 50) <= 3).toBeTruthy();
    expect(rgb.get(4, 1).images[40]).toBe(255);
  });
  it('an undecodable image fails with its path by default; with onBadImage "skip" it is left out, warned and counted', async () => {
    const dir = await folder();
    await writeFiles(dir, {
      'dog/broken.jpg': Buffer.from('this is not a jpeg at all'),
      'emu/cut.png': pngBytes(4, 4, 1, new Uint8Array(16)).subarray(0, 40),
    });
    await rejectsWith(
      datasets.imageFolder({ path: dir, size: 4 }),
      path.join(dir, 'dog', 'broken.jpg'),
      /cannot decode the image/,
    );
    const warnings: string[] = [];
    const d = await datasets.imageFolder({
      path: dir,
      size: 4,
      onBadImage: 'skip',
      onWarning: (m) => warnings.push(m),
    });
    expect(d.length).toBe(5);
    expect(d.skipped.sort()).toEqual([path.join(dir, 'dog', 'broken.jpg'), path.join(dir, 'emu', 'cut.png')]);
    expect(warnings.length).toBe(2);
  });
  it('refuses an empty class folder, a folder without class folders, and a missing folder', async () => {
    const dir = await folder();
    await fsp.mkdir(path.join(dir, 'fox'));
    await writeFiles(dir, { 'fox/readme.txt': 'no images here' });
    await rejectsWith(datasets.imageFolder({ path: dir, size: 4 }), path.join(dir, 'fox'), /empty class folder/);
    const flat = await tempDir();
    await writeFiles(flat, { 'a.png': pngBytes(2, 2, 1, new Uint8Array(4)) });
    await rejectsWith(datasets.imageFolder({ path: flat, size: 2 }), flat, /no class sub-folders/);
    await rejectsWith(
      datasets.imageFolder({ path: path.join(flat, 'nope'), size: 2 }),
      path.join(flat, 'nope'),
      /no such folder/,
    );
    await expect(datasets.imageFolder({ path: flat, size: 0 })).rejects.toThrow(ValidationError);
  });

  it('a streamed folder trains to the same weights as the same folder in memory (same order, same seeds)', async () => {
    const dir = await pngFolder(48);
    const hash = async (data: datasets.Dataset | datasets.StreamingDataset) => {
      const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 4 });
      const r = await train(model, data, {
        epochs: 3,
        batchSize: 8,
        shuffle: false,
        deterministic: true,
        augment: { padCrop: 2, flip: true },
        normalize: 'none',
      });
      expect(r.iteration).toBe(18);
      const h = createHash('sha256');
      for (const t of await model.handle().exportState())
        h.update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      return h.digest('hex');
    };
    const inMemory = await hash(await datasets.imageFolder({ path: dir, size: 8, channels: 1 }));
    const streamed = await hash(await datasets.streamImageFolder({ path: dir, size: 8, channels: 1 }));
    expect(streamed).toBe(inMemory);
  });
  it('a streamed folder shuffles per epoch, overlaps decoding with training, and stops on an undecodable image with its path', async () => {
    const dir = await pngFolder(60);
    const stream = await datasets.streamImageFolder({ path: dir, size: 8, channels: 1 });
    const { train: tr, validation } = stream.split({ validation: 12, seed: 3 });
    expect(tr.length + validation.length).toBe(60);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 4 });
    const r = await train(model, tr, { epochs: 2, batchSize: 8, validation, augment: { flip: true } });
    expect(r.iteration).toBe(12);
    expect(r.evaluations.val!.count).toBe(12);
    await writeFiles(dir, { 'c1/zzz-broken.png': Buffer.from('garbage') });
    const broken = await datasets.streamImageFolder({ path: dir, size: 8, channels: 1 });
    await rejectsWith(
      train(model, broken, { epochs: 2, batchSize: 8 }).done,
      path.join(dir, 'c1', 'zzz-broken.png'),
      /cannot decode/,
    );
  });
});

describe('arrays, subsets and splits', () => {
  it('fromArrays takes Uint8Array pixels or Float32Array values and checks lengths and labels', async () => {
    const f = await fromArrays({
      images: new Float32Array(2 * 4).fill(0.5),
      shape: [2, 1, 2, 2],
      labels: [0, 1],
      classNames: ['a', 'b'],
    });
    expect(f.dtype).toBe('float32');
    expect(Array.from(f.get(1, 1).images)).toEqual([0.5, 0.5, 0.5, 0.5]);
    await expect(fromArrays({ images: new Uint8Array(7), shape: [2, 1, 2, 2], labels: [0, 1] })).rejects.toThrow(
      /images hold 7 values, shape \[2, 1, 2, 2\] needs 8/,
    );
    await expect(fromArrays({ images: new Uint8Array(8), shape: [2, 1, 2, 2], labels: [0] })).rejects.toThrow(
      /2 images but 1 labels/,
    );
    await expect(fromArrays({ images: new Uint8Array(8), shape: [2, 1, 2, 2], labels: [0, -1] })).rejects.toThrow(
      /label -1 of image 1 is not a class index/,
    );
    await expect(fromArrays({ images: [1, 2] as never, shape: [2, 1, 1, 1], labels: [0, 1] })).rejects.toThrow(
      ValidationError,
    );
  });
  it('splits by count or fraction, deterministically from the seed, into disjoint parts', async () => {
    const images = Uint8Array.from({ length: 100 }, (_, i) => i);
    const d = await fromArrays({ images, shape: [100, 1, 1, 1], labels: Array.from({ length: 100 }, (_, i) => i % 4) });
    const a = await d.split({ validation: 0.2, seed: 7 });
    const b = await d.split({ validation: 20, seed: 7 });
    const c = await d.split({ validation: 20, seed: 8 });
    const ids = (x: datasets.Dataset) => Array.from(x.get(0, x.length).images);
    expect(a.validation.length).toBe(20);
    expect(a.train.length).toBe(80);
    expect(ids(a.validation)).toEqual(ids(b.validation));
    expect(ids(a.validation)).not.toEqual(ids(c.validation));
    expect([...ids(a.train), ...ids(a.validation)].sort((x, y) => x - y)).toEqual(Array.from(images));
    await expect(d.split({ validation: 100 })).rejects.toThrow(ValidationError);
    const sub = await d.subset([5, 1, 99]);
    expect(Array.from(sub.get(0, 3).images)).toEqual([5, 1, 99]);
    await expect(d.subset([100])).rejects.toThrow(ValidationError);
  });
});

describe("image folders' resize-then-centre-crop (torchvision's Resize + CenterCrop)", () => {
  it('resize 16 then crop 8 keeps the middle half: the 2-pixel border of a 16x16 box is cut', async () => {
    // 16x16, grey level = 10 * ring (0 at the border ring ... 7 in the middle): resized to 16 (no change), the 8x8
    // centre crop starts at (16 - 8) / 2 = 4, so it holds rings 4..7 only.
    const ring = (x: number, y: number) => Math.min(x, y, 15 - x, 15 - y);
    const pixels = Uint8Array.from({ length: 256 }, (_, k) => 10 * ring(k % 16, Math.floor(k / 16)));
    const dir = await tempDir();
    await writeFiles(dir, { 'a/img.png': pngBytes(16, 16, 1, pixels) });
    const data = await datasets.imageFolder({ path: dir, size: 8, resize: 16, channels: 1 });
    const { images } = data.get(0, 1);
    expect(Array.from(images as Uint8Array)).toEqual(
      Array.from({ length: 64 }, (_, k) => 10 * ring((k % 8) + 4, Math.floor(k / 8) + 4)),
    );
    // Without resize the whole image is scaled to 8: the border ring survives.
    const whole = await datasets.imageFolder({ path: dir, size: 8, channels: 1 });
    expect((whole.get(0, 1).images as Uint8Array)[0]).toBeLessThan(10);
    expect(await rejection(datasets.imageFolder({ path: dir, size: 8, resize: 6 }))).toMatchObject({
      field: 'options.resize',
    });
  });
});
