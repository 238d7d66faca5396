// One side of bench/train-profile, in a process of its own (ONEDNN_MAX_CPU_ISA and the threads are per process):
// our training of the bench's case, timed per phase. Two runs, of N and 2N iterations, each start-up included;
// their difference is the phases of N iterations in the steady state; the wall time, page faults and system time
// are those of the second half of the long run. Prints one JSON line.
//   node .test-build/bench/train-profile-worker.js JSON   (JSON: {arch, batch, size, iters, threads, format})
import { createModel, fromArrays, info, setNumThreads, train } from '../lib';
import type { PhaseSeconds } from '../lib';

interface Job {
  arch: string;
  batch: number;
  size: number;
  iters: number;
  threads: number;
  format: 'channels_last' | 'contiguous';
}

async function run(job: Job, iterations: number) {
  const count = Math.max(job.batch * 8, 1024);
  const images = new Uint8Array(count * 3 * job.size * job.size).map((_, i) => (i * 2654435761) >>> 24);
  const data = await fromArrays({
    images,
    shape: [count, 3, job.size, job.size],
    labels: Array.from({ length: count }, (_, i) => i % 10),
  });
  const model = await createModel({ arch: job.arch, numClasses: 10, seed: 0 });
  // The allocator's cost over the second half (the steady state): from the event of iteration N (delivered a moment
  // after the trainer passed it) to the end.
  let before = process.resourceUsage(),
    halfway = 0;
  const result = await train(model, data, {
    logEvery: job.iters,
    onProgress: (e) => {
      if (e.kind !== 'iteration' || e.iteration !== job.iters) return;
      before = process.resourceUsage();
      halfway = e.elapsedSeconds; // the trainer's own clock at iteration N
    },
    iterations,
    batchSize: job.batch,
    threads: job.threads,
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 },
    memoryFormat: job.format,
  });
  const after = process.resourceUsage();
  model.dispose();
  return {
    seconds: result.elapsedSeconds,
    window: result.elapsedSeconds - halfway,
    phases: result.phases,
    engine: result.engine,
    minorFaults: after.minorPageFault - before.minorPageFault,
    systemSeconds: (after.systemCPUTime - before.systemCPUTime) / 1e6,
  };
}

(async () => {
  const job = JSON.parse(process.argv[2]) as Job;
  setNumThreads(job.threads);
  const short = await run(job, job.iters);
  const long = await run(job, 2 * job.iters);
  const phases = Object.fromEntries(
    Object.keys(long.phases).map((k) => [
      k,
      long.phases[k as keyof PhaseSeconds] - short.phases[k as keyof PhaseSeconds],
    ]),
  );
  const i = info();
  console.log(
    JSON.stringify({
      // The wall time of iterations N+1..2N of the long run, by the trainer's clock (the phases, from two runs,
      // can be off by a pause that hit one of them).
      seconds: long.window,
      phases,
      engine: long.engine,
      minorFaults: long.minorFaults,
      systemSeconds: long.systemSeconds,
      libtorch: i.libtorchVersion,
      cpu: i.cpu,
    }),
  );
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
