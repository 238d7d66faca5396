// Devices and fast inference on this machine's CPU: CUDA is refused clearly where it is missing, and the
// BN-folded inference model gives torchvision's logits. (The CUDA paths are checked by scripts/gpu/.)
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { DeviceError, InferenceModel, ValidationError, createModel, cuda, info, listDevices, train } from '../../lib';
import { maxAbs, maxAbsDiff, randomFloats, readFloat32, tempDir } from '../../harness/files';
import { runPython } from '../../harness/python';
import { calibrationImages, compareOnTest, fashionModel } from '../helpers/fashion';
import { itWithTorch } from '../helpers/reference';
import { syntheticDataset } from '../../harness/synthetic';
import { rejection } from '../helpers/errors';

describe('devices', () => {
  // With CUDA, scripts/gpu checks these paths.
  (info().cuda.available ? it.skip : it)(
    'without CUDA: no devices, memory stats and cache control refuse with DeviceError, CUDA options are refused by name',
    async () => {
      expect(listDevices()).toEqual([]);
      expect(cuda.isAvailable()).toBe(false);
      expect(() => cuda.memoryStats()).toThrow(DeviceError);
      expect(() => cuda.emptyCache()).toThrow(DeviceError);
      const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 3, seed: 1 });
      const data = await syntheticDataset(32, [1, 8, 8], 3);
      const e = await rejection(train(model, data, { iterations: 1, batchSize: 16, cudaGraph: true }).done);
      expect(e).toBeInstanceOf(ValidationError);
      expect(e.message).toMatch(/cudaGraph: needs the model on a CUDA device \(it is on cpu\)/);
      await expect(train(model, data, { iterations: 1, batchSize: 16, precision: 'float16' }).done).rejects.toThrow(
        /precision: float16 needs the model on a CUDA device \(it is on cpu\); the CPU takes bfloat16/,
      );
      await expect(model.to('cuda:0')).rejects.toThrow(DeviceError);
    },
  );
});

// One small model through forward, two training steps and the BN-folded model, in a child process; prints JSON.
const oneDnnJob = `
  const r = require(${JSON.stringify(path.resolve(__dirname, '../../dist'))});
  (async () => {
    const m = await r.createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 3, seed: 4 });
    const x = { data: Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i)), shape: [2, 1, 8, 8] };
    const data = await r.fromArrays({ images: new Uint8Array(32 * 64).map((_, i) => i * 7), shape: [32, 1, 8, 8],
      labels: Array.from({ length: 32 }, (_, i) => i % 3) });
    const logits = Array.from((await m.forward(x)).data);
    const trained = await r.train(m, data, { iterations: 2, batchSize: 16 }).done;
    m.train(false);
    const fast = await m.optimizeForInference();
    const out = { info: r.info(), logits, after: Array.from((await m.forward(x)).data),
      folded: Array.from((await fast.forward(x)).data), iteration: trained.iteration };
    process.stdout.write(JSON.stringify(out));
  })().catch((e) => { console.error(e); process.exit(1); });`;

interface JobResult {
  info: ReturnType<typeof info>;
  logits: number[];
  after: number[];
  folded: number[];
  iteration: number;
}

function runJob(env: Record<string, string>, wrapper: string[] = []): JobResult {
  const argv = [...wrapper, process.execPath, '-e', oneDnnJob];
  const out = execFileSync(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.toString());
}

// The libtorch versions whose oneDNN dies of SIGFPE where the CPU reports no cache sizes (native/common/torch_compat.h).
function needsCacheSizes(version: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  return major === 2 && minor < 15;
}

