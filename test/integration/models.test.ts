// The ResNet family against independent references: the papers' and torchvision's parameter counts,
// torchvision's state_dict names, and forward outputs of torchvision / a separate Python implementation.
import * as path from 'path';

import { Model, ModelSpec, ValidationError, createModel, resolveArch } from '../../lib';
import { readSafetensors, typedArrayOf } from '../../lib/io/safetensors';
import { maxAbs, maxAbsDiff, readFloat32, tempDir } from '../../harness/files';
import { runPython } from '../../harness/python';
import { itWithTimm, itWithTorch, runTimm } from '../helpers/reference';
import { rejection } from '../helpers/errors';

const IMAGENET_PARAMS: Record<string, number> = {
  resnet18: 11_689_512,
  resnet34: 21_797_672,
  resnet50: 25_557_032,
  resnet101: 44_549_160,
  resnet152: 60_192_808,
};
// torchvision's ResNeXt and Wide ResNet (its model docs' "num_params" and "GFLOPS", multiply-adds at 224²).
const GROUPED: Record<string, { params: number; gmacs: number }> = {
  resnext50_32x4d: { params: 25_028_904, gmacs: 4.23 },
  resnext101_32x8d: { params: 88_791_336, gmacs: 16.41 },
  resnext101_64x4d: { params: 83_455_272, gmacs: 15.46 },
  wide_resnet50_2: { params: 68_883_240, gmacs: 11.4 },
  wide_resnet101_2: { params: 126_886_696, gmacs: 22.75 },
};
// timm's Bag-of-Tricks and squeeze-and-excitation ResNets: sum(p.numel() for p in timm.create_model(name).parameters()),
// timm 1.0.31.
const TIMM_PARAMS: Record<string, number> = {
  resnet18d: 11_708_744,
  resnet26d: 16_014_408,
  resnet50c: 25_576_264,
  resnet50d: 25_576_264,
  resnet50s: 25_680_808,
  resnet200d: 64_693_064,
  seresnet18: 11_779_624,
  seresnet50: 28_088_024,
  resnext50d_32x4d: 25_048_136,
  seresnext50_32x4d: 27_559_896,
  seresnext26d_32x4d: 16_809_512,
};
const CIFAR_PARAMS: Record<number, number> = { 20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962 };

