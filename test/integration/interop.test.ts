/**
 * @jest-environment ./test/support/shared-typed-arrays-environment.js
 */
// Weights between PyTorch and us (safetensors both ways, torch.save state dicts), fine-tuning tools,
// ONNX verified in onnxruntime, and untrusted weight files.
import { promises as fsp } from 'fs';
import * as path from 'path';

import fc from 'fast-check';
import * as ort from 'onnxruntime-node';

import { CheckpointError, ValidationError, createModel, train } from '../../lib';
import { readSafetensors, writeSafetensors } from '../../lib/io/safetensors';
import { maxAbs, maxAbsDiff, randomFloats, readFloat32, tempDir } from '../../harness/files';
import { runPython } from '../../harness/python';
import { itWithTorch } from '../helpers/reference';
import { pseudoRandomBytes, syntheticDataset } from '../../harness/synthetic';
import { pngBytes, zipStored } from '../../harness/fixtures';
import { rejection } from '../helpers/errors';

describe('PyTorch state dicts (torch.save, zip format)', () => {
  for (const arch of ['resnet18', 'resnet50', 'resnext50_32x4d', 'wide_resnet50_2']) {
    itWithTorch(`a torchvision ${arch} .pth loads and gives torchvision's logits within 1e-4`, async () => {
      const dir = await tempDir();
      await runPython('torchvision_pth.py', [arch, dir, '21', '64']);
      const model = await createModel({ arch, seed: 0 });
      const report = await model.loadPytorch(path.join(dir, 'model.pth'));
      expect(report.loaded.length).toBe(model.stateDict().length);
      model.eval();
      const out = await model.forward({ data: await readFloat32(path.join(dir, 'input.bin')), shape: [2, 3, 64, 64] });
      const expected = await readFloat32(path.join(dir, 'eval.bin'));
      expect(maxAbsDiff(out.data, expected)).toBeLessThan(1e-4 * Math.max(1, maxAbs(expected)));
    });
  }
  itWithTorch(
    'createModel({ weights }) starts from a torchvision .pth; the fine-tuning recipe keeps frozen layers',
    async () => {
      const dir = await tempDir();
      await runPython('torchvision_pth.py', ['resnet18', dir, '21', '64']);
      const model = await createModel({ arch: 'resnet18', weights: path.join(dir, 'model.pth') });
      model.eval();
      const out = await model.forward({ data: await readFloat32(path.join(dir, 'input.bin')), shape: [2, 3, 64, 64] });
      const expected = await readFloat32(path.join(dir, 'eval.bin'));
      expect(maxAbsDiff(out.data, expected)).toBeLessThan(1e-4 * Math.max(1, maxAbs(expected)));
      // The recipe: a new head for 4 classes, the stem and first two stages frozen, a short training.
      model.replaceHead(4).freeze(['conv1', 'bn1', 'layer1', 'layer2']);
      const floats = async () =>
        new Map(
          (await model.handle().exportState())
            .filter((t) => t.data instanceof Float32Array)
            .map((t) => [t.name, Float32Array.from(t.data as Float32Array)]),
        );
      const before = await floats();
      await train(model, await syntheticDataset(32, [3, 32, 32], 4), { iterations: 2, batchSize: 16 });
      const after = await floats();
      expect(maxAbsDiff(after.get('layer1.0.conv1.weight')!, before.get('layer1.0.conv1.weight')!)).toBe(0);
      expect(maxAbsDiff(after.get('layer3.0.conv1.weight')!, before.get('layer3.0.conv1.weight')!)).toBeGreaterThan(0);
      expect(maxAbsDiff(after.get('fc.weight')!, before.get('fc.weight')!)).toBeGreaterThan(0);
      // Our own files start a model too: a weights file and a full checkpoint.
      await model.saveWeights(path.join(dir, 'tuned.safetensors'));
      const again = await createModel({
        arch: 'resnet18',
        numClasses: 4,
        weights: path.join(dir, 'tuned.safetensors'),
      });
      expect(maxAbsDiff((await again.handle().exportState())[0].data as Float32Array, after.get('conv1.weight')!)).toBe(
        0,
      );
      // A file that is not there, and a head of the wrong size, say so.
      expect(await rejection(createModel({ arch: 'resnet18', weights: path.join(dir, 'none.pth') }))).toMatchObject({
        field: 'weights',
      });
      const wrongHead = await rejection(
        createModel({ arch: 'resnet18', numClasses: 10, weights: path.join(dir, 'model.pth') }),
      );
      expect(wrongHead).toBeInstanceOf(CheckpointError);
      expect(wrongHead.message).toMatch(/fc\.weight/);
    },
  );
  it('createModel({ weights }) takes a full checkpoint: its model.* tensors', async () => {
    const bytesOf = (d: ArrayBufferView) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    const dir = await tempDir();
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 3 });
    await train(model, await syntheticDataset(32, [1, 8, 8], 2), {
      iterations: 2,
      batchSize: 16,
      checkpoint: { dir, everyIterations: 1 },
    });
    const again = await createModel({
      arch: 'cifar-resnet8',
      inChannels: 1,
      numClasses: 2,
      weights: path.join(dir, 'checkpoint-2.safetensors'),
    });
    const a = await model.handle().exportState();
    const b = await again.handle().exportState();
    expect(b.map((t) => t.name)).toEqual(a.map((t) => t.name));
    for (let i = 0; i < a.length; i++) expect(Buffer.compare(bytesOf(b[i].data), bytesOf(a[i].data))).toBe(0);
  });
  for (const arch of ['resnet18', 'resnext50_32x4d']) {
    itWithTorch(
      `our ${arch} safetensors load into torchvision with load_state_dict(strict=True) and give our logits`,
      async () => {
        const dir = await tempDir();
        const model = await createModel({ arch, numClasses: 7, seed: 3 });
        const data = await syntheticDataset(32, [3, 32, 32], 7);
        await train(model, data, { iterations: 2, batchSize: 16, normalize: 'none' }); // non-trivial BN statistics
        await model.saveWeights(path.join(dir, 'w.safetensors'));
        const x = randomFloats(2 * 3 * 40 * 40, 5);
        await fsp.writeFile(path.join(dir, 'x.bin'), Buffer.from(x.buffer));
        const format = await runPython('load_ours.py', [
          arch,
          path.join(dir, 'w.safetensors'),
          path.join(dir, 'x.bin'),
          '2',
          '40',
          path.join(dir, 'y.bin'),
        ]);
        expect(format.trim()).toBe('pt');
        model.eval();
        const ours = await model.forward({ data: x, shape: [2, 3, 40, 40] });
        const theirs = await readFloat32(path.join(dir, 'y.bin'));
        expect(maxAbsDiff(ours.data, theirs)).toBeLessThan(1e-4 * Math.max(1, maxAbs(theirs)));
      },
    );
  }
  itWithTorch(
    'a damaged .pth gets a CheckpointError naming the file and the problem (random corruptions, property test)',
    async () => {
      const dir = await tempDir();
      await runPython('torchvision_pth.py', ['resnet18', dir, '1', '32']);
      const bytes = await fsp.readFile(path.join(dir, 'model.pth'));
      const model = await createModel({ arch: 'resnet18', seed: 0 });
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.record({ truncate: fc.integer({ min: 0, max: bytes.length - 1 }) }),
            fc.record({ flip: fc.integer({ min: 0, max: bytes.length - 1 }), bit: fc.integer({ min: 0, max: 7 }) }),
            fc.record({ flip: fc.integer({ min: 0, max: 20_000 }), bit: fc.integer({ min: 0, max: 7 }) }),
            fc.record({
              flip: fc.integer({ min: bytes.length - 8000, max: bytes.length - 1 }),
              bit: fc.integer({ min: 0, max: 7 }),
            }),
          ) as fc.Arbitrary<{ truncate?: number; flip?: number; bit?: number }>,
          async (c) => {
            const copy = Buffer.from(bytes);
            const content =
              c.truncate !== undefined ? copy.subarray(0, c.truncate) : ((copy[c.flip!] ^= 1 << c.bit!), copy);
            const f = path.join(dir, `fuzz-${n++}.pth`);
            await fsp.writeFile(f, content);
            try {
              await model.loadPytorch(f);
            } catch (e) {
              if (!(e instanceof CheckpointError) || (e as CheckpointError).file !== f)
                throw new Error(`${JSON.stringify(c)}: ${(e as Error).name}: ${(e as Error).message}`);
            } finally {
              await fsp.rm(f);
            }
          },
        ),
        { numRuns: 60, seed: 7 },
      );
      await fsp.writeFile(
        path.join(dir, 'legacy.pth'),
        Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]),
      );
      await expect(model.loadPytorch(path.join(dir, 'legacy.pth'))).rejects.toThrow(
        /the legacy torch.save format .* is not supported/,
      );
    },
  );
});

