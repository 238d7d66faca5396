// The training engine against independent references: PyTorch's own optimizer steps, hand-computed
// learning rates, and behaviour (overfitting, determinism, cancellation, concurrency, validation).
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Worker } from 'worker_threads';

import {
  BusyError,
  MixOptions,
  ModelSpec,
  ProgressEvent,
  TrainOptions,
  ValidationError,
  createModel,
  datasets,
  fromArrays,
  info,
  train,
} from '../../lib';
import { StoredTensor, readSafetensors, typedArrayOf, writeSafetensors } from '../../lib/io/safetensors';
import { NativeTensorData, native } from '../../lib/native';
import { resolveRun } from '../../lib/train/resolve';
import { maxAbsDiff, tempDir } from '../../harness/files';
import { syntheticDataset, weightsHash } from '../../harness/synthetic';
import { runPython, torchPython } from '../../harness/python';
import { itWithTimm, itWithTorch, runTimm } from '../helpers/reference';
import { rejection } from '../helpers/errors';

const ROOT = path.resolve(__dirname, '..', '..');

describe('agreement with PyTorch', () => {
  const cases = [
    {
      name: 'SGD, momentum 0.9, weight decay 5e-4',
      optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
    },
    {
      name: 'SGD, Nesterov, label smoothing 0.1, channels_last',
      optimizer: { type: 'sgd' as const, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
      labelSmoothing: 0.1,
      channelsLast: true,
    },
    {
      name: 'AdamW',
      optimizer: { type: 'adamw' as const, lr: 1e-3, betas: [0.9, 0.99] as [number, number], weightDecay: 0.05 },
    },
    {
      // The gradient norm of a fresh network is well above 0.1, so the clip acts at every step.
      name: 'SGD, clipGradNorm 0.1 (clip_grad_norm_)',
      optimizer: { type: 'sgd' as const, lr: 0.5, momentum: 0.9 },
      clipGradNorm: 0.1,
    },
    {
      name: 'SGD, freezeBatchNorm (BN in eval mode, as FrozenBatchNorm2d)',
      optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9 },
      freezeBatchNorm: true,
    },
    {
      name: 'SGD, accumulate 4 passes of 2 (each pass its own BN statistics, as PyTorch)',
      optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
      accumulate: 4,
    },
    {
      // timm's Lamb (its defaults: eps 1e-6, weight decay 0.01, gradients clipped to global norm 1 first).
      name: "LAMB (timm's Lamb)",
      optimizer: { type: 'lamb' as const, lr: 0.01 },
      timm: true,
    },
    {
      // timm's parameter groups: BN and biases without decay skip the trust ratio; LAMBC's clip at 1.
      name: 'LAMB, no decay on BN and biases, trust clip, weight decay 0.05, no gradient clipping',
      optimizer: {
        type: 'lamb' as const,
        lr: 0.02,
        weightDecay: 0.05,
        noDecayOnBnAndBias: true,
        trustClip: true,
        maxGradNorm: 0,
      },
      timm: true,
    },
    {
      // timm's BinaryCrossEntropy on one-hot targets smoothed by 0.1 (RSB's A2/A3 loss).
      name: "binary cross-entropy, smoothing 0.1 (timm's BinaryCrossEntropy)",
      optimizer: { type: 'sgd' as const, lr: 0.5, momentum: 0.9 },
      labelSmoothing: 0.1,
      loss: { type: 'bce' as const },
      timm: true,
    },
    {
      // ... with a target threshold of 0.2 (RSB's A1): the smoothed targets are binarised again.
      name: 'binary cross-entropy, smoothing 0.1, target threshold 0.2',
      optimizer: { type: 'sgd' as const, lr: 0.5, momentum: 0.9 },
      labelSmoothing: 0.1,
      loss: { type: 'bce' as const, targetThreshold: 0.2 },
      timm: true,
    },
    {
      // timm's Mixup (mode "batch") with label smoothing in its targets and SoftTargetCrossEntropy, on our draws.
      name: "mixup 0.4, label smoothing 0.1 (timm's Mixup, SoftTargetCrossEntropy)",
      optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9 },
      labelSmoothing: 0.1,
      mix: { mixup: 0.4 },
      timm: true,
    },
    {
      // CutMix's box and corrected λ, with timm's BinaryCrossEntropy (threshold 0.2) on the mixed targets (RSB A1).
      name: 'cutmix 1.0, label smoothing 0.1, binary cross-entropy with target threshold 0.2',
      optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9 },
      labelSmoothing: 0.1,
      loss: { type: 'bce' as const, targetThreshold: 0.2 },
      mix: { cutmix: 1.0 },
      timm: true,
    },
    {
      // ResNeXt's grouped 3x3 (torchvision's width = ⌊planes · widthPerGroup / 64⌋ · groups), on a small CIFAR-stem
      // bottleneck net: 16·16/64·4 = 16 channels in 4 groups in the first stage.
      name: 'SGD, a ResNeXt (bottleneck, 4 groups of 16/64 of the stage width)',
      optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
      model: { block: 'bottleneck' as const, depths: [1, 1, 1], stem: 'cifar' as const, groups: 4, widthPerGroup: 16 },
    },
    {
      // timm's ResNet-C/D stem and shortcut with squeeze-and-excitation, against timm's own ResNet.
      name: "SGD, timm's deep stem, average-pool shortcut and squeeze-and-excitation",
      optimizer: { type: 'sgd' as const, lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
      model: {
        block: 'basic' as const,
        depths: [1, 1],
        stem: 'imagenet' as const,
        deepStem: true,
        avgDown: true,
        attention: 'se' as const,
      },
      timm: true,
    },
  ] as {
    name: string;
    optimizer:
      { type: 'sgd'; lr: number; momentum: number } | { type: 'adamw'; lr: number } | { type: 'lamb'; lr: number };
    labelSmoothing?: number;
    channelsLast?: boolean;
    clipGradNorm?: number;
    accumulate?: number;
    freezeBatchNorm?: boolean;
    model?: ModelSpec;
    timm?: boolean;
    loss?: TrainOptions['loss'];
    mix?: MixOptions;
  }[];
  type Case = (typeof cases)[number];
  // 3 steps of ours and of PyTorch's loop (test/python/train_steps.py) from the same weights on the same batches:
  // every state tensor of both, and the initial ones.
  async function stepsBesidePyTorch(c: Case, o: { dtype: 'float32' | 'float64'; precision?: 'bfloat16' }) {
    const dir = await tempDir();
    const batch = 8;
    const data = await syntheticDataset(3 * batch, [1, 12, 12], 10, 3);
    const model = await createModel({
      ...(c.model ?? { arch: 'cifar-resnet20' }),
      inChannels: 1,
      seed: 42,
      dtype: o.dtype,
    });
    await model.saveWeights(path.join(dir, 'init.safetensors'));
    const all = data.get(0, data.length);
    await writeSafetensors(path.join(dir, 'data.safetensors'), [
      { name: 'images', dtype: 'U8', shape: all.shape, data: all.images },
      { name: 'labels', dtype: 'I64', shape: [data.length], data: BigInt64Array.from(all.labels.map(BigInt)) },
    ]);
    const mean = [0.4],
      std = [0.25];
    const draws: NonNullable<ProgressEvent['mix']> = [];
    const result = await train(model, data, {
      onProgress: (e) => {
        if (e.kind === 'iteration') draws.push(...(e.mix ?? []));
      },
      iterations: 3,
      shuffle: false,
      optimizer: c.optimizer,
      labelSmoothing: c.labelSmoothing ?? 0,
      loss: c.loss,
      clipGradNorm: c.clipGradNorm,
      accumulate: c.accumulate,
      freezeBatchNorm: c.freezeBatchNorm,
      batchSize: batch / (c.accumulate ?? 1),
      normalize: { mean, std },
      memoryFormat: c.channelsLast ? 'channels_last' : 'contiguous',
      ...(c.mix ? { augment: { mix: c.mix } } : {}),
      precision: o.precision ?? 'float32',
      logEvery: 1,
    });
    expect(result.iteration).toBe(3);
    const spec = model.spec;
    const reference = async (autocast: string | undefined) => {
      const out = path.join(dir, `torch-${autocast ?? 'plain'}.safetensors`);
      await (c.timm ? runTimm : runPython)('train_steps.py', [
        path.join(dir, 'init.safetensors'),
        path.join(dir, 'data.safetensors'),
        out,
        JSON.stringify({
          spec,
          optimizer: c.optimizer,
          labelSmoothing: c.labelSmoothing ?? 0,
          loss: c.loss,
          ...(c.mix
            ? {
                mix: {
                  mixupAlpha: c.mix.mixup ?? 0,
                  cutmixAlpha: c.mix.cutmix ?? 0,
                  prob: 1,
                  switchProb: 0.5,
                  correctLam: true,
                },
                mixDraws: draws,
              }
            : {}),
          batch,
          steps: 3,
          mean,
          std,
          channelsLast: c.channelsLast,
          clipGradNorm: c.clipGradNorm,
          accumulate: c.accumulate,
          freezeBatchNorm: c.freezeBatchNorm,
          dtype: o.dtype,
          autocast,
        }),
      ]);
      return (await readSafetensors(out)).tensors;
    };
    return {
      ours: new Map((await model.handle().exportState()).map((t) => [t.name, t])),
      reference: await reference(o.precision),
      plainReference: o.precision ? await reference(undefined) : undefined,
      initial: (await readSafetensors(path.join(dir, 'init.safetensors'))).tensors,
      result,
      draws,
    };
  }
  // Either kind of tensor's values: a file's (StoredTensor) or the model's (NativeTensorData).
  const values = (t: StoredTensor | NativeTensorData) => ('bytes' in t ? typedArrayOf(t) : t.data);
  // The largest difference between two states' floating-point tensors.
  function farthest(a: Map<string, StoredTensor>, b: Map<string, StoredTensor | NativeTensorData>): number {
    let worst = 0;
    for (const [name, t] of a) {
      const ref = values(t),
        other = values(b.get(name)!);
      if (ref instanceof BigInt64Array) continue;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(Number(other[i]) - Number(ref[i])));
    }
    return worst;
  }
  // The integer tensors (BatchNorm's num_batches_tracked), by name.
  const counters = (m: Map<string, StoredTensor | NativeTensorData>) =>
    [...m]
      .filter(([, t]) => values(t) instanceof BigInt64Array)
      .map(([name, t]) => [name, Array.from(values(t) as BigInt64Array)]);

  // Both sides in float64: in float32 a ReLU input within rounding of 0 falls on either side depending on the
  // kernels the CPU's ISA and the batch size pick, and a flipped unit moves the weights by 1e-4 after 3 steps. In
  // float64 nothing lies that close to 0, so the two must agree to rounding; a wrong formula is off by 1e-3 or more.
  for (const c of cases) {
    (c.timm ? itWithTimm : itWithTorch)(
      `3 steps of ${c.name} give ${c.timm ? "timm's" : "PyTorch's"} weights within 1e-9 (both in float64)`,
      async () => {
        const { ours, reference, initial, draws } = await stepsBesidePyTorch(c, { dtype: 'float64' });
        if (c.mix) {
          // Every step mixed (prob 1), with the kind asked for.
          expect(draws.length).toBe(3);
          for (const d of draws) {
            expect(d.cutmix).toBe(c.mix.cutmix !== undefined);
            expect(d.lam).toBeGreaterThan(0);
            expect(d.lam).toBeLessThan(1);
          }
        }
        for (const [name, t] of reference)
          if (t.dtype !== 'I64') expect([name, t.dtype, ours.get(name)!.dtype]).toEqual([name, 'F64', 'float64']);
        expect(counters(ours)).toEqual(counters(reference));
        expect(farthest(reference, initial)).toBeGreaterThan(1e-3);
        expect(farthest(reference, ours)).toBeLessThan(1e-9);
      },
    );
  }

  it("mixup/cutmix draws follow timm's Mixup: prob, switch probability, Beta(α, α), boxes with the corrected λ", async () => {
    const data = await syntheticDataset(8, [1, 8, 8], 2, 3);
    const model = await createModel({
      block: 'basic',
      depths: [1],
      stem: 'cifar',
      widths: [8],
      inChannels: 1,
      numClasses: 2,
      seed: 1,
    });
    const draws: NonNullable<ProgressEvent['mix']> = [];
    await train(model, data, {
      iterations: 400,
      batchSize: 4,
      logEvery: 1,
      augment: { mix: { mixup: 0.2, cutmix: 1.0, prob: 0.8, switchProb: 0.5 } },
      onProgress: (e) => {
        if (e.kind === 'iteration') draws.push(...(e.mix ?? []));
      },
    });
    expect(draws.length).toBe(400);
    const unmixed = draws.filter((d) => d.lam === 1 && !d.cutmix).length;
    const cut = draws.filter((d) => d.cutmix);
    const mixup = draws.filter((d) => !d.cutmix && d.lam !== 1).map((d) => d.lam);
    // Binomial bounds at about 4 standard deviations: 400 · 0.2 ± 32, 320 · 0.5 ± 36.
    expect(Math.abs(unmixed - 80)).toBeLessThan(32);
    expect(Math.abs(cut.length - (400 - unmixed) / 2)).toBeLessThan(36);
    // Beta(0.2, 0.2): mean 1/2, variance 1/(4 · 1.4) = 0.179.
    const mean = mixup.reduce((a, v) => a + v, 0) / mixup.length;
    const variance = mixup.reduce((a, v) => a + (v - mean) ** 2, 0) / mixup.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.1);
    expect(Math.abs(variance - 1 / 5.6)).toBeLessThan(0.04);
    for (const d of cut) {
      const [yl, yh, xl, xh] = d.box!;
      expect(0 <= yl && yl <= yh && yh <= 8 && 0 <= xl && xl <= xh && xh <= 8).toBe(true);
      expect(d.lam).toBe(1 - ((yh - yl) * (xh - xl)) / 64); // timm's correct_lam, exactly
    }
  });

  // ONEDNN_MAX_CPU_ISA=AVX2 on a CPU with AVX-512, under libtorch 1.x: libtorch sends bfloat16 convolutions to
  // oneDNN 2.x (the CPU has AVX-512), which has none below AVX-512. (A CPU without AVX-512 takes libtorch's own
  // kernels; oneDNN 3.x has AVX2 ones.)
  const bfloat16HeldBack = () =>
    process.env.ONEDNN_MAX_CPU_ISA?.toUpperCase() === 'AVX2' &&
    (info().cpu.onednnVersion ?? '').startsWith('2.') &&
    info().cpu.isa.includes('AVX-512');
  const BF16_CONV = [
    'import torch',
    "with torch.autocast('cpu', dtype=torch.bfloat16):",
    '    torch.nn.Conv2d(1, 4, 3)(torch.randn(2, 1, 8, 8))',
  ].join('\n');
  const BF16_STEP = { iterations: 1, batchSize: 8, precision: 'bfloat16' } as const;

  // bfloat16 autocast on the CPU (torch.autocast('cpu')): the convolutions and the classifier in bfloat16, the
  // weights, the optimizer and the loss in float32. PyTorch's autocast loop on the same libtorch is the reference;
  // what bfloat16 changes against a float32 run is the yardstick: a run that ignored the autocast (float32) or cast
  // other ops is as far from PyTorch's bfloat16 run as float32 is.
  itWithTorch("3 SGD steps in bfloat16 autocast on the CPU follow PyTorch's torch.autocast('cpu')", async () => {
    if (bfloat16HeldBack()) {
      // Here PyTorch's own autocast convolution fails too; ours refuses before the first step, naming the cause.
      const torchFails = spawnSync(torchPython(), ['-c', BF16_CONV], { encoding: 'utf8' });
      expect(torchFails.stderr).toMatch(/could not create a primitive descriptor iterator/);
      const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, seed: 42 });
      const e = await rejection(train(model, await syntheticDataset(8, [1, 12, 12], 10, 3), BF16_STEP).done);
      expect(e.message).toMatch(/ONEDNN_MAX_CPU_ISA=AVX2 holds oneDNN to AVX2, which has no bfloat16 convolutions/);
      return;
    }
    const { ours, reference, plainReference, initial, result } = await stepsBesidePyTorch(cases[0], {
      dtype: 'float32',
      precision: 'bfloat16',
    });
    expect(result.engine).toBe('libtorch (bfloat16 autocast)');
    const bf16Effect = farthest(reference, plainReference!);
    const offPyTorch = farthest(reference, ours);
    console.log(`bfloat16: ours vs PyTorch ${offPyTorch}, PyTorch bfloat16 vs float32 ${bf16Effect}`);
    expect(counters(ours)).toEqual(counters(reference));
    expect(farthest(reference, initial)).toBeGreaterThan(1e-3);
    expect(bf16Effect).toBeGreaterThan(1e-3);
    expect(offPyTorch).toBeLessThan(bf16Effect / 10);
  });
});

