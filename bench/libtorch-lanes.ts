// Our training on two builds of the addon side by side: Debian's libtorch 1.13 (the default of `npm start`) and
// pip's PyTorch 2.15 (scripts/test-torch2.15.sh builds it in build/torch-2.15), alternating in processes of their
// own (bench/train-profile-worker.js, the steady state of N iterations), median (range) of the rounds. What the
// README's choice of the default lane rests on, with the set-up times it quotes.
//   node .test-build/bench/libtorch-lanes.js [--addons build/Release/resnet_torch.node,build/torch-2.15/resnet_torch.node]
//     [--case cifar20|resnet50] [--format channels_last|contiguous] [--repeats 3] [--threads N]
import { spawn } from 'child_process';
import * as os from 'os';
import * as path from 'path';

import { argValue, formatTable, median, medianRange } from './table';
import { describeMachine } from './machine';

const ROOT = path.join(__dirname, '..', '..');
const WORKER = path.join(__dirname, 'train-profile-worker.js');
const CASES: Record<string, { label: string; arch: string; batch: number; size: number; iters: number }> = {
  cifar20: { label: 'CIFAR ResNet-20, batch 128, 32x32', arch: 'cifar-resnet20', batch: 128, size: 32, iters: 20 },
  resnet50: { label: 'ResNet-50, batch 32, 224x224', arch: 'resnet50', batch: 32, size: 224, iters: 3 },
};

function worker(job: object, addon: string): Promise<{ seconds: number; engine: string; libtorch: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(job)], {
      env: { ...process.env, RESNET_TORCH_ADDON: addon },
    });
    let out = '',
      err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`${addon}: ${err}`)),
    );
  });
}

async function main() {
  const threads = Number(argValue('threads', String(os.cpus().length)));
  console.log(describeMachine(threads));
  const c = CASES[argValue('case', 'cifar20')];
  if (!c) throw new Error(`--case: one of ${Object.keys(CASES).join(', ')}`);
  const addons = argValue('addons', 'build/Release/resnet_torch.node,build/torch-2.15/resnet_torch.node')
    .split(',')
    .map((a) => path.resolve(ROOT, a));
  const repeats = Number(argValue('repeats', '3'));
  const job = {
    arch: c.arch,
    batch: c.batch,
    size: c.size,
    iters: c.iters,
    threads,
    format: argValue('format', 'channels_last'),
  };
  const runs = addons.map(() => [] as { seconds: number; engine: string; libtorch: string }[]);
  for (let r = 0; r < repeats; r++) for (let k = 0; k < addons.length; k++) runs[k].push(await worker(job, addons[k]));
  const rate = (s: { seconds: number }) => (c.iters * c.batch) / s.seconds;
  const base = runs[0].map(rate);
  console.log(
    `\n${c.label}, ${job.format}, float32, ${threads} thread(s); median (range) of ${repeats} alternating rounds`,
  );
  console.log(
    formatTable(
      ['addon', 'libtorch', 'trains on', 'img/s', `ratio to ${path.relative(ROOT, addons[0])}`],
      runs.map((side, k) => [
        path.relative(ROOT, addons[k]),
        side[0].libtorch,
        side[0].engine,
        medianRange(side.map(rate), median(side.map(rate)) < 100 ? 1 : 0),
        medianRange(
          side.map((s, i) => rate(s) / base[i]),
          2,
        ),
      ]),
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