describe('oneDNN off where it would crash, or when asked (RESNET_TORCH_ONEDNN=0)', () => {
  it("info() says why; training and inference run on libtorch's own convolutions, with the same logits", () => {
    const noCaches = !fs.existsSync('/sys/devices/system/cpu/cpu0/cache/index0/size');
    if (process.env.RESNET_TORCH_ONEDNN === undefined) {
      if (needsCacheSizes(info().libtorchVersion) && noCaches)
        expect(info().mkldnnOffReason).toMatch(/this CPU reports no cache sizes/);
      else expect(info().mkldnnOffReason).toBeNull();
    }
    const off = runJob({ RESNET_TORCH_ONEDNN: '0' }),
      chosen = runJob({});
    expect([off.info.mkldnn, off.info.mkldnnOffReason]).toEqual([false, 'RESNET_TORCH_ONEDNN=0']);
    expect(off.iteration).toBe(2);
    expect(maxAbsDiff(Float32Array.from(off.logits), Float32Array.from(chosen.logits))).toBeLessThan(1e-4);
    expect(maxAbsDiff(Float32Array.from(off.folded), Float32Array.from(off.after))).toBeLessThan(1e-4);
  });

  // The condition itself, simulated: qemu-user's "qemu64" CPU (AMD, with AVX2 added) answers CPUID's cache leaf
  // 0x8000001D with zeros, and a private mount namespace puts empty folders over /sys/devices/system/cpu/cpu*/cache.
  // Needs qemu-user and root (scripts/setup.sh test installs qemu-user; CI runs as root).
  const emulated = [
    'qemu64',
    '+avx',
    '+avx2',
    '+fma',
    '+f16c',
    '+bmi1',
    '+bmi2',
    '+movbe',
    '+xsave',
    '+sse4.1',
    '+sse4.2',
    '+ssse3',
    '+popcnt',
  ].join(',');
  const canEmulate = process.getuid?.() === 0 && spawnSync('qemu-x86_64', ['-version']).status === 0;
  if (!canEmulate && process.env.CI === 'true') {
    it('on an emulated CPU that reports no cache sizes', () => {
      throw new Error('CI needs qemu-user (apt-get install qemu-user) and root for this test');
    });
  }
  (canEmulate ? it : it.skip)(
    'on an emulated CPU that reports no cache sizes: oneDNN stays on where it can, off where it would crash; it trains',
    () => {
      const hide = 'for d in /sys/devices/system/cpu/cpu*/cache; do mount -t tmpfs none "$d"; done; exec "$@"';
      const wrapper = [
        'unshare',
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        hide,
        'sh',
        'qemu-x86_64',
        '-cpu',
        emulated,
      ];
      const probe = execFileSync('unshare', [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        hide,
        'sh',
        'ls',
        '/sys/devices/system/cpu/cpu0/cache',
      ]).toString();
      expect(probe.trim()).toBe(''); // the simulation hides what it should
      const there = runJob({}, wrapper),
        off = runJob({ RESNET_TORCH_ONEDNN: '0' });
      if (needsCacheSizes(info().libtorchVersion)) {
        expect(there.info.mkldnnOffReason).toMatch(/this CPU reports no cache sizes/);
      } else {
        expect(there.info.mkldnnOffReason).toBeNull();
        expect(there.info.mkldnn).toBe(true);
      }
      expect(there.iteration).toBe(2);
      // Against libtorch's own convolutions natively: same logits before and after the two steps.
      expect(maxAbsDiff(Float32Array.from(there.logits), Float32Array.from(off.logits))).toBeLessThan(1e-4);
      expect(maxAbsDiff(Float32Array.from(there.after), Float32Array.from(off.after))).toBeLessThan(1e-4);
      expect(maxAbsDiff(Float32Array.from(there.folded), Float32Array.from(there.after))).toBeLessThan(1e-4);
    },
    180_000,
  );
});

// The oneDNN inference program is built where the oneDNN training path is (the same headers and library).
const oneDnnProgram = info().training.onednn && info().mkldnn;