describe('gradient accumulation, exactly', () => {
  // In float64: in float32 the batch of 8 and the passes of 2 run kernels that round differently, and a ReLU input
  // near 0 can then fall on either side (a step of a wrong weighting is off by 1e-3).
  it('without batch statistics (BN frozen), 4 passes of 2 equal one step of 8 within 1e-10 (float64)', async () => {
    const weights = async (options: { batchSize: number; accumulate: number; freezeBatchNorm?: boolean }) => {
      const data = await syntheticDataset(48, [1, 12, 12], 10, 3);
      const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, seed: 42, dtype: 'float64' });
      await train(model, data, {
        iterations: 3,
        shuffle: false,
        freezeBatchNorm: true, // unless options say otherwise
        optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
        normalize: { mean: [0.4], std: [0.25] },
        ...options,
      });
      return model.handle().exportState();
    };
    const once = await weights({ batchSize: 8, accumulate: 1 });
    const passes = await weights({ batchSize: 2, accumulate: 4 });
    let worst = 0,
      compared = 0;
    for (let i = 0; i < once.length; i++)
      if (once[i].data instanceof Float64Array) {
        worst = Math.max(worst, maxAbsDiff(passes[i].data as Float64Array, once[i].data as Float64Array));
        compared++;
      }
    expect(compared).toBeGreaterThan(60); // every floating-point tensor of ResNet-20
    expect(worst).toBeLessThan(1e-10);
    // With batch statistics the passes normalise by their own batches, so the two differ (as they do in PyTorch).
    const bnOnce = await weights({ batchSize: 8, accumulate: 1, freezeBatchNorm: false });
    const bnPasses = await weights({ batchSize: 2, accumulate: 4, freezeBatchNorm: false });
    expect(maxAbsDiff(bnPasses[0].data as Float64Array, bnOnce[0].data as Float64Array)).toBeGreaterThan(1e-4);
  });

  it('freezeBatchNorm leaves the running statistics as they were, through evaluations too', async () => {
    const data = await syntheticDataset(48, [1, 12, 12], 10, 3);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, seed: 42 });
    const stats = async () =>
      (await model.handle().exportState())
        .filter((t) => /running_(mean|var)$/.test(t.name))
        .map((t) => Array.from(t.data as Float32Array));
    const before = await stats();
    await train(model, data, {
      iterations: 6,
      batchSize: 8,
      freezeBatchNorm: true,
      validation: data,
      evalEvery: { iterations: 2 },
    });
    expect(await stats()).toEqual(before);
  });
});

