// The typed facade: validation before C++, typed errors, async work off the event loop, disposal,
// worker_threads, and both module systems.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { Worker } from 'worker_threads';

import {
  DeviceError,
  DisposedError,
  ShapeError,
  ValidationError,
  createModel,
  formatInfo,
  getNumThreads,
  info,
  resolveSpec,
  setNumThreads,
} from '../../lib';
import { native } from '../../lib/native';
import { randomFloats } from '../../harness/files';
import { rejection, thrown } from '../helpers/errors';

const ROOT = path.resolve(__dirname, '..', '..');

async function rejects(promise: Promise<unknown>, type: new (...a: never[]) => Error, pattern: RegExp) {
  const e = await rejection(promise);
  expect(e).toBeInstanceOf(type);
  expect(e.message).toMatch(pattern);
}

describe('createModel validates the spec before anything reaches C++', () => {
  const cases: [Record<string, unknown>, RegExp, string][] = [
    [
      { arch: 'resnet18', numClases: 10 },
      /numClases: unknown key "numClases" \(did you mean "numClasses"\?\)/,
      'numClases',
    ],
    [{ arch: 'resnet19' }, /arch: expected one of resnet18, .*got "resnet19"/, 'arch'],
    [{ arch: 'resnet18', numClasses: 0 }, /numClasses: expected an integer in \[1, 1000000\], got 0/, 'numClasses'],
    [{ arch: 'resnet18', numClasses: 2.5 }, /numClasses: expected an integer/, 'numClasses'],
    [{ arch: 'cifar-resnet20', shortcut: 'D' }, /shortcut: expected one of "A", "B", "C", "none", got "D"/, 'shortcut'],
    [{ arch: 'cifar-plain20', shortcut: 'A' }, /plain network and has no shortcut/, 'shortcut'],
    [
      { arch: 'cifar-resnet20', shortcutScale: -1 },
      /shortcutScale: expected a number in \(0, 100\], got -1/,
      'shortcutScale',
    ],
    [{ arch: 'resnet18', depths: [2, 2] }, /give either arch or an explicit structure/, 'depths'],
    [{ block: 'basic' }, /either arch .* or block and depths/, 'depths'],
    [{ block: 'basic', depths: [2, 0] }, /depths\[1\]: expected an integer ≥ 1, got 0/, 'depths[1]'],
    [{ block: 'basic', depths: [2, 2], widths: [8] }, /widths: expected an array of 2 widths/, 'widths'],
    [{ arch: 'resnet18', stride: 'conv1x1' }, /only bottleneck blocks/, 'stride'],
    [{ arch: 'resnet18', inChannels: '3' }, /inChannels: expected an integer in \[1, 4096\], got "3"/, 'inChannels'],
    [{ arch: 'resnet18', classNames: ['a'] }, /classNames: expected 1000 names/, 'classNames'],
  ];
  for (const [spec, pattern, field] of cases) {
    it(`${JSON.stringify(spec)} -> ${field}`, async () => {
      const e = await rejection(createModel(spec as never));
      expect(e).toBeInstanceOf(ValidationError);
      expect(e.field).toBe(field);
      expect(e.message).toMatch(pattern);
    });
  }
  it('fills defaults: CIFAR nets take option A and 10 classes, ImageNet ones option B and 1000', () => {
    const c = resolveSpec({ arch: 'cifar-resnet56', seed: 1 });
    expect(c.shortcut).toBe('A');
    expect(c.numClasses).toBe(10);
    const i = resolveSpec({ arch: 'resnet50', seed: 1 });
    expect(i.shortcut).toBe('B');
    expect(i.numClasses).toBe(1000);
    expect(i.stride).toBe('conv3x3');
  });
  (info().cuda.available ? it.skip : it)(
    'refuses CUDA where it is not available, never falling back to the CPU',
    async () => {
      await expect(createModel({ arch: 'cifar-resnet20', device: 'cuda' })).rejects.toThrow(DeviceError);
      await expect(createModel({ arch: 'cifar-resnet20', device: 'cuda' })).rejects.toThrow(/CUDA is not available/);
      await expect(createModel({ arch: 'cifar-resnet20', device: 'tpu' })).rejects.toThrow(DeviceError);
    },
  );
});