describe('parameter counts', () => {
  for (const [arch, count] of Object.entries(IMAGENET_PARAMS)) {
    it(`${arch} (1000 classes, option B) has ${count.toLocaleString('en-US')}`, async () => {
      const m = await createModel({ arch, seed: 0 });
      expect(m.parameterCount()).toBe(count);
      m.dispose();
    });
  }
  for (const [depth, count] of Object.entries(CIFAR_PARAMS)) {
    it(`cifar-resnet${depth} (option A) and cifar-plain${depth} have ${count.toLocaleString('en-US')}`, async () => {
      for (const arch of [`cifar-resnet${depth}`, `cifar-plain${depth}`]) {
        const m = await createModel({ arch, seed: 0 });
        expect(m.parameterCount()).toBe(count);
        m.dispose();
      }
    });
  }
  for (const [arch, { params, gmacs }] of Object.entries(GROUPED)) {
    it(`${arch} has torchvision's ${params.toLocaleString('en-US')} parameters and ${gmacs} G multiply-adds at 224²`, async () => {
      const m = await createModel({ arch, seed: 0 });
      expect(m.parameterCount()).toBe(params);
      expect(Math.abs(m.summary().totalMacs / 1e9 - gmacs)).toBeLessThan(0.006);
      m.dispose();
    });
  }
  it('groups and widthPerGroup make any bottleneck depth a ResNeXt or a Wide ResNet', async () => {
    // resnext101_64x4d from resnet101's depths; a wide_resnet152_2 (torchvision has no name for it): conv2 of a
    // bottleneck is ⌊planes · widthPerGroup / 64⌋ · groups wide, 3x3 over channels/groups inputs.
    const x = await createModel({ arch: 'resnet101', groups: 64, widthPerGroup: 4, seed: 0 });
    expect(x.parameterCount()).toBe(GROUPED.resnext101_64x4d.params);
    expect(x.stateDict().find((e) => e.name === 'layer1.0.conv2.weight')!.shape).toEqual([256, 4, 3, 3]);
    const wide = await createModel({ arch: 'wide_resnet152_2', seed: 0 });
    expect(wide.stateDict().find((e) => e.name === 'layer4.2.conv2.weight')!.shape).toEqual([1024, 1024, 3, 3]);
    expect(wide.spec).toMatchObject({ groups: 1, widthPerGroup: 128, depths: [3, 8, 36, 3] });
    x.dispose();
    wide.dispose();
  });
  it('refuses groups where they cannot apply, naming the field', async () => {
    const cases: [ModelSpec, string, RegExp][] = [
      [{ arch: 'resnet18', groups: 32 }, 'groups', /basic blocks have no grouped or widened 3x3/],
      [{ arch: 'cifar-resnet20', widthPerGroup: 128 }, 'widthPerGroup', /basic blocks/],
      [{ arch: 'resnext50_32x4d', groups: 8 }, 'groups', /resnext50_32x4d has groups 32/],
      [{ arch: 'resnet50', widthPerGroup: 0 }, 'widthPerGroup', /an integer in \[1, 4096\]/],
      [
        { block: 'bottleneck', depths: [1], stem: 'cifar', widths: [16], widthPerGroup: 3 },
        'widthPerGroup',
        /no channel in each group/,
      ],
      [{ arch: 'resnext50_0x4d' }, 'arch', /resnextD_GxWd/],
      [{ arch: 'resnext34_32x4d' }, 'arch', /one of/],
    ];
    for (const [spec, field, message] of cases) {
      const e = await rejection(createModel(spec));
      expect(e).toBeInstanceOf(ValidationError);
      expect([e.field, e.message]).toEqual([field, expect.stringMatching(message)]);
    }
    // A resolved spec (as a checkpoint stores it) repeats the arch's own values: accepted.
    const m = await createModel({ arch: 'resnext50_32x4d', groups: 32, widthPerGroup: 4, seed: 0 });
    m.dispose();
  });
  it("cifar-resnet1202 has the paper's 19.4M (19,421,274)", async () => {
    const m = await createModel({ arch: 'cifar-resnet1202', seed: 0 });
    expect(m.parameterCount()).toBe(19_421_274);
    m.dispose();
  });
  it("preact-resnet164 (bottleneck, 9n+2) has the Identity Mappings paper's 1.7M", async () => {
    const m = await createModel({ arch: 'preact-resnet164', seed: 0 });
    expect(Math.abs(m.parameterCount() - 1.7e6)).toBeLessThan(0.05e6);
    expect(m.stateDict().filter((e) => /^layer\d\.\d+\.conv1\.weight$/.test(e.name)).length).toBe(54);
    m.dispose();
  });
  it('the 6n+2 and 9n+2 families count their layers', () => {
    expect(resolveArch('cifar-resnet110')?.depths).toEqual([18, 18, 18]);
    expect(resolveArch('preact-resnet1001')?.depths).toEqual([111, 111, 111]);
    expect(resolveArch('cifar-resnet21')).toBe(undefined);
    expect(resolveArch('preact-resnet165')).toBe(undefined);
  });
});

