// The typed facade: validation before C++, typed errors, async work off the event loop, disposal,
// worker_threads, and both module systems.
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as path from 'path';
import { describe, it } from 'node:test';
import { Worker } from 'worker_threads';

import {
  DisposedError, ShapeError, ValidationError, createModel, formatInfo, getNumThreads, info, resolveSpec, setNumThreads,
} from '../lib';
import { native } from '../lib/native';
import { randomFloats } from './helpers/files';

const ROOT = path.resolve(__dirname, '..', '..');

async function rejects(promise: Promise<unknown>, type: new (...a: never[]) => Error, pattern: RegExp) {
  await assert.rejects(promise, (e: Error) => {
    assert.ok(e instanceof type, `${e.constructor.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('createModel validates the spec before anything reaches C++', () => {
  const cases: [Record<string, unknown>, RegExp, string][] = [
    [{ arch: 'resnet18', numClases: 10 }, /numClases: unknown key "numClases" \(did you mean "numClasses"\?\)/, 'numClases'],
    [{ arch: 'resnet19' }, /arch: expected one of resnet18, .*got "resnet19"/, 'arch'],
    [{ arch: 'resnet18', numClasses: 0 }, /numClasses: expected an integer in \[1, 1000000\], got 0/, 'numClasses'],
    [{ arch: 'resnet18', numClasses: 2.5 }, /numClasses: expected an integer/, 'numClasses'],
    [{ arch: 'cifar-resnet20', shortcut: 'D' }, /shortcut: expected one of "A", "B", "C", "none", got "D"/, 'shortcut'],
    [{ arch: 'cifar-plain20', shortcut: 'A' }, /plain network and has no shortcut/, 'shortcut'],
    [{ arch: 'cifar-resnet20', shortcutScale: -1 }, /shortcutScale: expected a number in \(0, 100\], got -1/, 'shortcutScale'],
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
      await assert.rejects(createModel(spec as never), (e: ValidationError) => {
        assert.ok(e instanceof ValidationError, e.message);
        assert.equal(e.field, field);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }
  it('fills defaults: CIFAR nets take option A and 10 classes, ImageNet ones option B and 1000', () => {
    const c = resolveSpec({ arch: 'cifar-resnet56', seed: 1 });
    assert.equal(c.shortcut, 'A');
    assert.equal(c.numClasses, 10);
    const i = resolveSpec({ arch: 'resnet50', seed: 1 });
    assert.equal(i.shortcut, 'B');
    assert.equal(i.numClasses, 1000);
    assert.equal(i.stride, 'conv3x3');
  });
  it('refuses CUDA where it is not available, never falling back to the CPU', async (t) => {
    if (info().cuda.available) return t.skip('this machine has CUDA');
    await assert.rejects(createModel({ arch: 'cifar-resnet20', device: 'cuda' }), (e: Error) => e.name === 'DeviceError' && /CUDA is not available/.test(e.message));
    await assert.rejects(createModel({ arch: 'cifar-resnet20', device: 'tpu' }), (e: Error) => e.name === 'DeviceError');
  });
});

describe('forward', () => {
  it('checks shapes before libtorch: rank, data length, channels, minimum size', async () => {
    const m = await createModel({ arch: 'resnet18', numClasses: 4, seed: 0 });
    await rejects(m.forward({ data: new Float32Array(3 * 32 * 32), shape: [3, 32, 32] }), ShapeError, /shape must be \[N, C, H, W\]/);
    await rejects(m.forward({ data: new Float32Array(10), shape: [1, 3, 32, 32] }), ShapeError, /holds 10 values, but shape \[1, 3, 32, 32\] needs 3072/);
    await rejects(m.forward({ data: new Float32Array(32 * 32), shape: [1, 1, 32, 32] }), ShapeError, /has 1 channels, the model takes 3/);
    await rejects(m.forward({ data: new Float32Array(3 * 16 * 16), shape: [1, 3, 16, 16] }), ShapeError, /16x16 is too small for resnet18: the minimum is 32x32/);
    await rejects(m.forward({ data: [1, 2] as never, shape: [1, 1, 1, 2] }), ValidationError, /input.data: expected a Float32Array/);
    const ok = await m.forward({ data: randomFloats(2 * 3 * 32 * 32), shape: [2, 3, 32, 32] });
    assert.deepEqual(ok.shape, [2, 4]);
    m.dispose();
  });
  it('refuses a batch norm on a single value per channel in training mode, with a clear message', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', seed: 0 });
    m.train();
    await rejects(m.forward({ data: randomFloats(3 * 4 * 4), shape: [1, 3, 4, 4] }), ShapeError, /batch norm cannot train on it/);
    m.eval();
    assert.deepEqual((await m.forward({ data: randomFloats(3 * 4 * 4), shape: [1, 3, 4, 4] })).shape, [1, 10]);
  });
  it('takes any input size the net can take and any channel count', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 0 });
    for (const [h, w] of [[28, 28], [5, 9], [64, 48]]) {
      const out = await m.forward({ data: randomFloats(2 * h * w), shape: [2, 1, h, w] });
      assert.deepEqual(out.shape, [2, 3]);
      assert.ok(out.data.every(Number.isFinite));
    }
  });
  it('predict() gives top-k probabilities in eval mode and restores the mode', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', numClasses: 4, seed: 0, classNames: ['a', 'b', 'c', 'd'] });
    m.train();
    const x = { data: randomFloats(2 * 3 * 8 * 8), shape: [2, 3, 8, 8] };
    const p = await m.predict(x, { topK: 4 });
    assert.equal(m.training, true);
    assert.equal(p.length, 2);
    for (const row of p) {
      assert.equal(row.length, 4);
      assert.ok(Math.abs(row.reduce((a, r) => a + r.probability, 0) - 1) < 1e-5);
      assert.ok(row[0].probability >= row[1].probability);
      assert.equal(row[0].label, ['a', 'b', 'c', 'd'][row[0].index]);
    }
    m.eval();
    const logits = await m.forward(x);
    const best = Array.from(logits.data.subarray(0, 4)).indexOf(Math.max(...logits.data.subarray(0, 4)));
    assert.equal(p[0][0].index, best);
    await assert.rejects(m.predict(x, { topK: 5 }), /topK: expected an integer in \[1, 4\], got 5/);
  });
  it('runs off the event loop: a timer keeps firing during a long forward', async () => {
    const m = await createModel({ arch: 'resnet50', numClasses: 10, seed: 0 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = Date.now();
    await m.forward({ data: randomFloats(16 * 3 * 224 * 224), shape: [16, 3, 224, 224] });
    const elapsed = Date.now() - started;
    clearInterval(timer);
    assert.ok(elapsed > 50, `forward took ${elapsed} ms: too short to tell`);
    assert.ok(ticks >= Math.floor(elapsed / 5) / 3, `${ticks} ticks in ${elapsed} ms`);
    m.dispose();
  });
});

describe('errors and lifetime', () => {
  it('a libtorch exception becomes a JS error, never an abort', () => {
    const Native = native().Model;
    assert.throws(() => new Native({ block: 'basic', depths: [1], widths: [0], stem: 'cifar', shortcut: 'A', inChannels: 3,
      numClasses: 10, preact: false, stride: 'conv3x3', shortcutScale: 1, zeroInitResidual: false, seed: 1 }),
    (e: Error & { code?: string }) => e.code === 'ERR_NATIVE' && e.message.length > 0 && !/Exception raised from/.test(e.message));
  });
  it('a disposed model refuses work with DisposedError; dispose twice is harmless', async () => {
    const m = await createModel({ arch: 'cifar-resnet20', seed: 0 });
    m.dispose();
    m.dispose();
    assert.equal(m.disposed, true);
    assert.throws(() => m.parameterCount(), DisposedError);
    await assert.rejects(m.forward({ data: new Float32Array(3 * 8 * 8), shape: [1, 3, 8, 8] }), DisposedError);
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
    const message = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    await worker.terminate();
    assert.deepEqual(message, { params: 269_722, shape: [2, 10] });
  });
});

describe('package', () => {
  it('works through require() and import', () => {
    const cjs = execFileSync(process.execPath, ['-e', "console.log(typeof require('resnet-torch').createModel)"], { cwd: ROOT }).toString();
    assert.equal(cjs.trim(), 'function');
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e',
      "import { createModel, ValidationError } from 'resnet-torch'; import r from 'resnet-torch'; console.log(typeof createModel, typeof ValidationError, typeof r.info)"],
    { cwd: ROOT }).toString();
    assert.equal(esm.trim(), 'function function function');
  });
  it('info() reports versions, threads and CUDA; setNumThreads changes the intra-op count', () => {
    const i = info();
    assert.match(i.version, /^\d+\.\d+\.\d+/);
    assert.match(i.libtorchVersion, /^\d+\.\d+/);
    assert.equal(typeof i.cuda.available, 'boolean');
    assert.equal(typeof i.cxx11Abi, 'boolean');
    assert.match(formatInfo(i), /libtorch/);
    const before = getNumThreads();
    setNumThreads(1);
    assert.equal(getNumThreads(), 1);
    setNumThreads(before);
    assert.throws(() => setNumThreads(0), ValidationError);
  });
});