describe('forward', () => {
  it('checks shapes before libtorch: rank, data length, channels, minimum size', async () => {
    const m = await createModel({ arch: 'resnet18', numClasses: 4, seed: 0 });
    await rejects(
      m.forward({ data: new Float32Array(3 * 32 * 32), shape: [3, 32, 32] }),
      ShapeError,
      /shape must be \[N, C, H, W\]/,
    );
    await rejects(
      m.forward({ data: new Float32Array(10), shape: [1, 3, 32, 32] }),
      ShapeError,
      /holds 10 values, but shape \[1, 3, 32, 32\] needs 3072/,
    );
    await rejects(
      m.forward({ data: new Float32Array(32 * 32), shape: [1, 1, 32, 32] }),
      ShapeError,
      /has 1 channels, the model takes 3/,
    );
    await rejects(
      m.forward({ data: new Float32Array(3 * 16 * 16), shape: [1, 3, 16, 16] }),
      ShapeError,
      /16x16 is too small for resnet18: the minimum is 32x32/,
    );
    await rejects(
      m.forward({ data: [1, 2] as never, shape: [1, 1, 1, 2] }),
      ValidationError,
      /input.data: expected a Float32Array/,
    );
    const ok = await m.forward({ data: randomFloats(2 * 3 * 32 * 32), shape: [2, 3, 32, 32] });
    expect(ok.shape).toEqual([2, 4]);
    m.dispose();
  });
  it('refuses a batch norm on a single value per channel in training mode, with a clear message', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', seed: 0 });
    m.train();
    await rejects(
      m.forward({ data: randomFloats(3 * 4 * 4), shape: [1, 3, 4, 4] }),
      ShapeError,
      /batch norm cannot train on it/,
    );
    m.eval();
    expect((await m.forward({ data: randomFloats(3 * 4 * 4), shape: [1, 3, 4, 4] })).shape).toEqual([1, 10]);
  });
  it('takes any input size the net can take and any channel count', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 0 });
    for (const [h, w] of [
      [28, 28],
      [5, 9],
      [64, 48],
    ]) {
      const out = await m.forward({ data: randomFloats(2 * h * w), shape: [2, 1, h, w] });
      expect(out.shape).toEqual([2, 3]);
      expect(out.data.every(Number.isFinite)).toBeTruthy();
    }
  });
  it('predict() gives top-k probabilities in eval mode and restores the mode', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', numClasses: 4, seed: 0, classNames: ['a', 'b', 'c', 'd'] });
    m.train();
    const x = { data: randomFloats(2 * 3 * 8 * 8), shape: [2, 3, 8, 8] };
    const p = await m.predict(x, { topK: 4 });
    expect(m.training).toBe(true);
    expect(p.length).toBe(2);
    for (const row of p) {
      expect(row.length).toBe(4);
      expect(Math.abs(row.reduce((a, r) => a + r.probability, 0) - 1)).toBeLessThan(1e-5);
      expect(row[0].probability).toBeGreaterThanOrEqual(row[1].probability);
      expect(row[0].label).toBe(['a', 'b', 'c', 'd'][row[0].index]);
    }
    m.eval();
    const logits = await m.forward(x);
    const best = Array.from(logits.data.subarray(0, 4)).indexOf(Math.max(...logits.data.subarray(0, 4)));
    expect(p[0][0].index).toBe(best);
    await expect(m.predict(x, { topK: 5 })).rejects.toThrow(/topK: expected an integer in \[1, 4\], got 5/);
  });
  it("runs off the event loop: the caller's next turn of the loop comes while the forward is still running", async () => {
    const m = await createModel({ arch: 'resnet50', numClasses: 10, seed: 0 });
    let settled = false;
    const forward = m
      .forward({ data: randomFloats(16 * 3 * 224 * 224), shape: [16, 3, 224, 224] })
      .finally(() => (settled = true));
    // A blocking forward would have finished before control came back; ResNet-50 on 16 images takes far longer
    // than one turn of the event loop on any CPU.
    const settledAtNextTurn = await new Promise<boolean>((resolve) => setImmediate(() => resolve(settled)));
    const timerFired = await new Promise<boolean>((resolve) => setTimeout(() => resolve(!settled), 1));
    await forward;
    expect(settledAtNextTurn).toBe(false);
    expect(timerFired).toBe(true);
    m.dispose();
  });
});