describe("timm's ResNet variants (ResNet-C/D, squeeze-and-excitation) by timm's names", () => {
  for (const [arch, count] of Object.entries(TIMM_PARAMS)) {
    it(`${arch} has timm's ${count.toLocaleString('en-US')} parameters`, async () => {
      const m = await createModel({ arch, seed: 0 });
      expect(m.parameterCount()).toBe(count);
      m.dispose();
    });
  }
  // 72²: the third stage sees 9×9, so ResNet-D's ceil-mode average pool meets an odd side.
  for (const arch of ['resnet50d', 'seresnet50', 'resnet18d', 'seresnext26d_32x4d', 'resnet50s']) {
    itWithTimm(
      `${arch}: timm's state_dict keys and shapes; its weights give timm's logits (eval and train)`,
      async () => {
        const dir = await tempDir();
        const ref = JSON.parse(await runTimm('timm_forward.py', [arch, dir, '5', '2', '72', '10']));
        const m = await createModel({ arch, numClasses: 10, seed: 0 });
        expect(m.stateDict().map((e) => [e.name, e.shape])).toEqual(ref.state);
        expect(m.parameterCount()).toBe(ref.params);
        await compareWithReference(m, dir, 2, 72);
        // torch.save's .pth of the same state dict, as timm's checkpoints come.
        const fromPth = await createModel({ arch, numClasses: 10, weights: path.join(dir, 'model.pth') });
        fromPth.eval();
        const out = await fromPth.forward({
          data: await readFloat32(path.join(dir, 'input.bin')),
          shape: [2, 3, 72, 72],
        });
        const expected = await readFloat32(path.join(dir, 'eval.bin'));
        expect(maxAbsDiff(out.data, expected)).toBeLessThan(1e-4 * Math.max(1, maxAbs(expected)));
        m.dispose();
        fromPth.dispose();
      },
    );
  }
  it('the variants are options of any ImageNet-stem net; a name fixes its own', async () => {
    const d = await createModel({ arch: 'resnet50', deepStem: true, avgDown: true, seed: 0 });
    expect(d.parameterCount()).toBe(TIMM_PARAMS.resnet50d);
    const names = d.stateDict().map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['conv1.0.weight', 'conv1.6.weight', 'layer2.0.downsample.1.weight']));
    expect(d.spec).toMatchObject({ deepStem: true, stemWidth: 32, avgDown: true, attention: 'none', dropPath: 0 });
    d.dispose();
    const cases: [ModelSpec, string, RegExp][] = [
      [{ arch: 'resnet50d', avgDown: false }, 'avgDown', /resnet50d has avgDown true/],
      [{ arch: 'seresnet50', attention: 'none' }, 'attention', /seresnet50 has attention "se"/],
      [{ arch: 'cifar-resnet20', deepStem: true }, 'deepStem', /CIFAR stem/],
      [{ arch: 'resnet50', stemWidth: 64 }, 'stemWidth', /only the deep stem/],
      [{ arch: 'cifar-resnet20', avgDown: true }, 'avgDown', /shortcut A has no projection/],
      [{ arch: 'resnet50', dropPath: 1 }, 'dropPath', /\[0, 1\)/],
      [{ arch: 'resnet50x' }, 'arch', /one of/],
    ];
    for (const [spec, field, message] of cases) {
      const e = await rejection(createModel(spec));
      expect(e).toBeInstanceOf(ValidationError);
      expect([e.field, e.message]).toEqual([field, expect.stringMatching(message)]);
    }
  });
  itWithTimm(
    "stochastic depth: timm's linear rule and per-sample drop, scaled by 1/(1-p); the identity in eval",
    async () => {
      // Two blocks: timm's rule gives the first 0 and the last p. In train mode each sample's logits are timm's
      // with the last residual kept (×1/(1-p)) or dropped; BN's batch statistics come before the drop, so both
      // candidates are exact.
      const dir = await tempDir();
      const [batch, size, p] = [64, 32, 0.5];
      await runTimm('timm_drop_path.py', [dir, '9', String(batch), String(size), String(p)]);
      const m = await createModel({
        block: 'basic',
        depths: [1, 1],
        stem: 'imagenet',
        numClasses: 5,
        dropPath: p,
        seed: 0,
      });
      await m.loadWeights(path.join(dir, 'weights.safetensors'));
      const input = { data: await readFloat32(path.join(dir, 'input.bin')), shape: [batch, 3, size, size] };
      const [kept, dropped, evalRef] = await Promise.all(
        ['kept', 'dropped', 'eval'].map((n) => readFloat32(path.join(dir, `${n}.bin`))),
      );
      const tol = 1e-4 * Math.max(1, maxAbs(kept));
      // Eval first: the training forwards below move the running statistics.
      m.eval();
      expect(maxAbsDiff((await m.forward(input)).data, evalRef)).toBeLessThan(tol);
      const masks: string[] = [];
      m.train();
      for (let pass = 0; pass < 2; pass++) {
        const out = (await m.forward(input)).data;
        let mask = '';
        for (let i = 0; i < batch; i++) {
          const row = (a: Float32Array) => a.subarray(i * 5, i * 5 + 5);
          const k = maxAbsDiff(row(out), row(kept)),
            d = maxAbsDiff(row(out), row(dropped));
          expect(Math.min(k, d)).toBeLessThan(tol);
          mask += k < d ? '1' : '0';
        }
        const drops = [...mask].filter((c) => c === '0').length;
        // Binomial(64, 0.5): outside [16, 48] with probability 1e-4 (and the seed fixes it).
        expect(drops).toBeGreaterThanOrEqual(16);
        expect(drops).toBeLessThanOrEqual(48);
        masks.push(mask);
      }
      expect(masks[0]).not.toBe(masks[1]); // each training forward draws its own masks
      m.dispose();
    },
  );
});

