// Devices and fast inference on this machine's CPU: CUDA is refused clearly where it is missing, and the
// BN-folded inference model gives torchvision's logits. (The CUDA paths are checked by scripts/gpu/.)
import { strict as assert } from 'assert';
import * as path from 'path';
import { describe, it } from 'node:test';

import { DeviceError, ValidationError, createModel, cuda, info, listDevices, train } from '../lib';
import { maxAbs, maxAbsDiff, randomFloats, readFloat32, tempDir } from './helpers/files';
import { runPython } from './helpers/python';
import { syntheticDataset } from './helpers/synthetic';

describe('devices', () => {
  it('without CUDA: no devices, memory stats and cache control refuse with DeviceError, CUDA options are refused by name', async (t) => {
    if (info().cuda.available) return t.skip('this machine has CUDA (scripts/gpu checks it)');
    assert.deepEqual(listDevices(), []);
    assert.equal(cuda.isAvailable(), false);
    assert.throws(() => cuda.memoryStats(), DeviceError);
    assert.throws(() => cuda.emptyCache(), DeviceError);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 3, seed: 1 });
    const data = await syntheticDataset(32, [1, 8, 8], 3);
    await assert.rejects(train(model, data, { iterations: 1, batchSize: 16, cudaGraph: true }).done,
      (e: Error) => e instanceof ValidationError && /cudaGraph: needs the model on a CUDA device \(it is on cpu\)/.test(e.message));
    await assert.rejects(train(model, data, { iterations: 1, batchSize: 16, precision: 'bfloat16' }).done, /precision: bfloat16 needs the model on a CUDA device/);
    await assert.rejects(model.to('cuda:0'), DeviceError);
  });
});

describe('BN-folded inference (CPU)', () => {
  it('resnet50 folded, channels_last, gives torchvision\'s eval logits within 1e-4', async () => {
    const dir = await tempDir();
    await runPython('torchvision_pth.py', ['resnet50', dir, '31', '64']);
    const model = await createModel({ arch: 'resnet50', seed: 0 });
    await model.loadPytorch(path.join(dir, 'model.pth'));
    const fast = await model.optimizeForInference({ inputSize: 64 });
    assert.equal(fast.folded, 53);
    const out = await fast.forward({ data: await readFloat32(path.join(dir, 'input.bin')), shape: [2, 3, 64, 64] });
    const expected = await readFloat32(path.join(dir, 'eval.bin'));
    assert.ok(maxAbsDiff(out.data, expected) < 1e-4 * Math.max(1, maxAbs(expected)), String(maxAbsDiff(out.data, expected)));
  });
  for (const arch of ['cifar-resnet20', 'cifar-plain20', 'preact-resnet47', 'resnet18']) {
    it(`${arch}: the folded model equals the model in eval mode, at any batch size`, async () => {
      const model = await createModel({ arch, seed: 4, numClasses: 10, ...(arch === 'cifar-resnet20' ? { shortcutScale: 0.5 } : {}) });
      const size = arch === 'resnet18' ? 48 : 16; // resnet18, one image: the blocked oneDNN route
      const data = await syntheticDataset(32, [3, size, size], 10);
      await train(model, data, { iterations: 2, batchSize: 16, normalize: 'none' }); // BN statistics that are not 0/1
      model.eval();
      const fast = await model.optimizeForInference({ inputSize: size, channelsLast: arch !== 'cifar-plain20' });
      for (const n of [1, 5]) {
        const x = { data: randomFloats(n * 3 * size * size, n), shape: [n, 3, size, size] };
        const a = await model.forward(x), b = await fast.forward(x);
        assert.ok(maxAbsDiff(a.data, b.data) < 1e-4 * Math.max(1, maxAbs(a.data)), `${n}: ${maxAbsDiff(a.data, b.data)}`);
      }
      const p = await fast.predict({ data: randomFloats(3 * size * size), shape: [1, 3, size, size] }, { topK: 3 });
      assert.equal(p[0].length, 3);
    });
  }
});