describe('safetensors weights', () => {
  it('strict loading lists every missing, unexpected and mismatched tensor in one error', async () => {
    const dir = await tempDir();
    const r18 = await createModel({ arch: 'resnet18', seed: 1 });
    await r18.saveWeights(path.join(dir, 'r18.safetensors'));
    const r34 = await createModel({ arch: 'resnet34', seed: 1 });
    const e = await rejection(r34.loadWeights(path.join(dir, 'r18.safetensors')));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/\(\d+ problems\)/);
    expect(e.message).toMatch(/missing layer1\.2\.conv1\.weight/);
    expect(e.message).toMatch(/missing layer3\.5\.bn2\.running_var/);
    const small = await createModel({ arch: 'resnet18', numClasses: 10, seed: 2 });
    await expect(small.loadWeights(path.join(dir, 'r18.safetensors'))).rejects.toThrow(
      /fc\.weight: shape \[1000, 512\] in the file, \[10, 512\] in the model\n {2}fc\.bias: shape \[1000\] in the file, \[10\] in the model/,
    );
    const report = await small.loadWeights(path.join(dir, 'r18.safetensors'), { strict: false });
    expect(report.mismatched.map((m) => m.name)).toEqual(['fc.weight', 'fc.bias']);
    expect(report.loaded.length).toBe(r18.stateDict().length - 2);
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    const a = (await small.handle().exportState()).find((t) => t.name === 'layer4.1.conv2.weight')!.data;
    const b = (await r18.handle().exportState()).find((t) => t.name === 'layer4.1.conv2.weight')!.data;
    expect(a).toEqual(b);
  });
  itWithTorch(
    "a state without num_batches_tracked (as Hugging Face and timm write them) loads strictly, as PyTorch's BatchNorm takes it",
    async () => {
      const dir = await tempDir();
      await runPython('torchvision_forward.py', ['resnet18', dir, '13', '2', '64']);
      const { tensors } = await readSafetensors(path.join(dir, 'weights.safetensors'));
      const kept = [...tensors].filter(([name]) => !name.endsWith('num_batches_tracked'));
      expect(kept.length).toBe(tensors.size - 20);
      await writeSafetensors(
        path.join(dir, 'hf.safetensors'),
        kept.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.bytes })),
      );
      const model = await createModel({ arch: 'resnet18', seed: 0 });
      const report = await model.loadWeights(path.join(dir, 'hf.safetensors'));
      expect(report.missing).toEqual([]);
      model.eval();
      const out = await model.forward({ data: await readFloat32(path.join(dir, 'input.bin')), shape: [2, 3, 64, 64] });
      const expected = await readFloat32(path.join(dir, 'eval.bin'));
      expect(maxAbsDiff(out.data, expected)).toBeLessThan(1e-4 * Math.max(1, maxAbs(expected)));
      const tracked = (await model.handle().exportState()).find((t) => t.name === 'bn1.num_batches_tracked')!;
      expect(Array.from(tracked.data as BigInt64Array)).toEqual([0n]);
    },
  );
  it('a torch.save file given to loadWeights is named for what it is, with the call that loads it', async () => {
    const dir = await tempDir();
    await fsp.writeFile(
      path.join(dir, 'model.pth'),
      zipStored({ 'archive/data.pkl': Uint8Array.from([0x80, 0x02, 0x7d, 0x2e]) }),
    );
    const model = await createModel({ arch: 'cifar-resnet20', seed: 1 });
    const e = await rejection(model.loadWeights(path.join(dir, 'model.pth')));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toBe(
      `${path.join(dir, 'model.pth')}: is a PyTorch file (torch.save, zip format), not safetensors: load it with model.loadPytorch(file)`,
    );
  });
  it('random corruptions of a weights file: loaded or a CheckpointError (property test)', async () => {
    const dir = await tempDir();
    const model = await createModel({ arch: 'cifar-resnet20', seed: 1 });
    await model.saveWeights(path.join(dir, 'w.safetensors'));
    const bytes = await fsp.readFile(path.join(dir, 'w.safetensors'));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 6000 }),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        async (at, bit, truncate) => {
          const copy = Buffer.from(bytes);
          const content = truncate ? copy.subarray(0, at) : ((copy[at] ^= 1 << bit), copy);
          const f = path.join(dir, `fuzz-${n++}.safetensors`);
          await fsp.writeFile(f, content);
          try {
            await model.loadWeights(f);
          } catch (e) {
            if (!(e instanceof CheckpointError)) throw new Error(`${(e as Error).name}: ${(e as Error).message}`);
          }
        },
      ),
      { numRuns: 150, seed: 3 },
    );
  });
});

