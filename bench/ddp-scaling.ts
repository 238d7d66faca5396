// Data-parallel scaling on this machine: CIFAR ResNet-20, 2 ranks x 1 thread against 1 process x 1 thread
// (scaling efficiency = the world's images/s over twice one process's), and PyTorch's DistributedDataParallel with
// Gloo at the same settings, alternating in one run; medians and ranges. The last row is the time a 2-rank
// iteration takes beyond a 1-process one: the all-reduce that backward did not hide, plus contention for the cores.
// To tell the two apart, 2 independent processes (no process group, the same job each) run side by side too: their
// summed rate over twice one process's is what this machine allows 2 processes at all, the ceiling of any DDP's
// efficiency here, and the 2 ranks' rate over theirs is what the data-parallel machinery itself keeps.
// With --torchrun our ranks are started by the real torchrun (--standalone; the Python of findTorchrunPython, whose
// agent serves the store: a libtorch 2.x addon), as a user starts them.
//   node .test-build/bench/ddp-scaling.js [--repeats 3] [--iterations 30] [--batch 64] [--torchrun]
import { spawn } from 'child_process';
import * as net from 'net';
import * as path from 'path';

import { findTorchrunPython, runPython } from '../harness/python';
import { argValue, formatTable, median } from './table';
import { describeMachine } from './machine';

const WORKER = path.join(__dirname, 'ddp-worker.js');
const torchrunMode = process.argv.includes('--torchrun');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Our `world` ranks started by torchrun --standalone: the world's images/s (rank 0's line). */
function underTorchrun(world: number, job: object): Promise<number> {
  const python = findTorchrunPython();
  if (!python) throw new Error('--torchrun: no Python with PyTorch 2.x (scripts/torch-venv.sh)');
  const args = ['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', String(world), '--no-python'];
  return new Promise((resolve, reject) => {
    const child = spawn(python, [...args, process.execPath, WORKER, JSON.stringify(job)], {
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    let out = '',
      err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code === 0 && line) resolve(JSON.parse(line).imagesPerSecond);
      else reject(new Error(`torchrun: ${err.slice(-2000)}`));
    });
  });
}

/** Our images/s: one process, `world` ranks of one group, or (`independent`) `world` processes with no group, summed. */
async function ours(world: number, job: object, independent = false): Promise<number> {
  if (world > 1 && !independent && torchrunMode) return underTorchrun(world, job);
  const port = await freePort();
  const outputs = await Promise.all(
    Array.from(
      { length: world },
      (_, rank) =>
        new Promise<string>((resolve, reject) => {
          const env = {
            ...process.env,
            OMP_NUM_THREADS: '1',
            ...(world > 1 && !independent
              ? { RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) }
              : {}),
          };
          const child = spawn(process.execPath, [WORKER, JSON.stringify(job)], { env });
          let out = '',
            err = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (err += d));
          child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`rank ${rank}: ${err}`))));
        }),
    ),
  );
  // A group's rank 0 reports the world's rate (the others print nothing); independent processes each their own.
  if (!independent) return JSON.parse(outputs[0].trim()).imagesPerSecond;
  return outputs.reduce((sum, o) => sum + (JSON.parse(o.trim()).imagesPerSecond as number), 0);
}

async function pytorch(world: number, job: { iterations: number; batch: number }): Promise<number> {
  const out = await runPython(
    '../../bench/python/ddp_train.py',
    [JSON.stringify({ ...job, world, port: await freePort() })],
    { OMP_NUM_THREADS: '1' },
  );
  return JSON.parse(out.trim().split('\n').pop()!).imagesPerSecond;
}

const fmt = (v: number[]) => `${median(v).toFixed(0)} (${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)})`;

async function main() {
  console.log(describeMachine(1));
  const repeats = Number(argValue('repeats', '3'));
  const job = { iterations: Number(argValue('iterations', '30')), batch: Number(argValue('batch', '64')) };
  const r = {
    ours1: [] as number[],
    ours2: [] as number[],
    alone2: [] as number[],
    torch1: [] as number[],
    torch2: [] as number[],
  };
  for (let i = 0; i < repeats; i++) {
    r.ours1.push(await ours(1, job));
    r.torch1.push(await pytorch(1, job));
    r.ours2.push(await ours(2, job));
    r.torch2.push(await pytorch(2, job));
    r.alone2.push(await ours(2, job, true));
    console.error(
      `  run ${i + 1}: ours 1x1 ${r.ours1[i].toFixed(0)}, 2x1 ${r.ours2[i].toFixed(0)}, 2 independent ${r.alone2[i].toFixed(0)}; PyTorch 1x1 ${r.torch1[i].toFixed(0)}, 2x1 ${r.torch2[i].toFixed(0)}`,
    );
  }
  const eff = (two: number[], one: number[]) => two.map((v, k) => v / (2 * one[k]));
  // What the all-reduce adds to an iteration that backward did not hide (and, on a machine with as many cores as
  // ranks, the ranks' contention for them): a 2-rank iteration's time over a 1-process iteration's, same batch.
  const exposed = (two: number[], one: number[]) =>
    two.map((v, k) => 1000 * ((2 * job.batch) / v - job.batch / one[k]));
  const ms = (v: number[]) => `${median(v).toFixed(1)} (${Math.min(...v).toFixed(1)} to ${Math.max(...v).toFixed(1)})`;
  const pct = (v: number[]) =>
    `${(median(v) * 100).toFixed(0)}% (${(Math.min(...v) * 100).toFixed(0)}-${(Math.max(...v) * 100).toFixed(0)}%)`;
  console.log(
    `\nData-parallel scaling, CIFAR ResNet-20, batch ${job.batch} per rank, 1 thread per process, Gloo on 127.0.0.1, ` +
      `our ranks started by ${torchrunMode ? 'torchrun --standalone' : "torchrun's variables"}; ` +
      `median (range) of ${repeats} alternating runs, images/s of the world`,
  );
  console.log(
    formatTable(
      ['setting', 'ours', 'PyTorch', 'ours / PyTorch'],
      [
        ['1 process x 1 thread', fmt(r.ours1), fmt(r.torch1), (median(r.ours1) / median(r.torch1)).toFixed(2)],
        ['2 ranks x 1 thread', fmt(r.ours2), fmt(r.torch2), (median(r.ours2) / median(r.torch2)).toFixed(2)],
        ['scaling efficiency', pct(eff(r.ours2, r.ours1)), pct(eff(r.torch2, r.torch1)), ''],
        ['2 independent processes (no group)', fmt(r.alone2), '', ''],
        ["this machine's ceiling for 2 processes", pct(eff(r.alone2, r.ours1)), '', ''],
        ['2 ranks / 2 independent processes', pct(r.ours2.map((v, k) => v / r.alone2[k])), '', ''],
        [
          'ms per iteration not hidden (2 ranks - 1)',
          ms(exposed(r.ours2, r.ours1)),
          ms(exposed(r.torch2, r.torch1)),
          '',
        ],
      ],
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
