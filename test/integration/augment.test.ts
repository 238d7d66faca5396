// TrivialAugmentWide, RandAugment and random erasing as the native loop runs them, held against torchvision's own
// code: previewAugmentation() prepares images exactly as a training batch and reports what each image drew;
// torchvision's _apply_op (the function its TrivialAugmentWide and RandAugment call) then applies the same
// operations and magnitudes to the same uint8 images (test/python/torchvision_augment.py, torchvision 0.29 in the
// project's venv, the Python that has timm). Draw statistics are checked against torchvision's magnitude bins and
// RandomErasing's sampling rule.
import * as fs from 'fs';
import * as path from 'path';

import { Dataset, ValidationError, createModel, fromArrays, previewAugmentation, train } from '../../lib';
import { parseTimmRandAugment } from '../../lib/train/options/augment';
import { tempDir } from '../../harness/files';
import { pseudoRandomBytes } from '../../harness/synthetic';
import { itWithTimm, runTimm } from '../helpers/reference';
import { rejection } from '../helpers/errors';

// Images the operations tell apart: gradients with noise of varied strength, some flat (autocontrast's and
// equalize's degenerate cases), some dark and some bright.
function images(n: number, c: number, h: number, w: number): Uint8Array {
  const noise = pseudoRandomBytes(n * c * h * w, 11);
  const out = new Uint8Array(n * c * h * w);
  for (let i = 0; i < n; i++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const k = ((i * c + ch) * h + y) * w + x;
          const base = i % 9 === 0 ? 90 + ch * 40 : ((x * (3 + (i % 5)) + y * (2 + ch)) * 255) / (w + h) / 2;
          const amp = i % 7 === 0 ? 0 : (i % 4) * 20;
          out[k] = Math.max(0, Math.min(255, Math.round(base + ((noise[k] / 255) * 2 - 1) * amp + (i % 3) * 30)));
        }
  return out;
}

async function dataset(n: number, shape: [number, number, number]): Promise<{ data: Dataset; pixels: Uint8Array }> {
  const pixels = images(n, ...shape);
  return { data: await fromArrays({ images: pixels, shape: [n, ...shape], labels: new Array(n).fill(0) }), pixels };
}

/** The preview's images back as uint8 pixels (normalize 'none': x/255). */
const toPixels = (x: Float32Array) => Uint8Array.from(x, (v) => Math.round(v * 255));

/** The images with the draws applied by a reference script (test/python/<script>: IMAGES N C H W DRAWS [extra]
 *  OUT), read back as uint8. */
async function referenceApplied(
  script: string,
  pixels: Uint8Array,
  shape: number[],
  draws: unknown,
  extra: string[] = [],
): Promise<Uint8Array> {
  const dir = await tempDir();
  fs.writeFileSync(path.join(dir, 'images.bin'), pixels);
  fs.writeFileSync(path.join(dir, 'draws.json'), JSON.stringify(draws));
  await runTimm(script, [
    path.join(dir, 'images.bin'),
    ...shape.map(String),
    path.join(dir, 'draws.json'),
    ...extra,
    path.join(dir, 'out.bin'),
  ]);
  return new Uint8Array(fs.readFileSync(path.join(dir, 'out.bin')));
}

const torchvisionApplied = (pixels: Uint8Array, shape: number[], draws: unknown) =>
  referenceApplied('torchvision_augment.py', pixels, shape, draws);

/** Per operation: images, and pixels that differ from torchvision's (and by how much at most). */
function differences(ours: Uint8Array, theirs: Uint8Array, perImage: number, names: string[][]) {
  const byOp = new Map<string, { images: number; pixels: number; worst: number }>();
  for (let i = 0; i < names.length; i++) {
    const key = names[i].join('+');
    const row = byOp.get(key) ?? { images: 0, pixels: 0, worst: 0 };
    row.images++;
    for (let k = i * perImage; k < (i + 1) * perImage; k++) {
      const d = Math.abs(ours[k] - theirs[k]);
      if (d > 0) row.pixels++;
      row.worst = Math.max(row.worst, d);
    }
    byOp.set(key, row);
  }
  return byOp;
}