describe('learning-rate schedules (native values against hand-computed tables)', () => {
  async function values(
    options: object,
    ops: ({ iteration: number } | { trainError: number } | { metric: number })[],
    perEpoch = 100,
  ) {
    const data = await syntheticDataset(perEpoch * 2, [1, 4, 4], 2);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 2, seed: 0 });
    const resolved = await resolveRun(model, data, { batchSize: 2, normalize: 'none', ...options });
    return native().scheduleValues(resolved.config, ops);
  }
  const close = (a: number[], b: number[]) => a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(1e-12));

  it("the paper's CIFAR recipe: 0.1, ÷10 at 32k and 48k iterations (stop at 64k)", async () => {
    const its = [0, 31999, 32000, 32001, 47999, 48000, 63999];
    const lr = await values(
      {
        iterations: 64000,
        optimizer: { type: 'sgd', lr: 0.1 },
        schedule: { type: 'multistep', milestones: [32000, 48000] },
      },
      its.map((iteration) => ({ iteration })),
    );
    close(lr, [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001]);
  });
  it('multistep by epoch (100 iterations per epoch), gamma 0.2', async () => {
    const lr = await values(
      {
        epochs: 10,
        optimizer: { type: 'sgd', lr: 1 },
        schedule: { type: 'multistep', milestones: [3, 6], unit: 'epoch', gamma: 0.2 },
      },
      [0, 299, 300, 599, 600, 999].map((iteration) => ({ iteration })),
    );
    close(lr, [1, 1, 0.2, 0.2, 0.04, 0.04]);
  });
  it('linear warm-up from 0.1x over 100 iterations, then the multistep', async () => {
    const lr = await values(
      {
        iterations: 1000,
        optimizer: { type: 'sgd', lr: 0.4 },
        warmup: { iterations: 100, startFactor: 0.1 },
        schedule: { type: 'multistep', milestones: [500] },
      },
      [0, 1, 50, 99, 100, 499, 500].map((iteration) => ({ iteration })),
    );
    close(lr, [0.04, 0.4 * (0.1 + 0.9 * 0.01), 0.4 * (0.1 + 0.9 * 0.5), 0.4 * (0.1 + 0.9 * 0.99), 0.4, 0.4, 0.04]);
  });
  it('the ResNet-110 warm-up: 0.01 until the training error falls below 80%, then the base rate', async () => {
    const lr = await values(
      {
        iterations: 64000,
        optimizer: { type: 'sgd', lr: 0.1 },
        errorWarmup: { lr: 0.01, untilTrainError: 0.8 },
        schedule: { type: 'multistep', milestones: [32000, 48000] },
      },
      [
        { iteration: 0 },
        { trainError: 0.9 },
        { iteration: 390 },
        { trainError: 0.8 },
        { iteration: 400 },
        { trainError: 0.79 },
        { iteration: 401 },
        { trainError: 0.95 },
        { iteration: 402 },
        { iteration: 32000 },
      ],
    );
    close(lr, [0.01, 0.01, 0.01, 0.1, 0.1, 0.01]);
  });
  it('cosine from 0.1 to 0.001 over 1000 iterations', async () => {
    const lr = await values(
      { iterations: 1000, optimizer: { type: 'sgd', lr: 0.1 }, schedule: { type: 'cosine', minLr: 0.001 } },
      [0, 250, 500, 750, 999].map((iteration) => ({ iteration })),
    );
    const f = (t: number) => 0.001 + ((0.1 - 0.001) * (1 + Math.cos((Math.PI * t) / 1000))) / 2;
    close(lr, [0, 250, 500, 750, 999].map(f));
  });
  it("one-cycle as PyTorch's OneCycleLR: 0.004 -> 0.1 at 30% -> 4e-7", async () => {
    const lr = await values(
      { iterations: 1000, optimizer: { type: 'sgd', lr: 0.1 }, schedule: { type: 'onecycle' } },
      [0, 149.5, 299, 649, 999].map((t) => ({ iteration: Math.floor(t) })),
    );
    const anneal = (a: number, b: number, p: number) => b + ((a - b) / 2) * (Math.cos(Math.PI * p) + 1);
    close(lr, [0.004, anneal(0.004, 0.1, 149 / 299), 0.1, anneal(0.1, 4e-7, 350 / 700), 4e-7]);
  });
  it('reduce-on-plateau: ÷10 after more than `patience` evaluations without a 1e-4 relative improvement', async () => {
    const lr = await values(
      {
        iterations: 1000,
        optimizer: { type: 'sgd', lr: 0.1 },
        schedule: { type: 'plateau', patience: 2, metric: 'train_loss' },
      },
      [
        { metric: 1.0 },
        { iteration: 5 },
        { metric: 0.99995 },
        { metric: 1.2 },
        { iteration: 6 },
        { metric: 1.0 },
        { iteration: 7 },
        { metric: 0.5 },
        { iteration: 8 },
      ],
    );
    close(lr, [0.1, 0.1, 0.01, 0.01]);
  });
});