describe('fine-tuning', () => {
  it('freeze() keeps the named modules fixed in training; unfreeze() trains them again', async () => {
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 3, seed: 1 });
    const data = await syntheticDataset(64, [1, 8, 8], 3);
    const all = model.parameterCount();
    model.freeze(['conv1', 'bn1', 'layer1']);
    expect(model.parameterCount({ trainable: true })).toBe(all - 144 - 32 - 3 * (2 * 2304 + 64));
    const before = new Map(
      (await model.handle().exportState()).map((t) => [t.name, Array.from(t.data as Float32Array)]),
    );
    await train(model, data, { iterations: 3, batchSize: 16 });
    const after = new Map(
      (await model.handle().exportState()).map((t) => [t.name, Array.from(t.data as Float32Array)]),
    );
    for (const name of ['conv1.weight', 'bn1.weight', 'layer1.2.conv2.weight'])
      expect(after.get(name)).toEqual(before.get(name));
    for (const name of ['layer2.0.conv1.weight', 'fc.weight']) expect(after.get(name)).not.toEqual(before.get(name));
    model.unfreeze(['layer1']);
    expect(model.parameterCount({ trainable: true })).toBe(all - 144 - 32);
    expect(() => model.freeze(['layer9'])).toThrow(ValidationError);
    expect(() => model.freeze(['layer9'])).toThrow(/no parameter under "layer9"/);
  });
  it('replaceHead() gives a new classifier for another class count and keeps the rest', async () => {
    const model = await createModel({ arch: 'resnet18', seed: 1 });
    const conv = (await model.handle().exportState()).find((t) => t.name === 'layer1.0.conv1.weight')!.data;
    model.replaceHead(5, { classNames: ['a', 'b', 'c', 'd', 'e'] });
    expect(model.numClasses).toBe(5);
    expect(model.stateDict().find((e) => e.name === 'fc.weight')!.shape).toEqual([5, 512]);
    expect(model.parameterCount()).toBe(11_689_512 - 513 * 995);
    expect((await model.handle().exportState()).find((t) => t.name === 'layer1.0.conv1.weight')!.data).toEqual(conv);
    model.eval();
    const p = await model.predict({ data: randomFloats(3 * 32 * 32), shape: [1, 3, 32, 32] }, { topK: 2 });
    expect(p[0].length).toBe(2);
    expect(['a', 'b', 'c', 'd', 'e'].includes(p[0][0].label!)).toBeTruthy();
  });
});