describe('errors and lifetime', () => {
  it('a libtorch exception becomes a JS error, never an abort', () => {
    const Native = native().Model;
    const e = thrown(
      () =>
        new Native({
          block: 'basic',
          depths: [1],
          widths: [0],
          stem: 'cifar',
          shortcut: 'A',
          inChannels: 3,
          numClasses: 10,
          preact: false,
          stride: 'conv3x3',
          groups: 1,
          widthPerGroup: 64,
          deepStem: false,
          stemWidth: 32,
          avgDown: false,
          attention: 'none',
          dropPath: 0,
          shortcutScale: 1,
          zeroInitResidual: false,
          dtype: 'float32',
          seed: 1,
        }),
    );
    expect(e.code).toBe('ERR_NATIVE');
    expect(e.message.length).toBeGreaterThan(0);
    expect(e.message).not.toMatch(/Exception raised from/);
  });
  it('a disposed model refuses work with DisposedError; dispose twice is harmless', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', seed: 0 });
    m.dispose();
    m.dispose();
    expect(m.disposed).toBe(true);
    expect(() => m.parameterCount()).toThrow(DisposedError);
    await expect(m.forward({ data: new Float32Array(3 * 8 * 8), shape: [1, 3, 8, 8] })).rejects.toThrow(DisposedError);
  });
  it('the addon loads and works in worker_threads', async () => {
    const script = `
      const { parentPort } = require('worker_threads');
      const r = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      r.createModel({ arch: 'cifar-resnet20', seed: 1 }).then(async (m) => {
        const out = await m.forward({ data: new Float32Array(2 * 3 * 32 * 32).fill(0.5), shape: [2, 3, 32, 32] });
        parentPort.postMessage({ params: m.parameterCount(), shape: out.shape });
      });`;
    const worker = new Worker(script, { eval: true });
    const message = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(message).toEqual({ params: 269_722, shape: [2, 10] });
  });
});

describe('package', () => {
  it('works through require() and import', () => {
    const cjs = execFileSync(process.execPath, ['-e', "console.log(typeof require('resnet-torch').createModel)"], {
      cwd: ROOT,
    }).toString();
    expect(cjs.trim()).toBe('function');
    const esm = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { createModel, ValidationError } from 'resnet-torch'; import r from 'resnet-torch'; console.log(typeof createModel, typeof ValidationError, typeof r.info)",
      ],
      { cwd: ROOT },
    ).toString();
    expect(esm.trim()).toBe('function function function');
  });
  it('info() reports versions, threads and CUDA; setNumThreads changes the intra-op count', () => {
    const i = info();
    expect(i.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(i.libtorchVersion).toMatch(/^\d+\.\d+/);
    // The library that runs is a libtorch of the same major.minor as the headers (Debian names it so).
    expect(i.libtorchLibrary).toMatch(/libtorch_cpu\.so/);
    const file = /libtorch_cpu\.so\.(\d+\.\d+)/.exec(i.libtorchLibrary);
    if (file) expect(i.libtorchVersion.startsWith(`${file[1]}.`)).toBe(true);
    if (!i.cuda.builtWithCuda) expect([i.cuda.compiledVersion, i.cuda.runtimeVersion]).toEqual([null, null]);
    expect(typeof i.cuda.available).toBe('boolean');
    expect(typeof i.cxx11Abi).toBe('boolean');
    expect(formatInfo(i)).toMatch(/libtorch/);
    const before = getNumThreads();
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    setNumThreads(before);
    expect(() => setNumThreads(0)).toThrow(ValidationError);
  });
});