describe('the native training config: one typed contract, every key required on the C++ side', () => {
  async function config() {
    const data = await syntheticDataset(32, [1, 4, 4], 2);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 2, seed: 0 });
    return (await resolveRun(model, data, { iterations: 10, batchSize: 4, normalize: 'none' })).config;
  }
  it('a missing key and an unknown enum value are refused by name, never replaced by a default', async () => {
    const full = await config();
    const ops = [{ iteration: 0 }];
    const { momentum: _m, ...noMomentum } = full.optimizer;
    expect(() => native().scheduleValues({ ...full, optimizer: noMomentum as never }, ops)).toThrow(
      'optimizer.momentum is missing',
    );
    expect(() =>
      native().scheduleValues({ ...full, schedule: { ...full.schedule, type: 'bogus' as never } }, ops),
    ).toThrow('schedule.type: unknown value "bogus" (one of constant, multistep, cosine, onecycle, plateau)');
    expect(() => native().scheduleValues({ ...full, precision: 'float8' as never }, ops)).toThrow(
      'precision: unknown value "float8" (one of float32, bfloat16, float16)',
    );
    expect(() => native().scheduleValues({ ...full, augment: { ...full.augment, pad: 1.5 } }, ops)).toThrow(
      'augment.pad must be an integer',
    );
    expect(native().scheduleValues(full, ops)).toEqual([0.1]);
  });
  it("the defaults come from TRAIN_DEFAULTS alone: AdamW's weight decay is 0.01, SGD's 0", async () => {
    const data = await syntheticDataset(32, [1, 4, 4], 2);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 2, seed: 0 });
    const adamw = await resolveRun(model, data, {
      iterations: 10,
      batchSize: 4,
      optimizer: { type: 'adamw', lr: 1e-3 },
    });
    expect(adamw.config.optimizer).toMatchObject({
      type: 'adamw',
      weightDecay: 0.01,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
    });
    const sgd = await resolveRun(model, data, { iterations: 10, batchSize: 4, optimizer: { type: 'sgd', lr: 0.1 } });
    expect(sgd.config.optimizer).toMatchObject({ type: 'sgd', momentum: 0.9, weightDecay: 0, nesterov: false });
  });
});