describe('BN-folded inference (CPU)', () => {
  itWithTorch("resnet50 folded, channels_last, gives torchvision's eval logits within 1e-4", async () => {
    const dir = await tempDir();
    await runPython('torchvision_pth.py', ['resnet50', dir, '31', '64']);
    const model = await createModel({ arch: 'resnet50', seed: 0 });
    await model.loadPytorch(path.join(dir, 'model.pth'));
    const fast = await model.optimizeForInference({ inputSize: 64 });
    expect(fast.folded).toBe(53);
    expect(fast.kernels).toBe(oneDnnProgram ? 'onednn' : 'aten');
    const out = await fast.forward({ data: await readFloat32(path.join(dir, 'input.bin')), shape: [2, 3, 64, 64] });
    const expected = await readFloat32(path.join(dir, 'eval.bin'));
    expect(maxAbsDiff(out.data, expected)).toBeLessThan(1e-4 * Math.max(1, maxAbs(expected)));
  });
  for (const arch of [
    'cifar-resnet20',
    'cifar-plain20',
    'cifar-preact-resnet20',
    'preact-resnet47',
    'resnet18',
    'resnext50_32x4d',
    'resnet26d',
    'seresnet18',
    'seresnext26d_32x4d',
  ]) {
    it(`${arch}: the folded model equals the model in eval mode, at any batch size`, async () => {
      const model = await createModel({
        arch,
        seed: 4,
        numClasses: 10,
        ...(arch === 'cifar-resnet20' ? { shortcutScale: 0.5 } : {}),
      });
      // resnet18 and resnext50_32x4d (grouped), one image: the blocked oneDNN route
      // resnet26d at 72²: ResNet-D's average pool meets an odd side (9) in the third stage
      // seresnext26d_32x4d: the SE gate's product meets a grouped convolution's layout
      const size =
        { resnet18: 48, resnext50_32x4d: 32, resnet26d: 72, seresnet18: 32, seresnext26d_32x4d: 32 }[arch] ?? 16;
      const data = await syntheticDataset(32, [3, size, size], 10);
      await train(model, data, { iterations: 2, batchSize: 16, normalize: 'none' }); // BN statistics that are not 0/1
      model.eval();
      const fast = await model.optimizeForInference({ inputSize: size, channelsLast: arch !== 'cifar-plain20' });
      // Every architecture runs on the oneDNN program where the build has it (option A's padding, pre-activation,
      // SE, grouped convolutions, ResNet-D's average pool included).
      expect([fast.kernels, fast.kernelsReason]).toEqual(oneDnnProgram ? ['onednn', ''] : ['aten', expect.any(String)]);
      // Batches of 1 and 5 at the traced size, and 3 at a larger one: a program per input shape.
      for (const [n, side] of [
        [1, size],
        [5, size],
        [3, size + 8],
      ]) {
        const x = { data: randomFloats(n * 3 * side * side, n), shape: [n, 3, side, side] };
        const a = await model.forward(x),
          b = await fast.forward(x);
        expect(maxAbsDiff(a.data, b.data)).toBeLessThan(1e-4 * Math.max(1, maxAbs(a.data)));
      }
      const p = await fast.predict({ data: randomFloats(3 * size * size), shape: [1, 3, size, size] }, { topK: 3 });
      expect(p[0].length).toBe(3);
      if (!oneDnnProgram) return;
      // int8, calibrated on 16 images: every block kind runs (int8 where oneDNN has it, float32 between): logits
      // within a few percent of the largest (a lost add or a wrong scale moves them by their own size).
      const calibration = { data: randomFloats(16 * 3 * size * size, 9), shape: [16, 3, size, size] };
      const int8 = await model.optimizeForInference({ inputSize: size, precision: 'int8', calibration });
      expect([int8.kernels, int8.precision]).toEqual(['onednn', 'int8']);
      const x = { data: randomFloats(5 * 3 * size * size, 10), shape: [5, 3, size, size] };
      const [a, b] = [await model.forward(x), await int8.forward(x)];
      expect(maxAbsDiff(a.data, b.data)).toBeLessThan(0.15 * maxAbs(a.data));
      expect(maxAbsDiff(a.data, b.data)).toBeGreaterThan(0);
    });
  }
});

