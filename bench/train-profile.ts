// Where training time goes, ours and PyTorch's side by side at the same settings, per CPU path: each phase of an
// iteration (data, forward, backward, optimizer, the rest), what the allocator costs (minor page faults and system
// time: memory handed back to the kernel and faulted in again), and oneDNN's own primitive times
// (ONEDNN_VERBOSE, a run of its own since printing slows it). Every configuration runs in processes of their own,
// ours and PyTorch's alternating: ONEDNN_MAX_CPU_ISA (default: the CPU's best; AVX2: an AVX2-only CPU's kernels)
// and the thread count are per process. PyTorch runs twice: as a user runs it, and with glibc's malloc tuned.
//   node .test-build/bench/train-profile.js [--isas default,AVX2] [--formats channels_last,contiguous]
//     [--threads 2] [--repeats 3] [--iterations 20] [--case cifar20|resnet50]
import { spawn } from 'child_process';
import * as os from 'os';
import * as path from 'path';

import { runPython } from '../harness/python';
import { argValue, formatTable, median, medianRange } from './table';
import { describeMachine } from './machine';

const WORKER = path.join(__dirname, 'train-profile-worker.js');
// PyTorch a second time with glibc's malloc told to keep freed memory (no trimming, no mmap below 32 MiB): what it
// reaches once its allocator no longer hands blocks back to the kernel and faults them in again, as ours never does.
const TUNED_MALLOC = { MALLOC_MMAP_THRESHOLD_: String(32 << 20), MALLOC_TRIM_THRESHOLD_: String(1e11) };
const CASES: Record<string, { label: string; arch: string; batch: number; size: number; iters: number }> = {
  cifar20: { label: 'CIFAR ResNet-20, batch 128, 32x32', arch: 'cifar-resnet20', batch: 128, size: 32, iters: 20 },
  resnet50: { label: 'ResNet-50, batch 16, 224x224', arch: 'resnet50', batch: 16, size: 224, iters: 4 },
};

interface Side {
  seconds: number;
  phases: Record<string, number>;
  minorFaults: number;
  systemSeconds: number;
}

function isaEnv(isa: string): Record<string, string> {
  return isa === 'default' ? {} : { ONEDNN_MAX_CPU_ISA: isa };
}