describe('torchvision names and shapes', () => {
  itWithTorch("the ImageNet family has torchvision's state_dict keys, in order, with the same shapes", async () => {
    const reference = JSON.parse(await runPython('state_names.py', [])) as Record<
      string,
      { state: [string, number[]][]; params: number }
    >;
    for (const [arch, ref] of Object.entries(reference)) {
      const m = await createModel({ arch, seed: 0 });
      const ours = m.stateDict().map((e) => [e.name, e.shape]);
      expect(ours).toEqual(ref.state);
      expect(m.parameterCount()).toBe(ref.params);
      m.dispose();
    }
  });
});

async function compareWithReference(model: Model, dir: string, batch: number, size: number, channels = 3) {
  await model.loadWeights(path.join(dir, 'weights.safetensors'));
  const input = { data: await readFloat32(path.join(dir, 'input.bin')), shape: [batch, channels, size, size] };
  const expectEval = await readFloat32(path.join(dir, 'eval.bin'));
  const expectTrain = await readFloat32(path.join(dir, 'train.bin'));
  model.eval();
  const outEval = await model.forward(input);
  model.train();
  const outTrain = await model.forward(input);
  const tol = 1e-4 * Math.max(1, maxAbs(expectEval));
  expect(outEval.shape).toEqual([batch, model.numClasses]);
  expect(maxAbsDiff(outEval.data, expectEval)).toBeLessThan(tol);
  expect(maxAbsDiff(outTrain.data, expectTrain)).toBeLessThan(1e-4 * Math.max(1, maxAbs(expectTrain)));
}

describe('forward equals torchvision on the same weights and input', () => {
  for (const [arch, size] of [
    ['resnet18', 64],
    ['resnet50', 64],
    ['resnext50_32x4d', 64],
    ['wide_resnet50_2', 64],
  ] as const) {
    itWithTorch(`${arch}, eval and train mode, and BN running statistics after the train pass`, async () => {
      const dir = await tempDir();
      await runPython('torchvision_forward.py', [arch, dir, '7', '3', String(size)]);
      const m = await createModel({ arch, seed: 0 });
      await compareWithReference(m, dir, 3, size);
      const after = await readSafetensors(path.join(dir, 'after_train.safetensors'));
      const ours = new Map((await m.handle().exportState()).map((t) => [t.name, t]));
      for (const [name, t] of after.tensors) {
        if (!name.endsWith('running_mean') && !name.endsWith('running_var') && !name.endsWith('num_batches_tracked'))
          continue;
        const mine = ours.get(name)!;
        if (t.dtype === 'I64')
          expect(Array.from(mine.data as BigInt64Array)).toEqual(Array.from(typedArrayOf(t) as BigInt64Array));
        else expect(maxAbsDiff(mine.data as Float32Array, typedArrayOf(t) as Float32Array)).toBeLessThan(1e-4);
      }
      m.dispose();
    });
  }
  itWithTorch(
    "resnet50 with the paper's stride placement (on the first 1x1) equals torchvision modified the same way",
    async () => {
      const dir = await tempDir();
      await runPython('torchvision_forward.py', ['resnet50', dir, '3', '2', '64', 'paper-stride']);
      const m = await createModel({ arch: 'resnet50', stride: 'conv1x1', seed: 0 });
      await compareWithReference(m, dir, 2, 64);
      m.dispose();
    },
  );
});

