// The oneDNN training path (native/models/onednn_training.cpp) against PyTorch in float64: one SGD step's gradients
// and BatchNorm statistics for every kind of layer the trace can hold, and which path a run takes.
import { spawnSync } from 'child_process';
import * as path from 'path';

import { createModel, fromArrays, info, train } from '../../lib';
import { ModelSpec } from '../../lib/model/spec';
import { readSafetensors, typedArrayOf, writeSafetensors } from '../../lib/io/safetensors';
import { tempDir } from '../../harness/files';
import { runPython } from '../../harness/python';
import { itWithTimm, itWithTorch, runTimm } from '../helpers/reference';
import { pseudoRandomBytes } from '../../harness/synthetic';

const ROOT = path.resolve(__dirname, '..', '..');
const describeWithOneDnn = info().training.onednn ? describe : describe.skip;

/** ‖a‖ (a loop: spreading a large array into Math.hypot overflows the stack). */
function norm2(a: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * a[i];
  return Math.sqrt(sum);
}

/** ‖a − b‖ and ‖b‖. */
function l2(a: ArrayLike<number>, b: ArrayLike<number>): { difference: number; norm: number } {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return { difference: Math.sqrt(num), norm: Math.sqrt(den) };
}

describeWithOneDnn('the oneDNN training path', () => {
  // One SGD step without momentum: the weights move by 100 x their gradient, read back as (before − after) / 100.
  // float32 rounds `after` to its ulp, so a gradient is known to ulp(w) / 100 per element: that, and 1e-4 of it.
  const LR = 100;
  const cases: { name: string; spec: ModelSpec; size: number; timm?: boolean }[] = [
    {
      name: 'CIFAR ResNet-20 (option A: subsampling, appended zero channels)',
      spec: { arch: 'cifar-resnet20' },
      size: 4,
    },
    { name: 'pre-activation CIFAR ResNet-20', spec: { arch: 'cifar-preact-resnet20' }, size: 4 },
    {
      name: 'bottlenecks, projection shortcuts (B), λ = 0.5, stride on the 1x1',
      spec: {
        block: 'bottleneck',
        depths: [1, 2],
        stem: 'cifar',
        widths: [16, 32],
        shortcut: 'B',
        shortcutScale: 0.5,
        stride: 'conv1x1',
      },
      size: 4,
    },
    {
      name: 'pre-activation bottlenecks, option C',
      spec: { block: 'bottleneck', depths: [1, 1], stem: 'cifar', widths: [16, 32], preact: true, shortcut: 'C' },
      size: 4,
    },
    {
      name: "the ImageNet stem (7x7/2, 3x3/2 max pool), basic blocks as ResNet-18's",
      spec: { block: 'basic', depths: [1, 1], stem: 'imagenet', widths: [16, 32] },
      size: 8,
    },
    { name: 'a plain net (no shortcuts)', spec: { arch: 'cifar-plain8' }, size: 4 },
    {
      // ResNet-D's shortcut: a 2x2 average pool in ceil mode, padding not counted (3x3 maps: a 1-wide last
      // window), then the 1x1 projection; against timm's own ResNet.
      name: "the average-pool shortcut (avgDown, timm's ResNet-D), ceil mode on odd maps",
      spec: { block: 'basic', depths: [1, 1], stem: 'imagenet', avgDown: true },
      size: 12,
      timm: true,
    },
  ];
  for (const c of cases) {
    (c.timm ? itWithTimm : itWithTorch)(
      `${c.name}: one step's gradients and BN statistics equal PyTorch's (float64) within 1e-4`,
      async () => {
        // A ReLU input within float32 rounding of 0 falls on either side depending on the kernels: the reference
        // reports the smallest |ReLU input| it saw, and seeds are tried until none is closer to 0 than 1e-5 (100x the
        // rounding at these sizes), so that nothing but the formulas can part the two.
        // A batch of 8: with 4, BatchNorm over the last stage's 1x1 maps normalises 4 values, which amplifies float32
        // rounding to 3e-3 in the stem's gradient in libtorch's path as much as in this one.
        const dir = await tempDir();
        const batch = 8;
        for (let seed = 1; seed <= 12; seed++) {
          const count = batch;
          const images = pseudoRandomBytes(count * 3 * c.size * c.size, seed);
          const labels = Array.from({ length: count }, (_, i) => (i * 7 + seed) % 10);
          const data = await fromArrays({ images, shape: [count, 3, c.size, c.size], labels, numClasses: 10 });
          const model = await createModel({ ...c.spec, numClasses: 10, seed });
          const before = new Map((await model.handle().exportState()).map((t) => [t.name, t]));
          await model.saveWeights(path.join(dir, 'init.safetensors'));
          await writeSafetensors(path.join(dir, 'data.safetensors'), [
            { name: 'images', dtype: 'U8', shape: [count, 3, c.size, c.size], data: images },
            { name: 'labels', dtype: 'I64', shape: [count], data: BigInt64Array.from(labels.map(BigInt)) },
          ]);
          const mean = [0.5, 0.5, 0.5],
            std = [0.25, 0.25, 0.25];
          const result = await train(model, data, {
            iterations: 1,
            batchSize: batch,
            shuffle: false,
            normalize: { mean, std },
            optimizer: { type: 'sgd', lr: LR, momentum: 0, weightDecay: 0 },
          });
          expect(result.engine).toBe('onednn');
          const out = await (c.timm ? runTimm : runPython)('train_steps.py', [
            path.join(dir, 'init.safetensors'),
            path.join(dir, 'data.safetensors'),
            path.join(dir, 'torch.safetensors'),
            JSON.stringify({
              spec: { ...model.spec, numClasses: 10 },
              optimizer: { type: 'sgd', lr: LR },
              batch,
              steps: 1,
              mean,
              std,
              dtype: 'float64',
              reluMargin: true,
            }),
          ]);
          const { reluMargin } = JSON.parse(out.trim().split('\n').pop()!);
          if (reluMargin < 1e-5) continue;
          const reference = (await readSafetensors(path.join(dir, 'torch.safetensors'))).tensors;
          const after = new Map((await model.handle().exportState()).map((t) => [t.name, t]));
          let compared = 0;
          for (const [name, t] of reference) {
            if (t.dtype === 'I64') {
              expect([name, Array.from(after.get(name)!.data as BigInt64Array)]).toEqual([name, [1n]]);
              continue;
            }
            const ref = typedArrayOf(t) as Float64Array;
            const mine = after.get(name)!.data as Float32Array;
            const start = before.get(name)!.data as Float32Array;
            // Parameters: their gradient (start − after) / lr; BN's running statistics: their values.
            const statistic = /running_/.test(name);
            const ours = statistic ? mine : Float64Array.from(mine, (v, i) => (start[i] - v) / LR);
            const theirs = statistic ? ref : Float64Array.from(ref, (v, i) => (start[i] - v) / LR);
            const resolution = statistic ? 0 : (norm2(start) * 2 ** -22) / LR;
            const { difference, norm } = l2(ours, theirs);
            expect([name, difference <= 1e-4 * norm + resolution]).toEqual([name, true]);
            compared++;
          }
          expect(compared).toBe([...before.values()].filter((t) => t.dtype === 'float32').length);
          return;
        }
        throw new Error('no seed of 12 gave inputs with every ReLU input at least 1e-5 from 0');
      },
    );
  }

  it('trains where it computes what libtorch would; libtorch trains the rest, and the result says which and why', async () => {
    const data = await fromArrays({
      images: pseudoRandomBytes(32 * 8 * 8, 3),
      shape: [32, 1, 8, 8],
      labels: Array.from({ length: 32 }, (_, i) => i % 2),
    });
    const run = async (spec: ModelSpec, options: object = {}) => {
      const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1, ...spec });
      return (await train(model, data, { iterations: 2, batchSize: 8, ...options })).engine;
    };
    expect(await run({})).toBe('onednn');
    expect(await run({}, { memoryFormat: 'channels_last', accumulate: 2, clipGradNorm: 1, ema: { decay: 0.9 } })).toBe(
      'onednn',
    );
    expect(await run({ dtype: 'float64' })).toBe('libtorch (the model is not float32)');
    expect(await run({}, { freezeBatchNorm: true })).toBe('libtorch (freezeBatchNorm (BatchNorm in eval mode))');
    // 20 channels fill whole blocks of neither 8 (AVX2) nor 16 (AVX-512).
    expect(await run({ arch: undefined, block: 'basic', depths: [1], stem: 'cifar', widths: [20] })).toMatch(
      /^libtorch \(a width is not a multiple of (8|16) channels\)$/,
    );
    // ResNeXt's grouped 3x3 convolutions train on libtorch's path.
    expect(
      await run({
        arch: undefined,
        block: 'bottleneck',
        depths: [1],
        stem: 'cifar',
        widths: [16],
        groups: 4,
        widthPerGroup: 64,
      }),
    ).toBe('libtorch (grouped convolutions (groups > 1) are not on this path)');
    expect(
      await run({ arch: undefined, block: 'basic', depths: [1], stem: 'cifar', widths: [16], dropPath: 0.1 }),
    ).toBe('libtorch (stochastic depth (dropPath) is not on this path)');
    // The switch is read from the process's environment (jest's process.env is a copy): a process of its own.
    const child = spawnSync(
      process.execPath,
      [
        '-e',
        `const r = require(process.argv[1]);
         (async () => {
           const data = await r.fromArrays({ images: new Uint8Array(16 * 64).fill(7), shape: [16, 1, 8, 8], labels: Array.from({ length: 16 }, (_, i) => i % 2) });
           const model = await r.createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
           console.log((await r.train(model, data, { iterations: 1, batchSize: 8 })).engine);
         })();`,
        path.join(ROOT, 'dist'),
      ],
      { env: { ...process.env, RESNET_TORCH_ONEDNN_TRAINING: '0' }, encoding: 'utf8' },
    );
    expect([child.status, child.stdout.trim()]).toEqual([0, 'libtorch (RESNET_TORCH_ONEDNN_TRAINING=0)']);
  });
});
