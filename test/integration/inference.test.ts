// Inference for services: predictImage from bytes and raw pixels, normalised by hand here as the reference;
// weights files that carry their preprocessing; the dynamic batcher under concurrency, aborts, deadlines, limits.
import * as path from 'path';

import {
  AbortError,
  CheckpointError,
  DeadlineError,
  DisposedError,
  ImageError,
  OverloadedError,
  Tensor,
  createBatcher,
  createModel,
  decodeImage,
  loadModel,
} from '../../lib';
import { readSafetensors, typedArrayOf, writeSafetensors } from '../../lib/io/safetensors';
import { pngBytes } from '../../harness/fixtures';
import { maxAbsDiff, randomFloats, tempDir } from '../../harness/files';
import { rejection } from '../helpers/errors';
import { pseudoRandomBytes } from '../../harness/synthetic';

const MEAN = [0.5, 0.4, 0.3];
const STD = [0.25, 0.2, 0.15];

/** HWC pixels -> the normalised CHW tensor, computed here from the definition. */
function byHand(hwc: Uint8Array, h: number, w: number): Float32Array {
  const out = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < h * w; i++) out[c * h * w + i] = (hwc[i * 3 + c] / 255 - MEAN[c]) / STD[c];
  return out;
}

async function cifarModel(classes = 4) {
  const model = await createModel({
    arch: 'cifar-resnet20',
    numClasses: classes,
    seed: 5,
    classNames: Array.from({ length: classes }, (_, i) => `class${i}`),
  });
  model.preprocessing = { normalize: 'per-channel', mean: MEAN, meanShape: [3], std: STD, inputSize: [32, 32] };
  return model;
}

describe('predictImage: bytes and raw pixels to classes, prepared as in training', () => {
  it('a PNG at the training size gives the probabilities of predict() on pixels normalised by hand', async () => {
    const model = await cifarModel();
    const pixels = pseudoRandomBytes(32 * 32 * 3, 7);
    const png = pngBytes(32, 32, 3, pixels); // encoded here, not by sharp
    const got = await model.predictImage(png, { topK: 4 });
    const expected = (await model.predict({ data: byHand(pixels, 32, 32), shape: [1, 3, 32, 32] }, { topK: 4 }))[0];
    expect(got.map((p) => p.label)).toEqual(expected.map((p) => p.label));
    for (let i = 0; i < 4; i++) expect(got[i].probability).toBeCloseTo(expected[i].probability, 6);
    // Raw interleaved pixels and a Uint8Array view of the bytes give the same answer.
    const raw = await model.predictImage({ data: pixels, width: 32, height: 32, channels: 3 }, { topK: 4 });
    expect(raw).toEqual(got);
    const view = new Uint8Array(Buffer.concat([Buffer.alloc(5), png]).buffer, 5, png.length);
    expect(await model.predictImage(view, { topK: 4 })).toEqual(got);
  });

  it('the batch form answers each image as the single form does; other sizes are resized to the training size', async () => {
    const model = await cifarModel();
    const images = [0, 1, 2].map((s) => pngBytes(32, 32, 3, pseudoRandomBytes(32 * 32 * 3, s)));
    const batch = await model.predictImages(images, { topK: 2 });
    for (let i = 0; i < 3; i++) {
      const one = await model.predictImage(images[i], { topK: 2 });
      expect(batch[i].map((p) => p.index)).toEqual(one.map((p) => p.index));
      expect(batch[i][0].probability).toBeCloseTo(one[0].probability, 5);
    }
    // A uniform 100x60 image: resized and cropped it is the same colour, so the same as a uniform 32x32.
    const colour = (w: number, h: number) =>
      pngBytes(
        w,
        h,
        3,
        new Uint8Array(w * h * 3).map((_, i) => [200, 90, 30][i % 3]),
      );
    const big = await model.predictImage(colour(100, 60), { topK: 4 });
    const small = await model.predictImage(colour(32, 32), { topK: 4 });
    expect(big.map((p) => p.index)).toEqual(small.map((p) => p.index));
    expect(big[0].probability).toBeCloseTo(small[0].probability, 5);
  });

  it('decodeImage takes bytes, raw pixels and paths; bad input is an ImageError naming it and its reason', async () => {
    const pixels = pseudoRandomBytes(4 * 2 * 3, 3);
    const planar = await decodeImage(pngBytes(4, 2, 3, pixels), { height: 2, width: 4, channels: 3 });
    expect(planar[0]).toBe(pixels[0]); // R of pixel 0
    expect(planar[8]).toBe(pixels[1]); // G of pixel 0, the second plane
    const model = await cifarModel();
    const notImage = await rejection(model.predictImage(Buffer.from('GIF89a, but not really')));
    expect(notImage).toBeInstanceOf(ImageError);
    expect(notImage).toMatchObject({ source: 'image', reason: 'undecodable' });
    const png = pngBytes(32, 32, 3, pseudoRandomBytes(32 * 32 * 3, 1));
    const truncated = await rejection(model.predictImages([png, png.subarray(0, png.length - 30)]));
    expect(truncated).toMatchObject({ source: 'images[1]', reason: 'undecodable' });
    expect(await rejection(model.predictImage(new Uint8Array(0)))).toMatchObject({ reason: 'undecodable' });
    const wrong = await rejection(model.predictImage({ data: new Uint8Array(10), width: 2, height: 2, channels: 3 }));
    expect(wrong).toMatchObject({ reason: 'wrong-shape' });
    expect(wrong.message).toMatch(/holds 10 bytes, but 2x2x3 raw pixels need 12/);
    // A header claiming 100000 x 100000 pixels is refused before anything is decoded.
    const header = pngBytes(1, 1, 1, new Uint8Array(1));
    header.writeUInt32BE(100000, 16);
    header.writeUInt32BE(100000, 20);
    const huge = await rejection(model.predictImage(header, { maxPixels: 1_000_000 }));
    expect(huge).toBeInstanceOf(ImageError);
    const big = await rejection(model.predictImage(pngBytes(2000, 1000, 1, new Uint8Array(2e6)), { maxPixels: 1e6 }));
    expect(big).toMatchObject({ reason: 'too-large' });
    expect(await rejection(model.predictImage(png, { topK: 9 }))).toMatchObject({ field: 'topK' });
  });
});

