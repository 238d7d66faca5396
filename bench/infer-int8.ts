// int8 inference: ours (the oneDNN program, calibrated on the user's images) against onnxruntime's own static
// quantization of our ONNX export (bench/python/ort_quantize.py: QDQ, int8 activations and per-channel weights,
// MinMax calibration on the same images), with both engines' float32 beside them. A cifar-resnet20 trained briefly
// on Fashion-MNIST (so the accuracies mean something); prints each one's accuracy on the 10,000 test images and ms
// per batch, median (range) of rounds alternating the four.
//   RESNET_TORCH_ONNX_PYTHON=<venv python> node .test-build/bench/infer-int8.js [--arch cifar-resnet20]
//     [--train 10000] [--epochs 2] [--calibration 500] [--batches 1,32] [--rounds 3] [--repeats 20] [--threads N]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor, createModel, datasets, info, normalizeImages, setNumThreads, train } from '../lib';
import { findOnnxQuantPython, runPython } from '../harness/python';
import { argValue, formatTable, median, medianRange } from './table';
import { describeMachine } from './machine';
import { timeOnce } from './timing';

type Run = (x: Tensor) => Promise<Float32Array>;

interface OrtModule {
  InferenceSession: {
    create(
      file: string,
      options: object,
    ): Promise<{ outputNames: readonly string[]; run(feeds: object): Promise<Record<string, { data: unknown }>> }>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown;
}

async function ortSession(file: string, threads: number): Promise<Run> {
  const ort = (await import('onnxruntime-node')) as unknown as OrtModule;
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  return async (x) => {
    const out = await session.run({ input: new ort.Tensor('float32', x.data, x.shape) });
    return Float32Array.from(out[session.outputNames[0]].data as ArrayLike<number>);
  };
}

async function main() {
  const threads = Number(argValue('threads', String(os.cpus().length)));
  console.log(describeMachine(threads));
  const arch = argValue('arch', 'cifar-resnet20');
  const trainCount = Number(argValue('train', '10000'));
  const epochs = Number(argValue('epochs', '2'));
  const calibrationCount = Number(argValue('calibration', '500'));
  const batches = argValue('batches', '1,32').split(',').map(Number);
  const rounds = Number(argValue('rounds', '3'));
  const repeats = Number(argValue('repeats', '20'));
  const python = findOnnxQuantPython();
  if (!python) throw new Error('no Python with onnxruntime.quantization: run scripts/torch-venv.sh');
  setNumThreads(threads);

  const trainSet = await (await datasets.fashionMnist({ split: 'train' })).take(trainCount, 1);
  const test = await datasets.fashionMnist({ split: 'test' });
  const model = await createModel({ arch, inChannels: 1, numClasses: 10, seed: 5 });
  const started = performance.now();
  await train(model, trainSet, { epochs, batchSize: 64, optimizer: { type: 'sgd', lr: 0.02, momentum: 0.9 } });
  console.error(
    `  trained ${arch} on ${trainCount} images, ${epochs} epochs, ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  const calibrationSet = await (await datasets.fashionMnist({ split: 'train' })).take(calibrationCount, 2);
  const c = calibrationSet.get(0, calibrationCount);
  const calibration = { data: normalizeImages(c.images, c.shape, model.preprocessing), shape: c.shape };

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-int8-'));
  const [h, w] = [c.shape[2], c.shape[3]];
  await model.exportOnnx(path.join(dir, 'model.onnx'), { inputSize: [h, w] });
  fs.writeFileSync(path.join(dir, 'calibration.f32'), Buffer.from(calibration.data.buffer));
  // onnxruntime's two x86-64 choices: signed activations (S8S8, its default) and unsigned (U8S8).
  const how: string[] = [];
  for (const activations of ['int8', 'uint8'])
    how.push(
      await runPython(
        '../../bench/python/ort_quantize.py',
        [
          path.join(dir, 'model.onnx'),
          path.join(dir, 'calibration.f32'),
          ...c.shape.map(String),
          path.join(dir, `model.${activations}.onnx`),
          activations,
        ],
        {},
        python,
      ),
    );
  const ours32 = await model.optimizeForInference({ inputSize: [h, w], kernels: 'onednn' });
  const ours8 = await model.optimizeForInference({ inputSize: [h, w], precision: 'int8', calibration });
  const engines: Record<string, Run> = {
    'ours float32': async (x) => (await ours32.forward(x)).data,
    'ours int8': async (x) => (await ours8.forward(x)).data,
    'onnxruntime float32': await ortSession(path.join(dir, 'model.onnx'), threads),
    'onnxruntime int8 (S8S8)': await ortSession(path.join(dir, 'model.int8.onnx'), threads),
    'onnxruntime int8 (U8S8)': await ortSession(path.join(dir, 'model.uint8.onnx'), threads),
  };

  const right: Record<string, number> = {};
  for (let start = 0; start < test.length; start += 500) {
    const { images, labels, shape } = test.get(start, 500);
    const x = { data: normalizeImages(images, shape, model.preprocessing), shape };
    for (const [name, run] of Object.entries(engines)) {
      const y = await run(x);
      for (let i = 0; i < labels.length; i++) {
        let best = 0;
        for (let k = 1; k < 10; k++) if (y[i * 10 + k] > y[i * 10 + best]) best = k;
        right[name] = (right[name] ?? 0) + Number(best === labels[i]);
      }
    }
  }

  const ms: Record<string, Record<number, number[]>> = {};
  for (const batch of batches) {
    const { images, shape } = test.get(0, batch);
    const x = { data: normalizeImages(images, shape, model.preprocessing), shape };
    const reps = Math.max(3, Math.round(repeats / Math.max(1, batch / 8)));
    for (const run of Object.values(engines)) for (let i = 0; i < 2; i++) await run(x); // warm-up
    for (let r = 0; r < rounds; r++)
      for (const [name, run] of Object.entries(engines))
        ((ms[name] ??= {})[batch] ??= []).push(await timeOnce(() => run(x), reps));
  }
  // Against onnxruntime's faster int8 model at that batch.
  const theirs = (batch: number) =>
    ['onnxruntime int8 (S8S8)', 'onnxruntime int8 (U8S8)'].reduce((a, b) =>
      median(ms[a][batch]) <= median(ms[b][batch]) ? a : b,
    );
  const ratio = (batch: number) => ms[theirs(batch)][batch].map((v, i) => v / ms['ours int8'][batch][i]);
  console.log(
    `\nint8 inference, ${arch} trained ${epochs} epochs on ${trainCount} Fashion-MNIST images, calibrated on ` +
      `${calibrationCount} others; accuracy on the 10,000 test images; ms per batch: median (range) of ${rounds} ` +
      `rounds; ${threads} threads, ${os.cpus()[0].model}, oneDNN ISA ${info().training.onednnIsa ?? 'n/a'}\n` +
      `onnxruntime's quantization: ${how.map((l) => l.trim()).join(', ')}`,
  );
  console.log(
    formatTable(
      ['engine', 'test accuracy (%)', ...batches.map((b) => `batch ${b} (ms)`)],
      Object.keys(engines).map((name) => [
        name,
        ((right[name] / test.length) * 100).toFixed(2),
        ...batches.map((b) => medianRange(ms[name][b], 2)),
      ]),
    ),
  );
  console.log(
    batches
      .map(
        (b) =>
          `${theirs(b)} / ours int8, batch ${b}: ${medianRange(ratio(b), 2)} (${median(ratio(b)) >= 1 ? 'ours faster' : 'onnxruntime faster'})`,
      )
      .join('\n'),
  );
  fs.rmSync(dir, { recursive: true, force: true });
  for (const m of [ours32, ours8]) m.dispose();
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