describe("the native engine's kernels (CPU)", () => {
  it("oneDNN's program and ATen's ops give the same logits; concurrent calls equal lone ones; bad kernels refused", async () => {
    const model = await createModel({ arch: 'resnet18', seed: 2, numClasses: 10 });
    const data = await syntheticDataset(16, [3, 32, 32], 10);
    await train(model, data, { iterations: 2, batchSize: 8, normalize: 'none' });
    model.eval();
    const aten = await model.optimizeForInference({ inputSize: 32, kernels: 'aten' });
    expect([aten.kernels, aten.kernelsReason]).toEqual(['aten', 'asked for ATen']);
    if (!oneDnnProgram) {
      const e = await rejection(model.optimizeForInference({ inputSize: 32, kernels: 'onednn' }));
      expect(e).toBeInstanceOf(ValidationError);
      expect(e.message).toMatch(/kernels: "onednn" is not available for this model here: /);
      return;
    }
    const fast = await model.optimizeForInference({ inputSize: 32, kernels: 'onednn' });
    expect(fast.kernels).toBe('onednn');
    const inputs = [1, 2, 3, 4, 5, 6].map((i) => ({ data: randomFloats(2 * 3 * 32 * 32, i), shape: [2, 3, 32, 32] }));
    const together = await Promise.all(inputs.map((x) => fast.forward(x)));
    for (const [i, x] of inputs.entries()) {
      const alone = await fast.forward(x);
      expect(maxAbsDiff(together[i].data, alone.data)).toBe(0);
      const reference = await aten.forward(x);
      expect(maxAbsDiff(alone.data, reference.data)).toBeLessThan(1e-4 * Math.max(1, maxAbs(reference.data)));
    }
    const bad = await rejection(model.optimizeForInference({ kernels: 'fast' as never }));
    expect(bad).toBeInstanceOf(ValidationError);
    expect(bad.message).toMatch(/kernels/);
  });

  it("profile(): one row per primitive, ResNet-18's 20 convolutions with the residual add fused into 8", async () => {
    const model = await createModel({ arch: 'resnet18', seed: 1, numClasses: 10 });
    const fast = await model.optimizeForInference({ inputSize: 32 });
    const x = { data: randomFloats(3 * 32 * 32, 1), shape: [1, 3, 32, 32] };
    const rows = await fast.profile(x);
    if (!oneDnnProgram) {
      expect(rows).toEqual([]);
      return;
    }
    // torchvision's resnet18: conv1, 8 blocks of 2 convolutions, 3 downsample projections.
    const convs = rows.filter((r) => /^(conv1|layer\d\.\d\.(conv\d|downsample\.0)) /.test(r.layer));
    expect(convs.length).toBe(20);
    expect(rows.filter((r) => /\+sum \+relu/.test(r.layer)).map((r) => r.layer.split(' ')[0])).toEqual(
      ['layer1.0', 'layer1.1', 'layer2.0', 'layer2.1', 'layer3.0', 'layer3.1', 'layer4.0', 'layer4.1'].map(
        (b) => `${b}.conv2`,
      ),
    );
    expect(rows[rows.length - 1].layer).toMatch(/^fc /);
    for (const r of rows) expect(r.ms).toBeGreaterThanOrEqual(0);
    expect(await (await model.optimizeForInference({ inputSize: 32, kernels: 'aten' })).profile(x)).toEqual([]);
    fast.dispose();
    await expect(fast.profile(x)).rejects.toThrow(/disposed/);
  });
});

describe('bfloat16 inference (CPU, the oneDNN program)', () => {
  // oneDNN 2.x runs bfloat16 convolutions on AVX-512 (natively with AVX-512 BF16 or AMX); with AVX2 kernels only
  // (ONEDNN_MAX_CPU_ISA=AVX2, an AVX2 CPU) it has none, and the option is refused by name.
  const bf16Here = oneDnnProgram && /AVX-512|AMX/.test(info().training.onednnIsa ?? '');

  it('Fashion-MNIST test accuracy in bfloat16 equals float32 within 0.5 points; logits within bfloat16 rounding', async () => {
    const { model } = await fashionModel();
    const f32 = await model.optimizeForInference({ inputSize: 28 });
    const attempt = await model.optimizeForInference({ inputSize: 28, precision: 'bfloat16' }).catch((e) => e);
    if (!bf16Here) {
      expect(attempt).toBeInstanceOf(ValidationError);
      expect((attempt as Error).message).toMatch(/precision: "bfloat16" is not available for this model here: /);
      return;
    }
    const bf16 = attempt as InferenceModel;
    expect([bf16.precision, bf16.kernels, f32.precision]).toEqual(['bfloat16', 'onednn', 'float32']);
    const { a: acc32, b: acc16, worst } = await compareOnTest(f32, bf16);
    // bfloat16 keeps 8 bits of mantissa: a few 1e-3 of the largest logit after 8 layers; a wrong layout or a
    // lost add would be of the order of the logits themselves.
    expect(worst).toBeLessThan(3e-2);
    expect(worst).toBeGreaterThan(0); // it did run in bfloat16
    expect(acc32).toBeGreaterThan(0.5); // trained (10% is chance)
    console.log(
      `Fashion-MNIST test accuracy: float32 ${(acc32 * 100).toFixed(2)}%, bfloat16 ${(acc16 * 100).toFixed(2)}%, largest logit difference ${worst.toExponential(2)} of the largest logit`,
    );
    expect(Math.abs(acc16 - acc32)).toBeLessThanOrEqual(0.005);
    const profile = await bf16.profile({ data: new Float32Array(28 * 28), shape: [1, 1, 28, 28] });
    expect(profile[0].layer).toBe('reorder into conv1'); // the float32 input converted once
    expect(await rejection(model.optimizeForInference({ precision: 'bfloat16', kernels: 'aten' }))).toMatchObject({
      field: 'precision',
    });
    expect(await rejection(model.optimizeForInference({ precision: 'bfloat16', engine: 'onnxruntime' }))).toMatchObject(
      { field: 'engine' },
    );
    expect(await rejection(model.optimizeForInference({ precision: 'float16' as never }))).toBeInstanceOf(
      ValidationError,
    );
  }, 180_000);
});