describe('weights files carry what a service needs', () => {
  it('saveWeights + loadModel keep the spec, class names and preprocessing; predictions are unchanged', async () => {
    const dir = await tempDir();
    const model = await cifarModel();
    const file = path.join(dir, 'w.safetensors');
    await model.saveWeights(file);
    const loaded = await loadModel(file);
    expect(loaded.preprocessing).toEqual(model.preprocessing);
    expect(loaded.classNames).toEqual(model.classNames);
    expect(loaded.imageSize).toEqual([32, 32]);
    const png = pngBytes(32, 32, 3, pseudoRandomBytes(32 * 32 * 3, 9));
    expect(await loaded.predictImage(png)).toEqual(await model.predictImage(png));
  });

  it('malformed preprocessing metadata is a CheckpointError naming the file, never NaN predictions', async () => {
    const dir = await tempDir();
    const model = await cifarModel();
    const good = path.join(dir, 'w.safetensors');
    await model.saveWeights(good);
    const { tensors, metadata } = await readSafetensors(good);
    const entries = [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: typedArrayOf(t) }));
    const cases: [string, string, RegExp][] = [
      ['short-mean', JSON.stringify({ ...model.preprocessing, mean: [0.5] }), /mean has 1 values, expected 3/],
      ['not-json', '{"normalize":', /not valid JSON/],
      ['bad-kind', JSON.stringify({ normalize: 'sometimes' }), /normalize/],
      ['zero-std', JSON.stringify({ ...model.preprocessing, std: [0, 1, 1] }), /std/],
    ];
    for (const [name, value, message] of cases) {
      const file = path.join(dir, `${name}.safetensors`);
      await writeSafetensors(file, entries as never, { ...metadata, 'resnet-torch.preprocessing': value });
      const error = await rejection(loadModel(file));
      expect(error).toBeInstanceOf(CheckpointError);
      expect(error.file).toBe(file);
      expect(error.message).toMatch(message);
    }
  });
});

