// Load on `resnet serve` over 127.0.0.1: requests/s and p50/p99 latency at several concurrencies for the server
// on our engine with dynamic batching, without it (--max-batch 1), and with batching on onnxruntime-node running
// our ONNX export (the engine 'auto' picks on the CPU), the
// three alternating in each round. Then an open-loop run at twice the batched server's sustainable rate: the
// bounded queue must answer the excess with 503 at once and keep the p99 of the accepted requests bounded.
//   node .test-build/bench/serve-load.js [--arch cifar-resnet20] [--concurrency 1,8,32] [--duration-s 5]
//     [--rounds 3] [--servers batched,unbatched,onnxruntime]
// The load generator shares the machine with the server (closed loop: each client sends its next request when
// the previous answer arrives; keep-alive connections; PNG bodies of 32x32 images).
import { ChildProcess, spawn } from 'child_process';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';

import { createModel } from '../lib';
import { pngBytes } from '../harness/fixtures';
import { tempDir } from '../harness/files';
import { pseudoRandomBytes } from '../harness/synthetic';
import { argValue, formatTable, median, medianRange, percentile } from './table';
import { describeMachine } from './machine';

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

const SERVERS: Record<string, string[]> = {
  batched: ['--engine', 'native', '--max-batch', '32'],
  'batched-delay2': ['--engine', 'native', '--max-batch', '32', '--max-delay-ms', '2'], // not in the default set
  unbatched: ['--engine', 'native', '--max-batch', '1'],
  onnxruntime: ['--engine', 'onnxruntime', '--max-batch', '32'],
};

interface Run {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  refused: number;
}

function startServer(file: string, flags: string[]): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', file, '--port', '0', ...flags], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '',
      err = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.stderr!.on('data', (d) => (err += d));
    child.on('exit', (code) => reject(new Error(`the server exited (${code}): ${err}`)));
  });
}