describe('ONNX export, run in onnxruntime-node', () => {
  const cases: [string, Record<string, unknown>, number][] = [
    ['resnet18', { arch: 'resnet18' }, 64],
    ['resnet50', { arch: 'resnet50', numClasses: 100 }, 64],
    ['resnext50_32x4d (grouped convolutions)', { arch: 'resnext50_32x4d', numClasses: 10 }, 32],
    ['resnet26d (deep stem, ceil-mode average-pool shortcut at odd sides)', { arch: 'resnet26d', numClasses: 10 }, 72],
    ['seresnet18 (squeeze-and-excitation)', { arch: 'seresnet18', numClasses: 10 }, 32],
    ['cifar-resnet20 (option A)', { arch: 'cifar-resnet20' }, 32],
    ['a pre-activation net (preact-resnet164)', { arch: 'preact-resnet164' }, 32],
    [
      'cifar-preact-resnet20, λ = 0.5, one channel',
      { arch: 'cifar-preact-resnet20', shortcutScale: 0.5, inChannels: 1 },
      28,
    ],
  ];
  for (const [name, spec, size] of cases) {
    it(`${name}: logits within 1e-4 of ours, dynamic batch, opsets 13 and 17`, async () => {
      const dir = await tempDir();
      const model = await createModel({ ...spec, seed: 2 } as never);
      const data = await syntheticDataset(16, [model.inChannels, size, size], model.numClasses);
      await train(model, data, {
        iterations: 1,
        batchSize: 16,
        normalize: 'none',
        optimizer: { type: 'sgd', lr: 0.01 },
      }); // non-trivial BN statistics
      model.eval();
      for (const opset of [13, 17]) {
        const file = path.join(dir, `m${opset}.onnx`);
        await model.exportOnnx(file, { opset, inputSize: size });
        const session = await ort.InferenceSession.create(file);
        for (const batch of [1, 3]) {
          const x = randomFloats(batch * model.inChannels * size * size, batch);
          const shape = [batch, model.inChannels, size, size];
          const out = await session.run({ input: new ort.Tensor('float32', x, shape) });
          const ours = await model.forward({ data: x, shape });
          const logits = out.logits.data as Float32Array;
          expect(out.logits.dims).toEqual([batch, model.numClasses]);
          expect(maxAbsDiff(ours.data, logits)).toBeLessThan(1e-4 * Math.max(1, maxAbs(logits)));
        }
      }
    });
  }
  it('engine "onnxruntime": the same logits as the native engine within 1e-4, the same classes from image bytes', async () => {
    const model = await createModel({ arch: 'cifar-resnet20', seed: 4, numClasses: 10 });
    const data = await syntheticDataset(16, [3, 32, 32], 10);
    await train(model, data, { iterations: 1, batchSize: 16, optimizer: { type: 'sgd', lr: 0.01 } });
    const native = await model.optimizeForInference();
    const onnx = await model.optimizeForInference({ engine: 'onnxruntime' });
    expect([native.engine, onnx.engine]).toEqual(['native', 'onnxruntime']);
    for (const batch of [1, 5]) {
      const x = { data: randomFloats(batch * 3 * 32 * 32, batch + 10), shape: [batch, 3, 32, 32] };
      const [a, b] = [await native.forward(x), await onnx.forward(x)];
      expect(b.shape).toEqual([batch, 10]);
      expect(maxAbsDiff(a.data, b.data)).toBeLessThan(1e-4 * Math.max(1, maxAbs(a.data)));
    }
    const png = pngBytes(32, 32, 3, pseudoRandomBytes(32 * 32 * 3, 2));
    const [p, q] = [await native.predictImage(png, { topK: 3 }), await onnx.predictImage(png, { topK: 3 })];
    expect(q.map((c) => c.index)).toEqual(p.map((c) => c.index));
    onnx.dispose();
    await expect(onnx.forward({ data: new Float32Array(3 * 32 * 32), shape: [1, 3, 32, 32] })).rejects.toThrow(
      /disposed/,
    );
  });
  it('engine "auto": the faster engine by measurement, the verdict cached per network and reused', async () => {
    const cache = await tempDir();
    const before = process.env.RESNET_TORCH_CACHE;
    process.env.RESNET_TORCH_CACHE = cache;
    try {
      const model = await createModel({ arch: 'cifar-resnet8', seed: 1, numClasses: 10 });
      const first = await model.optimizeForInference({ engine: 'auto' });
      const measured =
        /^auto: (native|onnxruntime) measured faster on this machine \(batches of 1 \+ 8: native ([\d.]+) ms, onnxruntime ([\d.]+) ms\)$/.exec(
          first.engineReason,
        );
      expect(measured).not.toBeNull();
      const [, chosen, nativeMs, ortMs] = measured!;
      expect(first.engine).toBe(chosen);
      expect(chosen).toBe(Number(nativeMs) <= Number(ortMs) ? 'native' : 'onnxruntime');
      const files = (await fsp.readdir(cache)).filter((f) => /^engine-choice-[0-9a-f]{16}\.json$/.test(f));
      expect(files).toHaveLength(1);
      expect(JSON.parse(await fsp.readFile(path.join(cache, files[0]), 'utf8'))).toMatchObject({ engine: chosen });
      // The same network (other weights) reuses the verdict; another input size measures again.
      const again = await (
        await createModel({ arch: 'cifar-resnet8', seed: 2, numClasses: 10 })
      ).optimizeForInference({
        engine: 'auto',
      });
      expect(again.engine).toBe(chosen);
      expect(again.engineReason).toMatch(/, cached from \d{4}-\d\d-\d\dT[\d:.]+Z\)$/);
      const other = await model.optimizeForInference({ engine: 'auto', inputSize: 40 });
      expect(other.engineReason).not.toMatch(/cached/);
      // An unreadable cache file is measured over.
      await fsp.writeFile(path.join(cache, files[0]), '{not json');
      expect((await model.optimizeForInference({ engine: 'auto' })).engineReason).not.toMatch(/cached/);
      const x = { data: randomFloats(2 * 3 * 32 * 32, 3), shape: [2, 3, 32, 32] };
      const asked = await model.optimizeForInference({ engine: 'native' });
      expect(asked.engineReason).toBe('asked for native');
      expect(maxAbsDiff((await first.forward(x)).data, (await asked.forward(x)).data)).toBeLessThan(1e-4 * 10);
    } finally {
      if (before === undefined) delete process.env.RESNET_TORCH_CACHE;
      else process.env.RESNET_TORCH_CACHE = before;
    }
  });
  it('refuses an opset before 13', async () => {
    const model = await createModel({ arch: 'cifar-resnet20', seed: 1 });
    await expect(model.exportOnnx('/tmp/x.onnx', { opset: 12 })).rejects.toThrow(
      /opset: expected an integer in \[13, 21\], got 12/,
    );
  });
});
