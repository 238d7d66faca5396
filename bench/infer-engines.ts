// The inference engines through the same API (InferenceModel.forward): our BN-folded graph on oneDNN's primitives
// ('native', kernels 'onednn'), the same graph replayed with ATen's operators (kernels 'aten'), and onnxruntime-node
// on our ONNX export ('onnxruntime'), alternating in each round so all see the same machine state. Prints ms per
// batch, median (range) over the rounds, and which engine is faster.
//   node .test-build/bench/infer-engines.js [--cases cifar-resnet20,resnet18,resnet50] [--batches 1,32]
//     [--rounds 3] [--repeats 10] [--threads N] [--bf16] (also our engine in bfloat16, where the CPU runs it)
import * as os from 'os';

import { InferenceModel, createModel, setNumThreads } from '../lib';
import { argValue, formatTable, median, medianRange } from './table';
import { describeMachine } from './machine';
import { timeOnce } from './timing';

async function main() {
  console.log(describeMachine(Number(argValue('threads', String(os.cpus().length)))));
  const threads = Number(argValue('threads', String(os.cpus().length)));
  const rounds = Number(argValue('rounds', '3'));
  const repeats = Number(argValue('repeats', '10'));
  const archs = argValue('cases', 'cifar-resnet20,resnet18,resnet50').split(',');
  const batches = argValue('batches', '1,32').split(',').map(Number);
  const bf16 = process.argv.includes('--bf16');
  setNumThreads(threads);
  const rows: (string | number)[][] = [];
  for (const arch of archs) {
    const size = arch.startsWith('cifar') ? 32 : 224;
    const model = await createModel({ arch, seed: 0, numClasses: arch.startsWith('cifar') ? 10 : 1000 });
    const engines: Record<string, InferenceModel> = {
      native: await model.optimizeForInference({ inputSize: size, kernels: 'onednn' }),
      aten: await model.optimizeForInference({ inputSize: size, kernels: 'aten' }),
      onnxruntime: await model.optimizeForInference({ inputSize: size, engine: 'onnxruntime' }),
      ...(bf16 ? { bf16: await model.optimizeForInference({ inputSize: size, precision: 'bfloat16' }) } : {}),
    };
    for (const batch of batches) {
      const x = {
        data: new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i)),
        shape: [batch, 3, size, size],
      };
      const reps = Math.max(2, Math.round(repeats / Math.max(1, batch / 8) / (size > 32 ? 2 : 1)));
      for (const m of Object.values(engines)) for (let i = 0; i < 2; i++) await m.forward(x); // warm-up
      const ms: Record<string, number[]> = { native: [], aten: [], onnxruntime: [], bf16: [] };
      for (let r = 0; r < rounds; r++)
        for (const [name, m] of Object.entries(engines)) ms[name].push(await timeOnce(() => m.forward(x), reps));
      const ratio = ms.native.map((v, i) => ms.onnxruntime[i] / v);
      rows.push([
        arch,
        batch,
        medianRange(ms.native, 2),
        medianRange(ms.aten, 2),
        medianRange(ms.onnxruntime, 2),
        medianRange(ratio, 2),
        median(ratio) >= 1 ? 'native' : 'onnxruntime',
        ...(bf16
          ? [
              medianRange(ms.bf16, 2),
              medianRange(
                ms.native.map((v, i) => v / ms.bf16[i]),
                2,
              ),
            ]
          : []),
      ]);
      console.error(
        `  ${arch} batch ${batch}: native ${ms.native.map((v) => v.toFixed(2))} aten ${ms.aten.map((v) => v.toFixed(2))} ort ${ms.onnxruntime.map((v) => v.toFixed(2))}`,
      );
    }
    for (const m of Object.values(engines)) m.dispose();
    model.dispose();
  }
  console.log(
    `\nInference engines, ms per batch: median (range) of ${rounds} rounds, each the median of its repeats; ${threads} threads, ${os.cpus()[0].model}`,
  );
  console.log(
    formatTable(
      [
        'network',
        'batch',
        'native, oneDNN (ms)',
        'native, ATen (ms)',
        'onnxruntime (ms)',
        'onnxruntime / native oneDNN',
        'faster',
        ...(bf16 ? ['native bfloat16 (ms)', 'float32 / bfloat16'] : []),
      ],
      rows,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