describe('training behaviour', () => {
  it('overfits 512 Fashion-MNIST images to 100% training accuracy; the loss falls', async () => {
    const all = await datasets.fashionMnist({ split: 'train' });
    const subset = await all.take(512, 7);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, seed: 1 });
    const losses: number[] = [];
    const result = await train(model, subset, {
      epochs: 40,
      batchSize: 64,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
      schedule: { type: 'cosine' },
      logEvery: 8,
      onProgress: (e) => {
        if (e.kind === 'epoch') losses.push(e.loss!);
      },
    });
    expect(result.aborted).toBe(false);
    expect(losses.length).toBe(40);
    expect(losses[39]).toBeLessThan(losses[0] / 10);
    const metrics = await model.evaluate(subset);
    expect(metrics.accuracy).toBe(1);
  });

  it('reports progress as callbacks and as an async iterator, with evaluations on the held-out and test sets', async () => {
    const data = await syntheticDataset(96, [1, 8, 8], 4);
    const { train: tr, validation } = await data.split({ validation: 32, seed: 1 });
    const test = await syntheticDataset(40, [1, 8, 8], 4, 9);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 4, seed: 1 });
    const called: ProgressEvent[] = [];
    const run = train(model, tr, {
      epochs: 3,
      batchSize: 16,
      logEvery: 2,
      validation,
      test,
      onProgress: (e) => called.push(e),
    });
    const iterated: ProgressEvent[] = [];
    for await (const e of run) iterated.push(e);
    const result = await run;
    expect(iterated.map((e) => `${e.kind}@${e.iteration}`)).toEqual(called.map((e) => `${e.kind}@${e.iteration}`));
    expect(called.filter((e) => e.kind === 'iteration').map((e) => e.iteration)).toEqual([2, 4, 6, 8, 10, 12]);
    const epochs = called.filter((e) => e.kind === 'epoch');
    expect(epochs.map((e) => e.iteration)).toEqual([4, 8, 12]);
    expect(epochs[0].evaluations?.val && epochs[0].evaluations?.test).toBeTruthy();
    for (const e of called) {
      expect(e.lr > 0 && e.elapsedSeconds >= 0 && e.etaSeconds >= 0 && e.totalIterations === 12).toBeTruthy();
      if (e.kind === 'iteration')
        expect(e.imagesPerSecond! > 0 && e.loss! > 0 && e.trainError! >= 0 && e.trainError! <= 1).toBeTruthy();
    }
    const val = result.evaluations.val!;
    expect(val.count).toBe(32);
    expect(val.confusion.flat().reduce((a, b) => a + b, 0)).toBe(32);
    expect(result.history.length).toBe(3);
  });

  it('evaluate() agrees with metrics computed by hand from forward()', async () => {
    const data = await syntheticDataset(50, [1, 8, 8], 5, 3);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 5, seed: 2 });
    await train(model, data, { iterations: 10, batchSize: 10, normalize: 'none' });
    const m = await model.evaluate(data, { batchSize: 7 });
    const all = data.get(0, 50);
    const x = Float32Array.from(all.images as Uint8Array, (v) => v / 255);
    model.eval();
    const logits = await model.forward({ data: x, shape: all.shape });
    const confusion = Array.from({ length: 5 }, () => new Array(5).fill(0));
    let loss = 0,
      top5 = 0;
    for (let i = 0; i < 50; i++) {
      const row = Array.from(logits.data.subarray(i * 5, i * 5 + 5));
      const pred = row.indexOf(Math.max(...row));
      confusion[all.labels[i]][pred]++;
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      loss += lse - row[all.labels[i]];
      top5++;
    }
    expect(m.confusion).toEqual(confusion);
    const correct = confusion.reduce((a, r, i) => a + r[i], 0);
    expect(Math.abs(m.top1Error - (1 - correct / 50))).toBeLessThan(1e-12);
    expect(Math.abs(m.loss - loss / 50)).toBeLessThan(1e-4);
    expect(m.top5Error).toBe(1 - top5 / 50);
    confusion.forEach((r, i) =>
      expect(Math.abs(m.perClassAccuracy[i] - r[i] / r.reduce((a, b) => a + b, 0))).toBeLessThan(1e-12),
    );
  });

  it('random-resized-crop trains at its own size; evaluation resizes the stored images to it', async () => {
    const data = await syntheticDataset(64, [3, 40, 40], 3);
    const model = await createModel({ arch: 'cifar-resnet20', numClasses: 3, seed: 1 });
    const result = await train(model, data, {
      epochs: 2,
      batchSize: 16,
      validation: data,
      augment: { randomResizedCrop: { size: 24, scale: [0.3, 1] }, flip: true },
    });
    expect(result.iteration).toBe(8);
    expect(model.preprocessing?.size).toEqual([24, 24]);
    expect(result.evaluations.val!.count).toBe(64);
    // FixRes: training on 24 crops, evaluating (and predicting) at 20.
    const fixRes = await createModel({ arch: 'cifar-resnet20', numClasses: 3, seed: 1 });
    const atTwenty = await train(fixRes, data, {
      epochs: 1,
      batchSize: 16,
      validation: data,
      augment: { randomResizedCrop: { size: 24, evalSize: 20 } },
    });
    expect(fixRes.preprocessing?.size).toEqual([20, 20]);
    expect(fixRes.preprocessing?.inputSize).toEqual([20, 20]);
    expect(atTwenty.evaluations.val!.count).toBe(64);
    // The run's own last evaluation (resized by the native loop) is the model's evaluate() at 20 (resized from
    // its preprocessing): at 24 the loss would differ.
    expect(Math.abs((await fixRes.evaluate(data)).loss - atTwenty.evaluations.val!.loss)).toBeLessThan(1e-6);
    await expect(
      train(model, data, { epochs: 1, batchSize: 16, augment: { randomResizedCrop: { size: 2 } } }).done,
    ).rejects.toThrow(/augment.randomResizedCrop.size: inputs of 2x2 are too small for the model \(minimum 4x4\)/);
  });

  it('two seeded deterministic runs give identical weights; another seed gives different ones', async () => {
    const data = await syntheticDataset(64, [1, 10, 10], 3);
    const run = async (seed: number) => {
      const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed });
      await train(model, data, {
        epochs: 2,
        batchSize: 16,
        seed,
        deterministic: true,
        augment: { padCrop: 2, flip: true },
      });
      return weightsHash(model);
    };
    const a = await run(5);
    expect(await run(5)).toBe(a);
    expect(await run(6)).not.toBe(a);
  });

  it('batches prepared on the training thread (the CPU default) or on a thread of their own train identical weights', () => {
    // The switch is read from the process's environment (jest's process.env is a copy): a process each.
    const script = `const r = require(process.argv[1]);
      (async () => {
        const n = 64, images = new Uint8Array(n * 100).map((_, i) => (i * 37 + (i >> 7)) % 251);
        const data = await r.fromArrays({ images, shape: [n, 1, 10, 10], labels: Array.from({ length: n }, (_, i) => i % 3) });
        const model = await r.createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 3, seed: 3 });
        await r.train(model, data, { epochs: 2, batchSize: 16, seed: 3, deterministic: true, augment: { padCrop: 2, flip: true } });
        const h = require('crypto').createHash('sha256');
        for (const t of await model.handle().exportState()) h.update(t.name).update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        console.log(h.digest('hex'));
      })();`;
    const hash = (thread: string) => {
      const child = spawnSync(process.execPath, ['-e', script, path.join(ROOT, 'dist')], {
        env: { ...process.env, RESNET_TORCH_PREFETCH_THREAD: thread },
        encoding: 'utf8',
      });
      expect(child.stderr).toBe('');
      return child.stdout.trim();
    };
    const inline = hash('0');
    expect(inline).toMatch(/^[0-9a-f]{64}$/);
    expect(hash('1')).toBe(inline);
  });

  it('a CPU training runs beside no other OpenMP team: the idle team a forward left on a libuv thread ends', () => {
    // libgomp counts the threads of every team, idle ones too, and once they outnumber the cores its threads sleep
    // after every parallel region (device/runtime.h). Threads of the process: after a forward (libuv's pool, the
    // forward's team), then during training: one thread more (the training thread, its team's workers replacing the
    // forward's), where the forward's team left alive would make it two or more.
    const script = `const r = require(process.argv[1]);
      const fs = require('fs');
      const threads = () => fs.readdirSync('/proc/self/task').length;
      (async () => {
        const model = await r.createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
        await model.forward({ data: new Float32Array(64 * 256).fill(0.5), shape: [64, 1, 16, 16] });
        await new Promise((resolve) => setTimeout(resolve, 50));
        const before = threads();
        const data = await r.fromArrays({ images: new Uint8Array(64 * 256).fill(9), shape: [64, 1, 16, 16], labels: Array.from({ length: 64 }, (_, i) => i % 2) });
        let during = 0;
        const run = r.train(model, data, { iterations: 40, batchSize: 32, logEvery: 10 });
        for await (const e of run) if (e.kind === 'iteration' && e.iteration === 30) during = threads();
        await run;
        console.log(JSON.stringify({ before, during, omp: r.info().threads.intraOp }));
      })();`;
    const child = spawnSync(process.execPath, ['-e', script, path.join(ROOT, 'dist')], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    const { before, during, omp } = JSON.parse(child.stdout);
    expect(omp).toBeGreaterThanOrEqual(1);
    expect(during).toBe(before + 1);
  });

  it("result.phases account for the run's time: forward, backward and optimizer measured, nothing beyond the wall time", async () => {
    const data = await syntheticDataset(256, [1, 16, 16], 3);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 1 });
    const started = process.hrtime.bigint();
    const { phases } = await train(model, data, { iterations: 8, batchSize: 32, augment: { padCrop: 2, flip: true } });
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const keys = ['dataWait', 'forward', 'backward', 'optimizer', 'other', 'gather', 'augment'] as const;
    expect(Object.keys(phases).sort()).toEqual([...keys].sort());
    for (const k of keys) expect(phases[k]).toBeGreaterThanOrEqual(0);
    for (const k of ['forward', 'backward', 'optimizer'] as const) expect(phases[k]).toBeGreaterThan(0);
    const loop = phases.dataWait + phases.forward + phases.backward + phases.optimizer + phases.other;
    expect(loop).toBeLessThanOrEqual(wall);
    // On the CPU the batches are prepared inside dataWait.
    expect(phases.gather + phases.augment).toBeLessThanOrEqual(phases.dataWait + 1e-3);
    expect(phases.gather + phases.augment).toBeGreaterThan(0);
  });

  it('an AbortSignal stops mid-epoch after a complete iteration; the run resolves with aborted: true', async () => {
    const data = await syntheticDataset(640, [1, 8, 8], 3);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 1 });
    const controller = new AbortController();
    // A million iterations: only the abort ends this run, whatever the machine's speed.
    const result = await train(model, data, {
      iterations: 1_000_000,
      batchSize: 16,
      logEvery: 1,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.iteration === 7) controller.abort();
      },
    });
    expect(result.aborted).toBe(true);
    expect(result.iteration).toBeGreaterThanOrEqual(7);
    expect(result.iteration).toBeLessThan(1_000_000);
    // The model is usable (and consistent) afterwards.
    const metrics = await model.evaluate(data);
    expect(Number.isFinite(metrics.loss)).toBeTruthy();
  });

  it('runs two trainings at once in one process, each on its own thread, and refuses to train one model twice', async () => {
    const data = await syntheticDataset(512, [1, 8, 8], 3);
    const a = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 1 });
    const b = await createModel({ arch: 'cifar-plain20', inChannels: 1, numClasses: 3, seed: 1 });
    // Try the second training once the first has reported progress, so it is surely running (not finished) then.
    let started!: () => void;
    const firstProgress = new Promise<void>((r) => (started = r));
    const runA = train(a, data, { epochs: 2, batchSize: 16, logEvery: 1, onProgress: () => started() });
    const runB = train(b, data, { epochs: 2, batchSize: 16 });
    await firstProgress;
    const twice = await train(a, data, { epochs: 1, batchSize: 16 }).then(
      () => 'trained',
      (e: unknown) => (e as Error).name,
    );
    expect(twice).toBe('BusyError');
    await expect(a.forward({ data: new Float32Array(64), shape: [1, 1, 8, 8] })).rejects.toThrow(BusyError);
    const [ra, rb] = await Promise.all([runA, runB]);
    expect(ra.iteration).toBe(64);
    expect(rb.iteration).toBe(64);
  });

  it('trains in a worker thread', async () => {
    const script = `
      const { parentPort } = require('worker_threads');
      const r = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      (async () => {
        const images = new Uint8Array(64 * 64).map((_, i) => (i * 31) % 251);
        const data = await r.fromArrays({ images, shape: [64, 1, 8, 8], labels: Array.from({ length: 64 }, (_, i) => i % 2) });
        const m = await r.createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 2, seed: 1 });
        const res = await r.train(m, data, { epochs: 2, batchSize: 16 });
        parentPort.postMessage({ iteration: res.iteration, aborted: res.aborted });
      })();`;
    const worker = new Worker(script, { eval: true });
    const message = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(message).toEqual({ iteration: 8, aborted: false });
  });

  it('diagnostics report per-block gradient norms and response stds; identity blocks pass the gradient unchanged', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 3);
    const diagnostics = async (spec: object) => {
      const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 3, ...spec });
      const events: ProgressEvent[] = [];
      await train(model, data, {
        iterations: 2,
        batchSize: 32,
        logEvery: 1,
        diagnostics: true,
        onProgress: (e) => events.push(e),
      });
      // The first report is taken before any update: the network as initialised.
      return events.find((e) => e.kind === 'iteration' && e.diagnostics)!.diagnostics!;
    };
    const d = await diagnostics({});
    expect(d.gradNorms.length).toBe(9);
    expect(d.responseStds.length).toBe(9);
    expect(d.responseStds.every((v) => v > 0 && Number.isFinite(v))).toBeTruthy();
    expect(d.gradNorms.every((v) => v > 0 && Number.isFinite(v))).toBeTruthy();
    // With every residual branch zero (last BN γ = 0), x_L = x_l (the paper's eq. 4 with F = 0), so
    // ∂E/∂x_l = ∂E/∂x_L for every block of a stage, and every response is exactly 0.
    const z = await diagnostics({ zeroInitResidual: true });
    expect(z.responseStds.every((v) => v === 0)).toBeTruthy();
    for (const stage of [
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
    ])
      for (const i of stage.slice(1)) expect(Math.abs(z.gradNorms[i] / z.gradNorms[stage[0]] - 1)).toBeLessThan(1e-5);
  });
});

