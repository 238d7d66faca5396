// Inference latency at batch 1 and 32: our model in eval mode, our BN-folded inference model, PyTorch eager
// (Python, same threads, the faster of the two memory formats), PyTorch's frozen TorchScript
// (jit.trace + jit.freeze + jit.optimize_for_inference) and torch.compile (with --compile: inductor compiles each
// network first, minutes on 2 cores), and onnxruntime-node running our ONNX export.
//   node .test-build/bench/infer-vs-pytorch.js [--device cpu|cuda] [--cases cifar-resnet20,resnet18,resnet50] [--repeats 10]
//     [--compile] [--budget-s S] (starts no new network after S seconds; the table shows what was measured)
// On CUDA our times include copying the input to the device and the logits back, as a caller gets them.
import * as os from 'os';
import * as path from 'path';

import { createModel, setNumThreads } from '../lib';
import { runPython } from '../harness/python';
import { tempDir } from '../harness/files';
import { argValue, formatTable } from './table';
import { describeMachine } from './machine';
import { timeOnce } from './timing';

// Three untimed calls first, no pause (nothing else runs between).
const time = (fn: () => Promise<unknown>, repeats: number) => timeOnce(fn, repeats, { pauseMs: 0, warmups: 3 });

async function main() {
  console.log(describeMachine(Number(argValue('threads', String(os.cpus().length)))));
  const device = argValue('device', 'cpu');
  const threads = Number(argValue('threads', String(os.cpus().length)));
  const repeats = Number(argValue('repeats', '10'));
  const compile = process.argv.includes('--compile');
  const archs = argValue('cases', 'cifar-resnet20,resnet18,resnet50').split(',');
  const budgetMs = Number(argValue('budget-s', 'Infinity')) * 1000;
  const started = Date.now();
  setNumThreads(threads);
  const dir = await tempDir('resnet-torch-bench-');
  const rows: (string | number)[][] = [];
  const ort = device === 'cpu' ? await loadOnnxRuntime() : undefined;
  const skipped: string[] = [];
  for (const arch of archs) {
    if (Date.now() - started > budgetMs) {
      skipped.push(arch);
      continue;
    }
    const size = arch.startsWith('cifar') ? 32 : 224;
    const model = await createModel({ arch, seed: 0, device, numClasses: arch.startsWith('cifar') ? 10 : 1000 });
    model.eval();
    const fused = await model.optimizeForInference({ inputSize: size });
    const file = path.join(dir, `${arch}.onnx`);
    if (ort) await model.exportOnnx(file, { inputSize: size });
    const session = ort ? await ort.InferenceSession.create(file, { intraOpNumThreads: threads }) : undefined;
    for (const batch of [1, 32]) {
      const x = {
        data: new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i)),
        shape: [batch, 3, size, size],
      };
      const eager = await time(() => model.forward(x), repeats);
      const folded = await time(() => fused.forward(x), repeats);
      const onnx =
        session && ort
          ? await time(() => session.run({ input: new ort.Tensor('float32', x.data, x.shape) }), repeats)
          : NaN;
      const py: Record<string, number> = {};
      const pyRun = async (format: string, mode: string) => {
        const out = await runPython(
          '../../bench/python/infer_latency.py',
          [JSON.stringify({ arch, batch, size, threads, format, repeats, device, mode })],
          { OMP_NUM_THREADS: String(threads) },
        );
        return JSON.parse(out.trim().split('\n').pop()!).ms as number;
      };
      for (const format of ['contiguous', 'channels_last']) py[format] = await pyRun(format, 'eager');
      const bestPy = Math.min(py.contiguous, py.channels_last);
      const frozen = await pyRun('contiguous', 'freeze');
      const compiled = compile ? await pyRun('contiguous', 'compile') : NaN;
      rows.push([
        arch,
        batch,
        eager,
        folded,
        bestPy,
        frozen,
        compiled,
        onnx,
        Math.min(bestPy, frozen, compiled || Infinity) / folded,
      ]);
      console.error(
        `  ${arch} batch ${batch}: ours ${eager.toFixed(2)} folded ${folded.toFixed(2)} pytorch ${py.contiguous.toFixed(2)}/${py.channels_last.toFixed(2)} frozen ${frozen.toFixed(2)} compiled ${compiled.toFixed(2)} ort ${onnx.toFixed(2)}`,
      );
    }
    model.dispose();
  }
  console.log(
    `\nInference latency (ms per batch, median of ${repeats}), ${device}, ${threads} threads, ${os.cpus()[0].model}`,
  );
  console.log(
    formatTable(
      [
        'network',
        'batch',
        'ours eval',
        'ours BN-folded',
        'PyTorch eager (best format)',
        'PyTorch jit.freeze + optimize_for_inference',
        'torch.compile',
        'onnxruntime-node',
        'best PyTorch / folded',
      ],
      rows,
    ),
  );
  if (device === 'cpu' && !ort) console.log('onnxruntime-node is not installed: its column is NaN');
  if (skipped.length) console.log(`Not run (over --budget-s): ${skipped.join(', ')}`);
}

// onnxruntime-node runs on the CPU: compared only there, and only where it is installed (it does not travel
// to the GPU machine, nor to the rehearsal of that run).
async function loadOnnxRuntime(): Promise<typeof import('onnxruntime-node') | undefined> {
  try {
    return await import('onnxruntime-node');
  } catch {
    return undefined;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