describe('int8 inference (CPU, the oneDNN program)', () => {
  // oneDNN 2.x has int8 convolutions from AVX2 on (VNNI's where the CPU has it; without VNNI the weights keep 7
  // bits, as oneDNN's int8 kernels need there).
  it('calibrated on 500 training images: Fashion-MNIST test accuracy within 1 point of float32', async () => {
    const { model } = await fashionModel();
    const calibration = await calibrationImages();
    const attempt = await model.optimizeForInference({ inputSize: 28, precision: 'int8', calibration }).catch((e) => e);
    if (!oneDnnProgram) {
      expect(attempt).toBeInstanceOf(ValidationError);
      expect((attempt as Error).message).toMatch(/precision: "int8" is not available for this model here: /);
      return;
    }
    const int8 = attempt as InferenceModel;
    expect([int8.precision, int8.kernels]).toEqual(['int8', 'onednn']);
    const f32 = await model.optimizeForInference({ inputSize: 28 });
    const { a: acc32, b: acc8, worst } = await compareOnTest(f32, int8);
    console.log(
      `Fashion-MNIST test accuracy: float32 ${(acc32 * 100).toFixed(2)}%, int8 ${(acc8 * 100).toFixed(2)}%, largest logit difference ${worst.toExponential(2)} of the largest logit`,
    );
    // 8-bit activations and weights move the logits by a few percent of the largest; a wrong scale, a lost
    // residual add or a clipped negative would move them by their own size and the accuracy by far more.
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(0.15);
    expect(acc32).toBeGreaterThan(0.5);
    expect(Math.abs(acc8 - acc32)).toBeLessThanOrEqual(0.01);
    const profile = await int8.profile({ data: new Float32Array(28 * 28), shape: [1, 1, 28, 28] });
    expect(profile[0].layer).toBe('reorder into conv1'); // the float32 input quantized once
    expect(profile.filter((r) => /\+sum \+relu/.test(r.layer)).length).toBe(3); // the residual adds, in int8 too

    // Calibration: required with int8, refused otherwise, at the inference size, finite.
    const one = (h: number) => ({ data: new Float32Array(h * h), shape: [1, 1, h, h] });
    expect(await rejection(model.optimizeForInference({ inputSize: 28, precision: 'int8' }))).toMatchObject({
      field: 'calibration',
    });
    expect(await rejection(model.optimizeForInference({ inputSize: 28, calibration: one(28) }))).toMatchObject({
      field: 'calibration',
    });
    expect(
      (await rejection(model.optimizeForInference({ inputSize: 28, precision: 'int8', calibration: one(32) }))).message,
    ).toMatch(/calibration is 32x32; the inference size is 28x28/);
    const nan = one(28);
    nan.data[7] = NaN;
    expect(
      await rejection(model.optimizeForInference({ inputSize: 28, precision: 'int8', calibration: nan })),
    ).toMatchObject({ field: 'calibration', message: expect.stringMatching(/calibration.data\[7\] is NaN/) });
    expect(
      await rejection(model.optimizeForInference({ inputSize: 28, precision: 'int8', calibration, kernels: 'aten' })),
    ).toMatchObject({ field: 'precision' });
    expect(
      await rejection(
        model.optimizeForInference({ inputSize: 28, precision: 'int8', calibration, engine: 'onnxruntime' }),
      ),
    ).toMatchObject({ field: 'engine' });
  }, 240_000);
});