describe('createBatcher: concurrent requests share forwards', () => {
  const one = (seed: number, size = 32): Tensor => ({
    data: randomFloats(3 * size * size, seed),
    shape: [1, 3, size, size],
  });

  it('each caller gets its own logits, equal to a lone forward, in fewer forwards than requests', async () => {
    const model = await cifarModel(10);
    const fused = await model.optimizeForInference();
    const sizes: number[] = [];
    const batcher = createBatcher(fused, { maxBatch: 8, maxDelayMs: 20, onBatch: (b) => sizes.push(b.size) });
    const inputs = Array.from({ length: 20 }, (_, i) => one(i + 1));
    const results = await Promise.all(inputs.map((x) => batcher.forward(x)));
    for (let i = 0; i < inputs.length; i++) {
      const alone = await fused.forward(inputs[i]);
      expect(results[i].shape).toEqual([1, 10]);
      expect(maxAbsDiff(results[i].data, alone.data)).toBeLessThan(1e-5);
    }
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.max(...sizes)).toBe(8);
    expect(sizes.length).toBeLessThanOrEqual(4);
    // Requests of another image size go in batches of their own.
    const mixed = await Promise.all([batcher.forward(one(1)), batcher.forward(one(2, 40)), batcher.forward(one(3))]);
    expect(maxAbsDiff(mixed[1].data, (await model.eval().forward(one(2, 40))).data)).toBeLessThan(1e-4);
    await batcher.close();
  });

  it('aborted and late requests fail alone; a full queue refuses at once; close drains, then refuses', async () => {
    const model = await cifarModel(10);
    const fused = await model.optimizeForInference();
    const batcher = createBatcher(fused, { maxBatch: 4, maxDelayMs: 50, maxQueue: 4 });
    const controller = new AbortController();
    const kept = [batcher.forward(one(1)), batcher.forward(one(2))];
    const aborted = batcher.forward(one(3), { signal: controller.signal });
    const late = batcher.forward(one(4), { timeoutMs: 1 });
    controller.abort();
    expect(await rejection(aborted)).toBeInstanceOf(AbortError);
    expect(await rejection(late)).toBeInstanceOf(DeadlineError);
    const more = [batcher.forward(one(5)), batcher.forward(one(6)), batcher.forward(one(7)), batcher.forward(one(8))];
    const full = await rejection(batcher.forward(one(9)));
    expect(full).toBeInstanceOf(OverloadedError);
    expect(full.message).toMatch(/4 images waiting, maxQueue 4/); // the 4 in flight do not count
    expect(batcher.stats().rejected).toBe(1);
    const closing = batcher.close();
    expect(await rejection(batcher.forward(one(10)))).toBeInstanceOf(DisposedError);
    await closing;
    const answered = await Promise.all([...kept, ...more]);
    for (const [i, t] of answered.entries())
      expect(maxAbsDiff(t.data, (await fused.forward(one([1, 2, 5, 6, 7, 8][i]))).data)).toBeLessThan(1e-5);
    // The aborted and the late request were already in the first forward: their rows were computed, then dropped.
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, images: 8, batches: 2 });
    const signal = AbortSignal.abort();
    expect(await rejection(createBatcher(fused).forward(one(1), { signal }))).toBeInstanceOf(AbortError);
  });

  it('predictImage through a batcher equals the model, and bad options are refused', async () => {
    const model = await cifarModel(10);
    const fused = await model.optimizeForInference();
    const batcher = createBatcher(fused, { maxDelayMs: 5 });
    const png = pngBytes(32, 32, 3, pseudoRandomBytes(32 * 32 * 3, 4));
    const [a, b] = await Promise.all([batcher.predictImage(png, { topK: 3 }), fused.predictImage(png, { topK: 3 })]);
    expect(a.map((p) => p.label)).toEqual(b.map((p) => p.label));
    expect(a[0].probability).toBeCloseTo(b[0].probability, 5);
    expect(() => createBatcher(fused, { maxBatch: 0 })).toThrow(/maxBatch/);
    expect(() => createBatcher({} as never)).toThrow(/a Model or an InferenceModel/);
    expect(await rejection(createBatcher(model).predictImage(png))).toMatchObject({ field: 'model' });
    await batcher.close();
  });
});