function spawnWorker(job: object, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(job)], { env: { ...process.env, ...env } });
    let out = '',
      err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker exited with ${code}: ${err}`))));
  });
}

const lastJson = (out: string) =>
  JSON.parse(
    out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop()!,
  );

// oneDNN's verbose lines: "onednn_verbose,exec,cpu,<primitive>,<implementation>,<prop_kind>,...,<ms>" (2.x) or with
// "primitive," before "exec" (3.x). Summed per primitive and pass.
function primitiveTimes(out: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of out.split('\n')) {
    if (!/^(onednn|dnnl)_verbose,/.test(line)) continue;
    const f = line.split(',');
    const at = f.indexOf('exec');
    if (at < 0 || f[at + 1] !== 'cpu') continue;
    const primitive = f[at + 2].replace(/_v2$/, '');
    const pass = f[at + 4];
    const key =
      primitive === 'convolution' || primitive === 'batch_normalization' || primitive === 'pooling'
        ? `${primitive} ${pass.replace('forward_training', 'forward').replace('forward_inference', 'forward')}`
        : primitive;
    sums.set(key, (sums.get(key) ?? 0) + Number(f[f.length - 1]));
  }
  return sums;
}

async function main() {
  console.log(describeMachine(Number(argValue('threads', String(os.cpus().length)))));
  const c = CASES[argValue('case', 'cifar20')];
  if (!c) throw new Error(`--case: one of ${Object.keys(CASES).join(', ')}`);
  const isas = argValue('isas', 'default,AVX2').split(',');
  const formats = argValue('formats', 'channels_last,contiguous').split(',');
  const threads = Number(argValue('threads', String(os.cpus().length)));
  const repeats = Number(argValue('repeats', '3'));
  const iters = Number(argValue('iterations', String(c.iters)));
  const summary: (string | number)[][] = [];
  let header = '';
  for (const isa of isas) {
    for (const format of formats) {
      const env = { ...isaEnv(isa), OMP_NUM_THREADS: String(threads) };
      const job = { arch: c.arch, batch: c.batch, size: c.size, iters, threads, format };
      const ours: Side[] = [],
        theirs: Side[] = [],
        tuned: Side[] = [];
      let engine = '',
        cpu: { model: string; isa: string[]; onednnIsa: string | null; onednnVersion: string | null } | undefined;
      let torch = '';
      const pytorch = async (extra: Record<string, string>) =>
        lastJson(
          await runPython('../../bench/python/train_profile.py', [JSON.stringify({ ...job, warmup: iters })], {
            ...env,
            ...extra,
          }),
        );
      for (let r = 0; r < repeats; r++) {
        const o = lastJson(await spawnWorker(job, env));
        ours.push(o);
        engine = o.engine;
        cpu = o.cpu;
        header = `libtorch ${o.libtorch} (ours), `;
        const t = await pytorch({});
        theirs.push(t);
        torch = t.torch;
        tuned.push(await pytorch(TUNED_MALLOC));
      }
      // oneDNN's primitives, per iteration: one verbose run each (ours: 3 x iters iterations in all).
      const verboseEnv = { ...env, ONEDNN_VERBOSE: '1' };
      const vIters = Math.max(2, Math.floor(iters / 2));
      // Verbose runs are slower (each primitive prints a line): shares are taken of their own iterations' wall time.
      const ourVerbose = await spawnWorker({ ...job, iters: vIters }, verboseEnv);
      const theirVerbose = await runPython(
        '../../bench/python/train_profile.py',
        [JSON.stringify({ ...job, warmup: vIters, iters: 2 * vIters })],
        verboseEnv,
      );
      const ourPrims = primitiveTimes(ourVerbose),
        theirPrims = primitiveTimes(theirVerbose);
      const ourVerboseIt = (1000 * lastJson(ourVerbose).seconds) / vIters,
        theirVerboseIt = (1000 * lastJson(theirVerbose).seconds) / (2 * vIters);
      const ms = (sides: Side[], f: (s: Side) => number) => median(sides.map((x) => f(x) / iters)) * 1000;
      const oursIt = ms(ours, (s) => s.seconds),
        theirsIt = ms(theirs, (s) => s.seconds);
      const rate = (s: Side) => (iters * c.batch) / s.seconds;
      console.log(
        `\n${c.label}, ${format}, float32, ${threads} thread(s); ONEDNN_MAX_CPU_ISA=${isa === 'default' ? '(unset)' : isa}: ` +
          `oneDNN ${cpu?.onednnVersion ?? '?'} runs ${cpu?.onednnIsa ?? '?'}; ours trains on ${engine}; PyTorch ${torch}`,
      );
      console.log(`median of ${repeats} alternating runs, ms per iteration over ${iters} steady-state iterations`);
      const sides = [ours, theirs, tuned];
      const row = (label: string, f: (s: Side) => number, ourF = f): (string | number)[] => [
        label,
        ms(ours, ourF),
        ms(theirs, f),
        ms(tuned, f),
      ];
      const pythonRest = (s: Side) =>
        s.seconds - (s.phases.data + s.phases.forward + s.phases.backward + s.phases.optimizer);
      const phaseRows: (string | number)[][] = [
        row(
          'data: drawn, converted, normalised',
          (s) => s.phases.data,
          (s) => Math.max(0, s.phases.dataWait),
        ),
        row('forward and loss', (s) => s.phases.forward),
        row('backward', (s) => s.phases.backward),
        row('optimizer (zero_grad, step)', (s) => s.phases.optimizer),
        row('the rest (meters, events; the Python loop)', pythonRest, (s) => s.phases.other),
        row('iteration (wall)', (s) => s.seconds),
        [
          'allocator: minor page faults per iteration',
          ...sides.map((side) => median(side.map((s) => s.minorFaults / iters))),
        ],
        row('allocator: system time', (s) => s.systemSeconds),
      ];
      console.log(formatTable(['phase', 'ours', 'PyTorch eager', 'PyTorch, malloc tuned'], phaseRows));
      const keys = [...new Set([...ourPrims.keys(), ...theirPrims.keys()])].sort(
        (a, b) => (theirPrims.get(b) ?? 0) - (theirPrims.get(a) ?? 0),
      );
      const ourTotal = [...ourPrims.values()].reduce((a, b) => a + b, 0) / (3 * vIters);
      const theirTotal = [...theirPrims.values()].reduce((a, b) => a + b, 0) / (3 * vIters);
      const conv = (m: Map<string, number>) =>
        [...m].filter(([k]) => k.startsWith('convolution')).reduce((a, [, v]) => a + v, 0) / (3 * vIters);
      console.log(
        formatTable(
          ['oneDNN primitive (ONEDNN_VERBOSE, ms per iteration)', 'ours', 'PyTorch eager'],
          [
            ...keys.map((k) => [k, (ourPrims.get(k) ?? 0) / (3 * vIters), (theirPrims.get(k) ?? 0) / (3 * vIters)]),
            ['all of oneDNN', ourTotal, theirTotal],
            ['iteration (wall) in this verbose run', ourVerboseIt, theirVerboseIt],
            [
              "  oneDNN's share of it",
              `${((100 * ourTotal) / ourVerboseIt).toFixed(0)}%`,
              `${((100 * theirTotal) / theirVerboseIt).toFixed(0)}%`,
            ],
          ],
        ),
      );
      const ratios = (against: Side[]) => ours.map((o, k) => rate(o) / rate(against[k]));
      const rates = (side: Side[]) => medianRange(side.map(rate), median(side.map(rate)) < 100 ? 1 : 0);
      summary.push([
        `${format}, ${isa === 'default' ? (cpu?.onednnIsa ?? 'default') : isa}, ${threads} thr`,
        rates(ours),
        rates(theirs),
        medianRange(ratios(theirs), 2),
        rates(tuned),
        medianRange(ratios(tuned), 2),
        `${((100 * conv(theirPrims)) / theirVerboseIt).toFixed(0)}%`,
        // Our convolutions' time outside the verbose run: their share of our verbose iteration, of our iteration.
        (theirsIt / ((conv(ourPrims) / ourVerboseIt) * oursIt)).toFixed(2),
      ]);
      if (cpu) header += `CPU ${cpu.model} (${cpu.isa.join(', ')}), kernel ${os.release()}`;
    }
  }
  console.log(`\nSummary: ${c.label}, float32; ${header}`);
  console.log(
    formatTable(
      [
        'setting',
        'ours img/s',
        'PyTorch eager img/s',
        'ratio',
        'PyTorch, malloc tuned',
        'ratio',
        "convolutions' share of PyTorch's iteration",
        "ceiling: PyTorch's iteration / our convolutions",
      ],
      summary,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