describe('TrivialAugmentWide and RandAugment: torchvision pixels', () => {
  for (const shape of [
    [3, 20, 24],
    [1, 16, 16],
  ] as [number, number, number][]) {
    itWithTimm(
      `TrivialAugmentWide on ${shape.join('x')} images gives torchvision's pixels for the drawn operations`,
      async () => {
        const n = 280;
        const { data, pixels } = await dataset(n, shape);
        const preview = await previewAugmentation(data, {
          augment: { trivialAugment: true },
          normalize: 'none',
          count: n,
          seed: 5,
        });
        expect(preview.shape).toEqual([n, ...shape]);
        const names = preview.draws.map((d) => d.ops.map((o) => o.name));
        expect(new Set(names.flat()).size).toBe(14); // every operation drawn
        const theirs = await torchvisionApplied(
          pixels,
          [n, ...shape],
          preview.draws.map((d) => d.ops),
        );
        const diff = differences(toPixels(preview.images), theirs, shape[0] * shape[1] * shape[2], names);
        // Exact but for rounding: a blend or blur whose float32 value sits on .5 may round the other way (1 level).
        for (const [op, row] of diff) {
          expect({ op, worst: Math.min(row.worst, 1) }).toEqual({ op, worst: row.worst });
          expect({ op, share: row.pixels / (row.images * shape[0] * shape[1] * shape[2]) < 1e-3 }).toEqual({
            op,
            share: true,
          });
        }
      },
    );
  }

  itWithTimm(
    "RandAugment (2 operations, magnitude bin 9 of 31) gives torchvision's pixels and magnitudes",
    async () => {
      const n = 200,
        shape: [number, number, number] = [3, 18, 22];
      const { data, pixels } = await dataset(n, shape);
      const preview = await previewAugmentation(data, {
        augment: { randAugment: true },
        normalize: 'none',
        count: n,
        seed: 8,
      });
      const spaces = JSON.parse(await runTimm('torchvision_augment.py', ['--spaces', '31', '18', '22']));
      for (const d of preview.draws) {
        expect(d.ops).toHaveLength(2);
        for (const op of d.ops) {
          const space = spaces.randAugment[op.name];
          const expected = space.values.length > 1 ? space.values[9] : 0;
          expect(Math.abs(Math.abs(op.magnitude) - Math.abs(expected))).toBeLessThanOrEqual(
            1e-6 * Math.max(1, Math.abs(expected)),
          );
          if (!space.signed) expect(op.magnitude).toBeGreaterThanOrEqual(0);
        }
      }
      const names = preview.draws.map((d) => d.ops.map((o) => o.name));
      const theirs = await torchvisionApplied(
        pixels,
        [n, ...shape],
        preview.draws.map((d) => d.ops),
      );
      const diff = differences(toPixels(preview.images), theirs, shape[0] * shape[1] * shape[2], names);
      let differing = 0,
        worst = 0;
      for (const row of diff.values()) {
        differing += row.pixels;
        worst = Math.max(worst, row.worst);
      }
      expect(worst).toBeLessThanOrEqual(1);
      expect(differing / pixels.length).toBeLessThan(1e-3);
    },
  );

  itWithTimm(
    "TrivialAugmentWide's draws: uniform over the 14 operations, magnitudes from torchvision's bins, signs even",
    async () => {
      const n = 2800;
      const { data } = await dataset(n, [1, 8, 8]);
      const preview = await previewAugmentation(data, {
        augment: { trivialAugment: true },
        normalize: 'none',
        count: n,
        seed: 1,
      });
      const spaces = JSON.parse(await runTimm('torchvision_augment.py', ['--spaces', '31', '8', '8']));
      const counts = new Map<string, number>();
      let signed = 0,
        negative = 0;
      for (const { ops } of preview.draws) {
        const { name, magnitude } = ops[0];
        counts.set(name, (counts.get(name) ?? 0) + 1);
        const space = spaces.trivialAugmentWide[name];
        const bins: number[] = space.values;
        // torchvision's bins are float32 linspace values whose last bits vary with the PyTorch version and the CPU's
        // vector width; ours are the exact values rounded once (native/data/auto_augment.cpp): equal within float32.
        const near = (v: number) => Math.abs(v - Math.abs(magnitude)) <= 1e-6 * Math.max(1, v);
        if (!bins.some((v) => near(v) || (bins.length === 1 && magnitude === 0)))
          throw new Error(`${name} ${magnitude} is not one of torchvision's bins ${bins.join(', ')}`);
        if (space.signed && magnitude !== 0) {
          signed++;
          if (magnitude < 0) negative++;
        }
        if (!space.signed) expect(magnitude).toBeGreaterThanOrEqual(0);
      }
      // Binomial(2800, 1/14): mean 200, sd 13.6; 5 sd either side.
      expect(counts.size).toBe(14);
      for (const c of counts.values()) expect(Math.abs(c - 200)).toBeLessThan(68);
      expect(Math.abs(negative / signed - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / signed));
    },
  );

  it('refuses a policy for 4-channel or float images, both policies at once, and a magnitude outside the bins', async () => {
    const four = await fromArrays({ images: new Uint8Array(2 * 4 * 8 * 8), shape: [2, 4, 8, 8], labels: [0, 1] });
    const floats = await fromArrays({ images: new Float32Array(2 * 3 * 8 * 8), shape: [2, 3, 8, 8], labels: [0, 1] });
    const rgb = await fromArrays({ images: new Uint8Array(2 * 3 * 8 * 8), shape: [2, 3, 8, 8], labels: [0, 1] });
    expect(await rejection(previewAugmentation(four, { augment: { trivialAugment: true } }))).toMatchObject({
      field: 'augment.trivialAugment',
      message: expect.stringMatching(/1 or 3 channels.*these images have 4/),
    });
    expect(await rejection(previewAugmentation(floats, { augment: { randAugment: true } }))).toMatchObject({
      field: 'augment.randAugment',
      message: expect.stringMatching(/uint8 pixels.*holds float32/),
    });
    expect(
      await rejection(previewAugmentation(rgb, { augment: { trivialAugment: true, randAugment: true } })),
    ).toBeInstanceOf(ValidationError);
    expect(
      (await rejection(previewAugmentation(rgb, { augment: { randAugment: { magnitude: 31 } } }))).message,
    ).toMatch(/augment.randAugment.*magnitude must be a bin/);
    expect(await rejection(previewAugmentation(rgb, { start: 2 }))).toMatchObject({ field: 'start' });
    expect(await rejection(previewAugmentation(rgb, { start: 1, count: 2 }))).toMatchObject({ field: 'count' });
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 4, numClasses: 2 });
    expect(
      await rejection(train(model, four, { iterations: 1, batchSize: 2, augment: { trivialAugment: true } }).done),
    ).toBeInstanceOf(ValidationError);
  });
});

