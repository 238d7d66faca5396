// Where the time of one forward goes, in our engine and in onnxruntime-node, for one network and batch: our
// oneDNN program timed per primitive (InferenceModel.profile) and onnxruntime's own profiler per node (its
// *_kernel_time events), each the median over the runs, grouped by kind (convolutions, pooling, layout changes,
// the rest) and then listed layer by layer. What one engine does that the other does not shows as a row or kind
// the other lacks, or as a kind that costs more.
//   node .test-build/bench/infer-profile.js [--case resnet18] [--batch 1] [--runs 20] [--threads N]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { createModel, setNumThreads } from '../lib';
import { argValue, formatTable, median } from './table';
import { describeMachine } from './machine';

interface OrtProfiled {
  InferenceSession: {
    create(
      file: string,
      options: object,
    ): Promise<{ run(feeds: object): Promise<unknown>; endProfiling(): void; release(): Promise<void> }>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => object;
}

function kindOf(layer: string): string {
  if (/reorder|copy of the shortcut|features to NC|^Reorder/i.test(layer)) return 'layout changes';
  if (/^Conv|conv|downsample\.0/i.test(layer)) return 'convolutions';
  if (/pool/i.test(layer)) return 'pooling';
  return 'other';
}

function perLayer(runs: { layer: string; ms: number }[][]): Map<string, number> {
  const out = new Map<string, number[]>();
  for (const run of runs) {
    const seen = new Map<string, number>();
    for (const { layer, ms } of run) seen.set(layer, (seen.get(layer) ?? 0) + ms);
    for (const [layer, ms] of seen) out.set(layer, [...(out.get(layer) ?? []), ms]);
  }
  return new Map([...out].map(([layer, ms]) => [layer, median(ms)]));
}

async function main() {
  const threads = Number(argValue('threads', String(os.cpus().length)));
  console.log(describeMachine(threads));
  const arch = argValue('case', 'resnet18');
  const batch = Number(argValue('batch', '1'));
  const runs = Number(argValue('runs', '20'));
  setNumThreads(threads);
  const size = arch.startsWith('cifar') ? 32 : 224;
  const model = await createModel({ arch, seed: 0, numClasses: arch.startsWith('cifar') ? 10 : 1000 });
  const ours = await model.optimizeForInference({ inputSize: size, kernels: 'onednn' });
  const x = {
    data: new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i)),
    shape: [batch, 3, size, size],
  };

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infer-profile-'));
  const onnx = path.join(dir, 'model.onnx');
  await model.exportOnnx(onnx, { inputSize: size });
  const ort = (await import('onnxruntime-node' as string)) as OrtProfiled;
  const session = await ort.InferenceSession.create(onnx, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableProfiling: true,
    profileFilePrefix: path.join(dir, 'ort'),
  });
  const feed = { input: new ort.Tensor('float32', x.data, x.shape) };

  const ourRuns: { layer: string; ms: number }[][] = [];
  for (let i = 0; i < 3; i++) await ours.forward(x);
  for (let i = 0; i < 3; i++) await session.run(feed);
  for (let i = 0; i < runs; i++) {
    ourRuns.push(await ours.profile(x));
    await session.run(feed);
  }
  session.endProfiling();
  await session.release();
  const file = fs.readdirSync(dir).find((f) => f.startsWith('ort') && f.endsWith('.json'));
  if (!file) throw new Error(`onnxruntime wrote no profile in ${dir}`);
  type Event = { cat: string; name: string; dur: number; ts: number; args?: { op_name?: string } };
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Event[];
  const modelRuns = events.filter((e) => e.name === 'model_run').slice(-runs);
  const ortRuns = modelRuns.map((r) =>
    events
      .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= r.ts && e.ts <= r.ts + r.dur)
      .map((e) => ({ layer: `${e.args?.op_name ?? '?'} ${e.name.replace(/_kernel_time$/, '')}`, ms: e.dur / 1000 })),
  );
  fs.rmSync(dir, { recursive: true, force: true });

  const ourLayers = perLayer(ourRuns),
    ortLayers = perLayer(ortRuns);
  const kinds = ['convolutions', 'pooling', 'layout changes', 'other'];
  const byKind = (layers: Map<string, number>) => {
    const sums = new Map(kinds.map((k) => [k, { ms: 0, n: 0 }]));
    for (const [layer, ms] of layers) {
      const k = sums.get(kindOf(layer))!;
      k.ms += ms;
      k.n += 1;
    }
    return sums;
  };
  const a = byKind(ourLayers),
    b = byKind(ortLayers);
  const total = (layers: Map<string, number>) => [...layers.values()].reduce((s, v) => s + v, 0);
  console.log(
    `\n${arch}, batch ${batch}, ${size}x${size}: ms per forward by kind (median of ${runs} profiled runs each, alternating), ${threads} threads`,
  );
  console.log(
    formatTable(
      ['kind', 'ours: primitives', 'ours (ms)', 'onnxruntime: nodes', 'onnxruntime (ms)'],
      [
        ...kinds.map((k) => [k, a.get(k)!.n, a.get(k)!.ms.toFixed(3), b.get(k)!.n, b.get(k)!.ms.toFixed(3)]),
        ['total', ourLayers.size, total(ourLayers).toFixed(3), ortLayers.size, total(ortLayers).toFixed(3)],
      ],
    ),
  );
  console.log('\nours, per primitive:');
  console.log(
    formatTable(
      ['primitive', 'ms'],
      [...ourLayers].map(([l, ms]) => [l, ms.toFixed(3)]),
    ),
  );
  console.log('\nonnxruntime, per node:');
  console.log(
    formatTable(
      ['node', 'ms'],
      [...ortLayers].map(([l, ms]) => [l, ms.toFixed(3)]),
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