function post(agent: http.Agent, url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/predict`,
      { method: 'POST', agent, headers: { 'Content-Type': 'image/png' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Answers as they come: latencies of the 200s, counts of the 503s and of everything else. */
class Tally {
  latencies: number[] = [];
  errors = 0;
  refused = 0;
  record(status: number, ms: number): void {
    if (status === 200) this.latencies.push(ms);
    else if (status === 503) this.refused++;
    else this.errors++;
  }
  run(seconds: number): Run {
    const l = this.latencies;
    const p = (q: number) => percentile(l, q);
    return { rps: l.length / seconds, p50: p(50), p99: p(99), errors: this.errors, refused: this.refused };
  }
}

async function closedLoop(url: string, images: Buffer[], concurrency: number, seconds: number): Promise<Run> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const tally = new Tally();
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      for (let i = c; performance.now() < until; i += concurrency) {
        const t = performance.now();
        tally.record(await post(agent, url, images[i % images.length]).catch(() => 0), performance.now() - t);
      }
    }),
  );
  agent.destroy();
  return tally.run((performance.now() - started) / 1000);
}

/** Requests sent at a fixed rate whatever the answers (an open loop), as real overload arrives. */
async function openLoop(url: string, images: Buffer[], rate: number, seconds: number): Promise<Run> {
  const agent = new http.Agent({ keepAlive: true }); // no socket limit: the excess must reach the server
  const tally = new Tally();
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const total = Math.round(rate * seconds);
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const t = performance.now();
    pending.push(
      post(agent, url, images[i % images.length])
        .catch(() => 0)
        .then((status) => tally.record(status, performance.now() - t)),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  return tally.run((performance.now() - started) / 1000);
}

async function main() {
  console.log(describeMachine(os.cpus().length));
  const arch = argValue('arch', 'cifar-resnet20');
  const concurrencies = argValue('concurrency', '1,8,32').split(',').map(Number);
  const seconds = Number(argValue('duration-s', '5'));
  const rounds = Number(argValue('rounds', '3'));
  const servers = argValue('servers', 'batched,unbatched,onnxruntime').split(',');
  const size = arch.startsWith('cifar') ? 32 : 224;
  const dir = await tempDir('resnet-torch-serve-bench-');
  const file = path.join(dir, 'model.safetensors');
  const model = await createModel({ arch, seed: 0, numClasses: 10 });
  model.preprocessing = {
    normalize: 'per-channel',
    mean: [0.49, 0.48, 0.45],
    meanShape: [3],
    std: [0.25, 0.24, 0.26],
    inputSize: [size, size],
  };
  await model.saveWeights(file);
  model.dispose();
  const images = Array.from({ length: 64 }, (_, i) => pngBytes(size, size, 3, pseudoRandomBytes(size * size * 3, i)));

  const results = new Map<string, Run[]>(); // "server c" -> one Run per round
  const overload: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const name of servers) {
      const { child, url } = await startServer(file, SERVERS[name]);
      await closedLoop(url, images, 8, 1); // warm-up
      for (const c of concurrencies) {
        const run = await closedLoop(url, images, c, seconds);
        const key = `${name} ${c}`;
        results.set(key, [...(results.get(key) ?? []), run]);
        console.error(
          `  round ${round + 1} ${name} c=${c}: ${run.rps.toFixed(0)} req/s p50 ${run.p50.toFixed(2)} p99 ${run.p99.toFixed(2)} ms` +
            (run.refused || run.errors ? ` (503: ${run.refused}, errors: ${run.errors})` : ''),
        );
      }
      if (name === 'batched') {
        const sustainable = results.get(`batched ${Math.max(...concurrencies)}`)!.at(-1)!.rps;
        const run = await openLoop(url, images, 2 * sustainable, seconds);
        overload.push(run);
        console.error(
          `  round ${round + 1} batched open loop at ${(2 * sustainable).toFixed(0)} req/s: served ${run.rps.toFixed(0)}/s, ` +
            `p99 ${run.p99.toFixed(1)} ms, 503: ${run.refused}, errors: ${run.errors}`,
        );
      }
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }

  const rows = [...results].map(([key, runs]) => {
    const [name, c] = key.split(' ');
    return [
      name,
      Number(c),
      medianRange(runs.map((r) => r.rps)),
      medianRange(
        runs.map((r) => r.p50),
        2,
      ),
      medianRange(
        runs.map((r) => r.p99),
        2,
      ),
      runs.reduce((a, r) => a + r.refused + r.errors, 0),
    ];
  });
  console.log(
    `\nresnet serve, ${arch} (${size}x${size} PNG bodies), ${seconds} s per cell, median (range) of ${rounds} rounds; ` +
      `${os.cpus().length} cores shared by server and load, ${os.cpus()[0].model}`,
  );
  console.log(formatTable(['server', 'concurrency', 'requests/s', 'p50 (ms)', 'p99 (ms)', 'non-200'], rows));
  const top = Math.max(...concurrencies);
  const ratio = (a: string, b: string) => {
    const x = results.get(a),
      y = results.get(b);
    return x && y
      ? medianRange(
          x.map((r, i) => r.rps / y[i].rps),
          2,
        )
      : 'n/a';
  };
  console.log(`\nbatched / unbatched throughput at concurrency ${top}: ${ratio(`batched ${top}`, `unbatched ${top}`)}`);
  const p50 = (k: string) => results.get(k)?.map((r) => r.p50);
  const ours = p50('batched 1'),
    ort = p50('onnxruntime 1');
  if (ours && ort)
    console.log(
      `single-request latency (concurrency 1, p50 ms): batched native ${medianRange(ours, 2)}, onnxruntime ${medianRange(ort, 2)}; ` +
        `native / onnxruntime ${medianRange(
          ours.map((v, i) => v / ort[i]),
          2,
        )}`,
    );
  if (overload.length)
    console.log(
      `open loop at 2x the batched server's rate: served ${medianRange(overload.map((r) => r.rps))} req/s, ` +
        `p99 ${medianRange(
          overload.map((r) => r.p99),
          1,
        )} ms, refused with 503 ${medianRange(overload.map((r) => r.refused))}, other errors ` +
        `${overload.reduce((a, r) => a + r.errors, 0)}`,
    );
  void median;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
