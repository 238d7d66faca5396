// The parsers under random and structured corruption: each case must end in a typed error that names the file
// (or the field), or in a correct load; never another exception, an abort, a hang or unbounded memory, and never a
// load that differs from the original where the format carries a checksum (gzip, zip).
//   node .test-build/fuzz/fuzz.js [--targets idx,idx-gz,cifar,safetensors,checkpoint,pth,config,image]
//     [--cases 10000] [--seed 1] [--timeout-ms 10000] [--max-rss-mb 1024]
// Each target runs in its own child process: the parent kills a child that stops reporting progress (a hang) or
// grows past the memory cap, and names the case; a crash names it too. Inputs that fail are kept in fuzz/found/.
import { spawn } from 'child_process';
import { promises as fsp, readFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';

import { ResnetError } from '../lib/errors';
import { argValue, formatTable } from '../bench/table';
import { Random, mutate } from './mutate';
import { TARGETS, Target } from './targets';

interface Summary {
  target: string;
  cases: number;
  loaded: number;
  errors: Record<string, number>;
  bugs: { index: number; problem: string }[];
  maxRssMb: number;
  seconds: number;
}

async function child(name: string, cases: number, seed: number): Promise<void> {
  const target: Target = TARGETS[name];
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `resnet-torch-fuzz-${name}-`));
  const seeds = await target.seeds(dir);
  const random = new Random(seed * 1_000_003 + [...name].reduce((a, c) => a * 31 + c.charCodeAt(0), 7));
  const summary: Summary = { target: name, cases, loaded: 0, errors: {}, bugs: [], maxRssMb: 0, seconds: 0 };
  const started = performance.now();
  const found = path.join(__dirname, '..', '..', 'fuzz', 'found');
  for (let i = 0; i < cases; i++) {
    process.stdout.write(`${i}\n`); // progress, for the parent's hang watchdog
    const base = seeds[random.int(seeds.length)];
    const input = i < (target.structured?.length ?? 0) ? target.structured![i] : mutate(base.bytes, random, seeds);
    const file = path.join(dir, `case${target.extension}`);
    let problem: string | undefined;
    try {
      await fsp.writeFile(file, input);
      const result = await target.load(file, input);
      summary.loaded++;
      problem = target.verify?.(result, base, input);
    } catch (e) {
      if (e instanceof ResnetError && target.names(e, file)) summary.errors[e.name] = (summary.errors[e.name] ?? 0) + 1;
      else problem = `${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.message ?? e).slice(0, 200)}`;
    }
    if (problem) {
      summary.bugs.push({ index: i, problem });
      await fsp.mkdir(found, { recursive: true });
      await fsp.writeFile(path.join(found, `${name}-seed${seed}-case${i}${target.extension}`), input);
    }
    if (i % 200 === 0) summary.maxRssMb = Math.max(summary.maxRssMb, process.memoryUsage().rss / 2 ** 20);
  }
  summary.seconds = (performance.now() - started) / 1000;
  summary.maxRssMb = Math.max(summary.maxRssMb, process.memoryUsage().rss / 2 ** 20);
  await fsp.rm(dir, { recursive: true, force: true });
  process.stdout.write(`SUMMARY ${JSON.stringify(summary)}\n`);
}

function runChild(
  name: string,
  cases: number,
  seed: number,
  timeoutMs: number,
  maxRssMb: number,
): Promise<Summary & { fatal?: string }> {
  return new Promise((resolve) => {
    const proc = spawn(
      process.execPath,
      [__filename, '--child', name, '--cases', String(cases), '--seed', String(seed)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let last = -1,
      buffer = '',
      stderr = '',
      fatal: string | undefined,
      summary: Summary | undefined,
      peak = 0;
    let watchdog = setTimeout(() => kill(`hang: no progress for ${timeoutMs} ms`), timeoutMs);
    const kill = (why: string) => {
      fatal = `${why} at case ${last}`;
      proc.kill('SIGKILL');
    };
    const rss = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
        const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peak = Math.max(peak, kb / 1024);
        if (kb / 1024 > maxRssMb) kill(`memory: ${Math.round(kb / 1024)} MiB is over the cap of ${maxRssMb} MiB`);
      } catch {
        // the process has ended
      }
    }, 100);
    proc.stdout.on('data', (d) => {
      buffer += d;
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('SUMMARY ')) summary = JSON.parse(line.slice(8));
        else last = Number(line);
      }
      clearTimeout(watchdog);
      watchdog = setTimeout(() => kill(`hang: no progress for ${timeoutMs} ms`), timeoutMs);
    });
    proc.stderr.on('data', (d) => (stderr += d));
    proc.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      clearInterval(rss);
      if (!summary && !fatal)
        fatal = `the process died (${signal ?? `exit ${code}`}) at case ${last}: ${stderr.slice(-300)}`;
      const s = summary ?? { target: name, cases, loaded: 0, errors: {}, bugs: [], maxRssMb: peak, seconds: 0 };
      resolve({ ...s, maxRssMb: Math.max(s.maxRssMb, peak), ...(fatal ? { fatal } : {}) });
    });
  });
}

async function main(): Promise<void> {
  const childTarget = argValue('child', '');
  const cases = Number(argValue('cases', '10000'));
  const seed = Number(argValue('seed', '1'));
  if (childTarget) return child(childTarget, cases, seed);
  const targets = argValue('targets', Object.keys(TARGETS).join(',')).split(',');
  for (const t of targets)
    if (!TARGETS[t]) throw new Error(`unknown target ${t}: one of ${Object.keys(TARGETS).join(', ')}`);
  const timeoutMs = Number(argValue('timeout-ms', '10000'));
  const maxRssMb = Number(argValue('max-rss-mb', '1024'));
  const rows: (string | number)[][] = [];
  let failed = false;
  for (const t of targets) {
    const s = await runChild(t, cases, seed, timeoutMs, maxRssMb);
    const errors = Object.entries(s.errors)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    rows.push([
      t,
      s.cases,
      s.loaded,
      errors || '-',
      s.bugs.length,
      s.fatal ?? '-',
      Math.round(s.maxRssMb),
      s.seconds.toFixed(1),
    ]);
    for (const b of s.bugs.slice(0, 5)) console.error(`  ${t} case ${b.index}: ${b.problem}`);
    if (s.bugs.length > 0 || s.fatal) failed = true;
    console.error(`  ${t}: done${s.fatal ? ` (${s.fatal})` : ''}`);
  }
  console.log(`\nFuzzing, seed ${seed}, ${cases} cases per target (${new Date().toISOString().slice(0, 10)})`);
  console.log(
    formatTable(['target', 'cases', 'loaded', 'typed errors', 'bugs', 'crash/hang/memory', 'max RSS MiB', 's'], rows),
  );
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