describe('forward equals an independent Python implementation (CIFAR family, options A/B/C, pre-activation, λ)', () => {
  const cases: { name: string; spec: Record<string, unknown>; arch?: string; size?: number; batch?: number }[] = [
    { name: 'cifar-resnet20, option A', arch: 'cifar-resnet20', spec: { shortcut: 'A' } },
    { name: 'cifar-plain20', arch: 'cifar-plain20', spec: { shortcut: 'none' } },
    { name: 'cifar-resnet20, option B', arch: 'cifar-resnet20', spec: { shortcut: 'B' } },
    { name: 'cifar-resnet20, option C', arch: 'cifar-resnet20', spec: { shortcut: 'C' } },
    {
      name: 'cifar-resnet20, λ = 0.5, Fashion-MNIST shape (1 channel, 28x28)',
      arch: 'cifar-resnet20',
      spec: { shortcut: 'A', shortcutScale: 0.5, inChannels: 1 },
      size: 28,
    },
    { name: 'cifar-preact-resnet20', arch: 'cifar-preact-resnet20', spec: { shortcut: 'B', preact: true } },
    { name: 'preact-resnet47 (bottleneck, 9n+2)', arch: 'preact-resnet47', spec: { shortcut: 'B', preact: true } },
    {
      name: 'resnet34 with option A (zero-padding)',
      arch: 'resnet34',
      spec: { shortcut: 'A', numClasses: 7 },
      size: 64,
      batch: 2,
    },
    { name: 'plain34', arch: 'plain34', spec: { shortcut: 'none', numClasses: 5 }, size: 64, batch: 2 },
    {
      name: 'bottleneck stack, option A, paper stride',
      spec: { block: 'bottleneck', depths: [2, 2], widths: [8, 16], stem: 'cifar', shortcut: 'A', stride: 'conv1x1' },
    },
    {
      name: 'bottleneck stack, option C, pre-activation',
      spec: { block: 'bottleneck', depths: [1, 2], widths: [8, 16], stem: 'cifar', shortcut: 'C', preact: true },
    },
    // One image without autograd takes the direct oneDNN route (apply_conv), every conv kind included.
    { name: 'cifar-resnet20, option B, one image', arch: 'cifar-resnet20', spec: { shortcut: 'B' }, batch: 1 },
    {
      name: 'bottleneck stack, option C, paper stride, one image',
      spec: { block: 'bottleneck', depths: [1, 2], widths: [8, 16], stem: 'cifar', shortcut: 'C', stride: 'conv1x1' },
      batch: 1,
    },
    {
      name: 'resnet34 with option B, one image',
      arch: 'resnet34',
      spec: { shortcut: 'B', numClasses: 7 },
      size: 64,
      batch: 1,
    },
  ];
  for (const c of cases) {
    itWithTorch(c.name, async () => {
      const size = c.size ?? 32;
      const batch = c.batch ?? 4;
      const arch = c.arch ? resolveArch(c.arch)! : undefined;
      const full = { ...(arch ?? {}), ...c.spec };
      const dir = await tempDir();
      const out = JSON.parse(
        await runPython('reference_forward.py', [dir, '11', String(batch), String(size), JSON.stringify(full)]),
      );
      const { shortcut, shortcutScale, inChannels, numClasses, stride } = c.spec as Record<string, never>;
      const spec = c.arch
        ? { arch: c.arch, shortcut, shortcutScale, inChannels, numClasses, seed: 0 }
        : { ...(c.spec as object), seed: 0 };
      const m = await createModel(JSON.parse(JSON.stringify({ ...spec, stride })));
      expect(m.parameterCount()).toBe(out.params);
      expect(m.stateDict().map((e) => e.name)).toEqual(out.names);
      await compareWithReference(m, dir, batch, size, (c.spec.inChannels as number) ?? 3);
      m.dispose();
    });
  }
});