const timmApplied = (pixels: Uint8Array, shape: number[], draws: unknown, fill: number[]) =>
  referenceApplied('timm_augment.py', pixels, shape, draws, [fill.join(',')]);

describe("timm's RandAugment: Pillow's pixels through timm's own operations", () => {
  for (const [shape, config, fill] of [
    [[3, 20, 24], 'rand-m9-mstd0.5-inc1', [124, 116, 104]],
    [[1, 16, 16], 'rand-m7-n3-mstd0.5-inc1', [90]],
    [[3, 17, 13], 'rand-m6-mstd101', [128, 128, 128]], // timm's uniform magnitude; the original (decreasing) set
  ] as [[number, number, number], string, number[]][]) {
    itWithTimm(`${config} on ${shape.join('x')} images gives timm's pixels for the drawn operations`, async () => {
      const n = 300;
      const { data, pixels } = await dataset(n, shape);
      const preview = await previewAugmentation(data, {
        augment: { timmRandAugment: config.includes('mstd101') ? config : { ...parseTimmRandAugment(config), fill } },
        normalize: 'none',
        count: n,
        seed: 3,
      });
      const steps = config.includes('-n3') ? 3 : 2;
      const ops = preview.draws.flatMap((d) => d.ops);
      expect(ops).toHaveLength(n * steps);
      expect(new Set(ops.map((o) => o.name)).size).toBe(15); // every operation drawn
      expect(new Set(ops.filter((o) => o.resample).map((o) => o.resample))).toEqual(new Set(['bilinear', 'bicubic']));
      const theirs = await timmApplied(
        pixels,
        [n, ...shape],
        preview.draws.map((d) => d.ops),
        fill,
      );
      const names = preview.draws.map((d) => d.ops.filter((o) => o.applied).map((o) => o.name));
      const diff = differences(toPixels(preview.images), theirs, shape[0] * shape[1] * shape[2], names);
      // Pillow's arithmetic step by step (float32 blends and filter, float64 transforms): pixel for pixel.
      for (const [op, row] of diff) expect({ op, worst: row.worst }).toEqual({ op, worst: 0 });
    });
  }

  itWithTimm(
    "draws: timm's level functions, magnitude noise, the operations' probability, uniform choice",
    async () => {
      const n = 3000;
      const { data } = await dataset(n, [1, 8, 8]);
      const levels = JSON.parse(await runTimm('timm_augment.py', ['--levels', '9'])).levels;
      // Without noise every argument is timm's level function at m9, with one of its signs.
      const plain = await previewAugmentation(data, {
        augment: { timmRandAugment: 'rand-m9-inc1' },
        normalize: 'none',
        count: n,
        seed: 2,
      });
      for (const { name, magnitude } of plain.draws.flatMap((d) => d.ops)) {
        const { plus, minus } = levels[name];
        if (Math.abs(magnitude - plus) > 1e-12 && Math.abs(magnitude - minus) > 1e-12)
          throw new Error(`${name}: ${magnitude} is neither ${plus} nor ${minus}`);
      }
      // mstd0.5: Rotate's |degrees| / 3 is the clipped gauss(9, 0.5) magnitude; p 0.5 of operations apply; each of the
      // 15 operations drawn with probability 1/15.
      const noisy = await previewAugmentation(data, {
        augment: { timmRandAugment: 'rand-m9-mstd0.5-inc1' },
        normalize: 'none',
        count: n,
        seed: 4,
      });
      const ops = noisy.draws.flatMap((d) => d.ops);
      const m = ops.filter((o) => o.name === 'Rotate').map((o) => Math.abs(o.magnitude) / 3);
      const mean = m.reduce((a, b) => a + b, 0) / m.length;
      const sd = Math.sqrt(m.reduce((a, b) => a + (b - mean) ** 2, 0) / (m.length - 1));
      expect(Math.max(...m)).toBeLessThanOrEqual(10);
      expect(Math.abs(mean - 9)).toBeLessThan(5 * (0.5 / Math.sqrt(m.length)));
      expect(Math.abs(sd - 0.5)).toBeLessThan(0.1);
      const applied = ops.filter((o) => o.applied).length;
      expect(Math.abs(applied / ops.length - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / ops.length));
      const counts = new Map<string, number>();
      for (const o of ops) counts.set(o.name, (counts.get(o.name) ?? 0) + 1);
      expect(counts.size).toBe(15);
      const expected = ops.length / 15,
        sdCount = Math.sqrt(ops.length * (1 / 15) * (14 / 15));
      for (const c of counts.values()) expect(Math.abs(c - expected)).toBeLessThan(5 * sdCount);
    },
  );

  it("reads timm's config string, refuses what it does not support, and fills from the normalisation's mean", async () => {
    const rgb = await fromArrays({ images: new Uint8Array(2 * 3 * 8 * 8), shape: [2, 3, 8, 8], labels: [0, 1] });
    expect(parseTimmRandAugment('rand-m9-n3-mstd0.5-p0.7-inc1')).toEqual({
      magnitude: 9,
      numOps: 3,
      magnitudeStd: 0.5,
      prob: 0.7,
      increasing: true,
    });
    for (const bad of ['augmix-m5', 'rand-m9-mmax15', 'rand-tweights', 'rand-m', 'rand-m11', 'rand-p2'])
      expect(await rejection(previewAugmentation(rgb, { augment: { timmRandAugment: bad } }))).toMatchObject({
        field: expect.stringMatching(/^augment.timmRandAugment/),
      });
    expect(await rejection(previewAugmentation(rgb, { augment: { timmRandAugment: { fill: [1, 2] } } }))).toMatchObject(
      { field: 'augment.timmRandAugment.fill' },
    );
    expect(
      await rejection(previewAugmentation(rgb, { augment: { randAugment: true, timmRandAugment: 'rand-m9' } })),
    ).toMatchObject({ field: 'augment.timmRandAugment' });
    // A geometric operation's fill is timm's img_mean: round(255 × mean) per channel. Rotating a black image by
    // 30 degrees leaves its corners at that colour.
    const mean = [0.485, 0.456, 0.406];
    const black = await fromArrays({
      images: new Uint8Array(16 * 3 * 64),
      shape: [16, 3, 8, 8],
      labels: new Array(16).fill(0),
    });
    const preview = await previewAugmentation(black, {
      augment: { timmRandAugment: { magnitude: 10, numOps: 1, prob: 1, interpolation: 'bilinear' } },
      normalize: { mean, std: [1, 1, 1] },
      count: 16,
      seed: 1,
    });
    let geometric = 0;
    for (let i = 0; i < 16; i++) {
      const op = preview.draws[i].ops[0];
      if (!['Rotate', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel'].includes(op.name)) continue;
      geometric++;
      // The corner that moved out: one of the four holds the fill (then normalised: fill/255 − mean).
      const corners = [0, 7, 56, 63].map((k) =>
        [0, 1, 2].map((c) => Math.round((preview.images[(i * 3 + c) * 64 + k] + mean[c]) * 255)),
      );
      expect(corners).toContainEqual([124, 116, 104]);
    }
    expect(geometric).toBeGreaterThan(0);
  });
});

describe('random erasing', () => {
  itWithTimm(
    "erases one rectangle per chosen image with torchvision's rule: how often, how large, what shape",
    async () => {
      const n = 4000,
        h = 16,
        w = 20;
      const data = await fromArrays({
        images: new Uint8Array(n * h * w).fill(200),
        shape: [n, 1, h, w],
        labels: new Array(n).fill(0),
      });
      const opts = {
        prob: 0.4,
        scale: [0.05, 0.4] as [number, number],
        ratio: [0.4, 2.5] as [number, number],
        value: -1,
      };
      const preview = await previewAugmentation(data, {
        augment: { randomErasing: opts },
        normalize: 'none',
        count: n,
        seed: 3,
      });
      let erased = 0,
        area = 0,
        logRatio = 0;
      for (let i = 0; i < n; i++) {
        const box = preview.draws[i].erased;
        const img = preview.images.subarray(i * h * w, (i + 1) * h * w);
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const inside =
              !!box && y >= box.top && y < box.top + box.height && x >= box.left && x < box.left + box.width;
            if (inside !== (img[y * w + x] === -1))
              throw new Error(`image ${i} (${y}, ${x}): ${img[y * w + x]}, box ${JSON.stringify(box)}`);
            if (!inside && Math.abs(img[y * w + x] - 200 / 255) > 1e-6)
              throw new Error(`image ${i} changed outside the box`);
          }
        if (box) {
          expect(box.height < h && box.width < w && box.top + box.height <= h && box.left + box.width <= w).toBe(true);
          erased++;
          area += (box.height * box.width) / (h * w);
          logRatio += Math.log(box.height / box.width);
        }
      }
      const ref = JSON.parse(
        await runTimm('torchvision_erasing.py', [String(h), String(w), JSON.stringify(opts), '20000']),
      );
      // Standard errors from the reference's spread; 5 of them either side (ours 4000 draws, theirs 20000).
      const se = (sd: number, k: number) => 5 * sd * Math.sqrt(1 / k + 1 / 20000);
      expect(Math.abs(erased / n - ref.erasedShare)).toBeLessThan(
        se(Math.sqrt(ref.erasedShare * (1 - ref.erasedShare)), n),
      );
      expect(Math.abs(area / erased - ref.meanArea)).toBeLessThan(se(ref.sdArea, erased));
      expect(Math.abs(logRatio / erased - ref.meanLogRatio)).toBeLessThan(se(ref.sdLogRatio, erased));
    },
  );

  it("value 'random' fills the rectangle with standard normal values", async () => {
    const n = 400;
    const data = await fromArrays({
      images: new Uint8Array(n * 3 * 16 * 16),
      shape: [n, 3, 16, 16],
      labels: new Array(n).fill(0),
    });
    const preview = await previewAugmentation(data, {
      augment: { randomErasing: { prob: 1, value: 'random' } },
      normalize: 'none',
      count: n,
    });
    let sum = 0,
      sq = 0,
      k = 0;
    for (let i = 0; i < n; i++) {
      const box = preview.draws[i].erased;
      if (!box) continue;
      for (let c = 0; c < 3; c++)
        for (let y = box.top; y < box.top + box.height; y++)
          for (let x = box.left; x < box.left + box.width; x++) {
            const v = preview.images[((i * 3 + c) * 16 + y) * 16 + x];
            sum += v;
            sq += v * v;
            k++;
          }
    }
    expect(k).toBeGreaterThan(10000);
    expect(Math.abs(sum / k)).toBeLessThan(5 / Math.sqrt(k));
    expect(Math.abs(sq / k - 1)).toBeLessThan(5 * Math.sqrt(2 / k));
  });
});

describe("a run with TrivialAugment or timm's RandAugment, and random erasing", () => {
  it('is deterministic from the seed, and the augmentation changes the run', async () => {
    const { data } = await dataset(64, [3, 12, 12]);
    const run = async (augment: object) => {
      const model = await createModel({ arch: 'cifar-resnet8', numClasses: 2, seed: 4 });
      await train(model, data, { epochs: 2, batchSize: 16, seed: 9, deterministic: true, augment });
      const h = require('crypto').createHash('sha256');
      for (const t of await model.handle().exportState())
        h.update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      return h.digest('hex');
    };
    const recipe = { trivialAugment: true, flip: true, randomErasing: { prob: 0.25 } };
    const a = await run(recipe);
    expect(await run(recipe)).toBe(a);
    const timm = { timmRandAugment: 'rand-m9-mstd0.5-inc1', flip: true, randomErasing: { prob: 0.25 } };
    const b = await run(timm);
    expect(await run(timm)).toBe(b);
    expect(new Set([a, b, await run({ flip: true })]).size).toBe(3);
  });
});