describe('bad options are refused before training starts, naming the option', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'negative lr',
      { epochs: 1, optimizer: { type: 'sgd', lr: -0.1 } },
      /optimizer.lr: expected a number in \(0, 100\], got -0.1/,
    ],
    [
      'milestones out of order',
      { iterations: 100, schedule: { type: 'multistep', milestones: [50, 20] } },
      /schedule.milestones: milestones must be strictly increasing/,
    ],
    [
      'a milestone after the end',
      { iterations: 100, schedule: { type: 'multistep', milestones: [50, 200] }, batchSize: 16 },
      /schedule.milestones: 200 is not before the end of the run/,
    ],
    [
      'batch larger than the dataset',
      { epochs: 1, batchSize: 1000 },
      /batchSize: 1000 is larger than the training set \(64 images\)/,
    ],
    ['epochs and iterations', { epochs: 1, iterations: 5 }, /exactly one of epochs and iterations/],
    [
      'unknown option',
      { epochs: 1, batchsize: 8 },
      /batchsize: unknown key "batchsize" \(did you mean "batchSize"\?\)/,
    ],
    [
      'unknown optimizer',
      { epochs: 1, optimizer: { type: 'rmsprop', lr: 0.1 } },
      /optimizer.type: expected one of "sgd", "adamw", "lamb", got "rmsprop"/,
    ],
    [
      'momentum out of range',
      { epochs: 1, optimizer: { type: 'sgd', lr: 0.1, momentum: 1.5 } },
      /optimizer.momentum: expected a number in \[0, 1\), got 1.5/,
    ],
    [
      'mixed precision on the CPU',
      { epochs: 1, precision: 'float16', batchSize: 16 },
      /precision: float16 needs the model on a CUDA device/,
    ],
    [
      'plateau on a split not given',
      { epochs: 1, schedule: { type: 'plateau', metric: 'val_loss' }, batchSize: 16 },
      /schedule.metric: val_loss needs the validation option/,
    ],
    [
      'crop larger than allowed',
      { epochs: 1, augment: { padCrop: -1 } },
      /augment.padCrop: expected an integer in \[0, 512\], got -1/,
    ],
  ];
  for (const [name, options, pattern] of cases) {
    it(name, async () => {
      const data = await syntheticDataset(64, [1, 8, 8], 3);
      const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 1 });
      const e = await rejection(train(model, data, options as never).done);
      expect(e).toBeInstanceOf(ValidationError);
      expect(e.message).toMatch(pattern);
    });
  }
  it("labels out of the model's range and images of the wrong channels or size", async () => {
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 1 });
    const fiveClasses = await syntheticDataset(64, [1, 8, 8], 5);
    await expect(train(model, fiveClasses, { epochs: 1, batchSize: 16 }).done).rejects.toThrow(
      /has 5 classes \(labels up to 4\), the model has 3 outputs: labels out of range/,
    );
    const rgb = await syntheticDataset(64, [3, 8, 8], 3);
    await expect(train(model, rgb, { epochs: 1, batchSize: 16 }).done).rejects.toThrow(
      /has 3-channel images, the model takes 1/,
    );
    const big = await createModel({ arch: 'resnet18', inChannels: 1, numClasses: 3, seed: 1 });
    const tiny = await syntheticDataset(64, [1, 16, 16], 3);
    await expect(train(big, tiny, { epochs: 1, batchSize: 16 }).done).rejects.toThrow(
      /inputs of 16x16 are too small for the model \(minimum 32x32\)/,
    );
    await expect(
      fromArrays({ images: new Uint8Array(4), shape: [4, 1, 1, 1], labels: [0, 1, 2, 7], numClasses: 3 }),
    ).rejects.toThrow(/label 7 is out of range for 3 classes/);
  });
});