describe('summary', () => {
  // The paper's Table 1 "FLOPs" are multiply-adds at 224x224, with the stride on the bottleneck's first 1x1.
  const PAPER_GFLOPS: Record<string, number> = {
    resnet18: 1.8,
    resnet34: 3.6,
    resnet50: 3.8,
    resnet101: 7.6,
    resnet152: 11.3,
  };
  for (const [arch, gflops] of Object.entries(PAPER_GFLOPS)) {
    it(`${arch} at 224² has the paper's ${gflops} G multiply-adds`, async () => {
      const bottleneck = resolveArch(arch)!.block === 'bottleneck';
      const m = await createModel({ arch, seed: 0, ...(bottleneck ? { stride: 'conv1x1' as const } : {}) });
      const summary = m.summary();
      expect(Math.abs(summary.totalMacs / 1e9 - gflops)).toBeLessThan(0.1);
      expect(summary.totalParams).toBe(m.parameterCount());
      expect(summary.layers.reduce((a, l) => a + l.params, 0)).toBe(m.parameterCount());
      m.dispose();
    });
  }
  it('gives per-layer output shapes and multiply-adds computed by hand', async () => {
    const m = await createModel({ arch: 'resnet18', seed: 0 });
    const layers = new Map(m.summary().layers.map((l) => [l.name, l]));
    expect(layers.get('conv1')!.outputShape).toEqual([1, 64, 112, 112]);
    expect(layers.get('conv1')!.macs).toBe(64 * 112 * 112 * 3 * 7 * 7);
    expect(layers.get('maxpool')!.outputShape).toEqual([1, 64, 56, 56]);
    expect(layers.get('layer2.0.downsample.0')!.outputShape).toEqual([1, 128, 28, 28]);
    expect(layers.get('layer4.1.conv2')!.outputShape).toEqual([1, 512, 7, 7]);
    expect(layers.get('fc')!.macs).toBe(512 * 1000);
    m.dispose();
  });
});

describe("initialisation (torchvision's)", () => {
  it('kaiming normal (fan_out) convs, BN γ=1 β=0, linear in ±1/√fan_in; zeroInitResidual zeros each last BN γ', async () => {
    const m = await createModel({ arch: 'resnet50', seed: 5, zeroInitResidual: true });
    const state = new Map((await m.handle().exportState()).map((t) => [t.name, t.data as Float32Array]));
    const w = state.get('layer3.1.conv2.weight')!; // 256 x 256 x 3 x 3
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    expect(Math.abs(std - Math.sqrt(2 / (256 * 9)))).toBeLessThan(0.02 * Math.sqrt(2 / (256 * 9)));
    expect(state.get('bn1.weight')!.every((v) => v === 1)).toBeTruthy();
    expect(state.get('bn1.bias')!.every((v) => v === 0)).toBeTruthy();
    expect(state.get('layer1.0.bn3.weight')!.every((v) => v === 0)).toBeTruthy();
    expect(state.get('layer1.0.bn2.weight')!.every((v) => v === 1)).toBeTruthy();
    const fc = state.get('fc.weight')!;
    const bound = 1 / Math.sqrt(2048);
    expect(fc.every((v) => Math.abs(v) <= bound) && maxAbs(fc) > 0.99 * bound).toBeTruthy();
    m.dispose();
  });
  it('the same seed gives the same weights; another seed different ones', async () => {
    const weights = async (seed: number) => {
      const m = await createModel({ arch: 'cifar-resnet20', seed });
      const w = (await m.handle().exportState()).find((t) => t.name === 'layer2.0.conv1.weight')!.data as Float32Array;
      m.dispose();
      return w;
    };
    expect(await weights(3)).toEqual(await weights(3));
    expect(await weights(3)).not.toEqual(await weights(4));
  });
});
