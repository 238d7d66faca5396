// Crash consistency: a child process that writes checkpoints, full states and weights is killed with SIGKILL at
// random points; afterwards every file under a final name must load, the next run must resume from the newest
// checkpoint and clear the temporary files the killed one left, and keep-last must never delete the only good
// checkpoint. The same for serve()'s hot reload: its weights file is rewritten by a process that is killed, and
// the server must answer every request, with model A or model B, never a mixture and never an error.
//   node .test-build/reliability/crash.js [--runs 100] [--parts train,serve] [--seed 1] [--max-delay-ms 2500]
import { ChildProcess, spawn } from 'child_process';
import { createHash } from 'crypto';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';

import { readCheckpoint, serve } from '../lib';
import { argValue, formatTable } from '../bench/table';
import { Random } from '../fuzz/mutate';
import { KEEP_LAST, TOTAL_ITERATIONS, newestCheckpoint, weightModels } from './crash-child';

const CHILD = path.join(__dirname, 'crash-child.js');
const TEMP = /\.tmp$/;

interface Child {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Resolves when a line starting with `prefix` arrives. */
  waitFor(prefix: string): Promise<string>;
}

function start(args: string[]): Child {
  const proc = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  let buffer = '',
    stderr = '';
  proc.stdout!.on('data', (d) => {
    buffer += d;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.filter((w) => line.startsWith(w.prefix))) w.resolve(line);
    }
  });
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  const waitFor = (prefix: string) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen) return resolve(seen);
      waiters.push({ prefix, resolve });
      void exited.then((e) =>
        reject(new Error(`the child exited (${e.signal ?? e.code}) before "${prefix}": ${e.stderr}`)),
      );
    });
  return { proc, lines, exited, waitFor };
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function referenceHashes(dir: string): Promise<string[]> {
  const models = await weightModels();
  const hashes = [];
  for (const [i, m] of models.entries()) {
    const file = path.join(dir, `reference-${i}.safetensors`);
    await m.saveWeights(file);
    hashes.push(sha256(await fsp.readFile(file)));
    await fsp.rm(file);
    m.dispose();
  }
  return hashes;
}

interface TrainTally {
  kills: number;
  killsMidWrite: number;
  resumes: number;
  freshStarts: number;
  completed: number;
  filesChecked: number;
  problems: string[];
}

/** What must hold in `dir` after a kill (or an exit): every final-named file complete and consistent. */
async function checkFolder(
  dir: string,
  hashes: string[],
  savedPeriodic: boolean,
  tally: TrainTally,
): Promise<string[]> {
  const files = await fsp.readdir(dir);
  const problem = (p: string) => tally.problems.push(p);
  const periodic = files.filter((f) => /^checkpoint-\d+\.safetensors$/.test(f));
  if (savedPeriodic && periodic.length === 0) problem(`${dir}: a checkpoint was saved, and none is left`);
  if (periodic.length > KEEP_LAST + 1)
    problem(`${dir}: ${periodic.length} periodic checkpoints, keepLast is ${KEEP_LAST}`);
  for (const f of [...periodic, 'last.safetensors', 'best.safetensors'].filter((f) => files.includes(f))) {
    tally.filesChecked++;
    try {
      const c = await readCheckpoint(path.join(dir, f));
      const n = /^checkpoint-(\d+)/.exec(f)?.[1];
      if (n !== undefined && c.state.iteration !== Number(n))
        problem(`${f} holds iteration ${c.state.iteration}, its name says ${n}`);
    } catch (e) {
      problem(`${f} does not load: ${(e as Error).message}`);
    }
  }
  if (files.includes('weights.safetensors')) {
    tally.filesChecked++;
    if (!hashes.includes(sha256(await fsp.readFile(path.join(dir, 'weights.safetensors')))))
      problem('weights.safetensors is neither model A nor model B');
  }
  return files.filter((f) => TEMP.test(f));
}

async function trainPart(runs: number, random: Random, maxDelayMs: number, root: string) {
  const hashes = await referenceHashes(root);
  const tally: TrainTally = {
    kills: 0,
    killsMidWrite: 0,
    resumes: 0,
    freshStarts: 0,
    completed: 0,
    filesChecked: 0,
    problems: [],
  };
  let dir = path.join(root, 'train-0');
  let leftTemps: string[] = [];
  for (let run = 0; run <= runs; run++) {
    const last = run === runs; // the last one is not killed: it must finish the training cleanly
    const expected = await newestCheckpoint(dir);
    const child = start(['train', dir]);
    const began = await child.waitFor(expected ? 'resumed' : 'fresh').catch((e: Error) => e);
    if (began instanceof Error) {
      tally.problems.push(`run ${run}: ${began.message.slice(0, 300)}`);
      break;
    }
    if (expected) {
      tally.resumes++;
      if (began !== `resumed ${expected.iteration}`)
        tally.problems.push(`run ${run}: "${began}", expected ${expected.iteration}`);
    } else tally.freshStarts++;
    // The killed run's temporary files are gone once this run has written its first checkpoint.
    const firstSave = await child.waitFor('saved').catch(() => undefined);
    if (firstSave) {
      const now = await fsp.readdir(dir);
      for (const t of leftTemps) if (now.includes(t)) tally.problems.push(`run ${run}: ${t} was left and not cleared`);
    }
    let exit;
    if (!last) {
      const delay = random.int(maxDelayMs);
      const timer = setTimeout(() => child.proc.kill('SIGKILL'), delay);
      exit = await child.exited;
      clearTimeout(timer);
    } else exit = await child.exited;
    const savedPeriodic = child.lines.some((l) => l.startsWith('saved periodic') || l.startsWith('saved final'));
    const wasSaved = savedPeriodic || (await newestCheckpoint(dir)) !== undefined;
    leftTemps = await checkFolder(dir, hashes, wasSaved, tally);
    if (exit.signal === 'SIGKILL') {
      tally.kills++;
      if (leftTemps.length > 0) tally.killsMidWrite++;
    } else if (exit.code === 0) {
      tally.completed++;
      if (leftTemps.length > 0) tally.problems.push(`run ${run} finished and left ${leftTemps.join(', ')}`);
      const newest = await newestCheckpoint(dir);
      if (newest?.iteration !== TOTAL_ITERATIONS)
        tally.problems.push(`run ${run} finished; its newest checkpoint is ${newest?.iteration}`);
      if (!last) {
        dir = path.join(root, `train-${run + 1}`); // a new training
        leftTemps = [];
      }
    } else {
      tally.problems.push(`run ${run} failed (exit ${exit.code}): ${exit.stderr.slice(-400)}`);
    }
  }
  return tally;
}

interface ServeTally {
  kills: number;
  killsLeavingPartialFile: number;
  requests: number;
  answeredA: number;
  answeredB: number;
  problems: string[];
  reloads: string;
}

async function servePart(runs: number, random: Random, maxDelayMs: number, root: string) {
  const [a, b] = await weightModels();
  const hashes = await referenceHashes(root);
  const file = path.join(root, 'served.safetensors');
  await a.saveWeights(file);
  const pixels = {
    data: new Uint8Array(16 * 16 * 3).map((_, i) => (i * 37) % 256),
    width: 16,
    height: 16,
    channels: 3 as const,
  };
  const [pa, pb] = [await a.predictImage(pixels, { topK: 4 }), await b.predictImage(pixels, { topK: 4 })];
  const same = (got: { label: string; probability: number }[], want: typeof pa) =>
    got.length === want.length &&
    got.every((g, i) => g.label === want[i].label && Math.abs(g.probability - want[i].probability) < 1e-5);
  const server = await serve({ model: file, port: 0, host: '127.0.0.1', watch: true, engine: 'native', maxDelayMs: 0 });
  const tally: ServeTally = {
    kills: 0,
    killsLeavingPartialFile: 0,
    requests: 0,
    answeredA: 0,
    answeredB: 0,
    problems: [],
    reloads: '',
  };
  const body = JSON.stringify({ raw: { ...pixels, data: Buffer.from(pixels.data).toString('base64') }, topK: 4 });
  const ask = async (): Promise<'A' | 'B' | undefined> => {
    tally.requests++;
    const res = await fetch(`${server.url}/v1/predict`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    const json = (await res.json()) as { predictions: { label: string; probability: number }[] };
    if (res.status !== 200) {
      tally.problems.push(`a request answered ${res.status}: ${JSON.stringify(json).slice(0, 200)}`);
      return undefined;
    }
    if (same(json.predictions, pa)) return (tally.answeredA++, 'A');
    if (same(json.predictions, pb)) return (tally.answeredB++, 'B');
    tally.problems.push(`an answer matched neither A nor B: ${JSON.stringify(json.predictions)}`);
    return undefined;
  };
  // Clients keep asking all along: no answer may fail while the file is rewritten under the server.
  let asking = true;
  const clients = Array.from({ length: 2 }, async () => {
    while (asking) await ask();
  });
  try {
    for (let run = 0; run < runs; run++) {
      const mode = run % 2 === 0 ? 'atomic' : 'truncate';
      const child = start(['weights', file, mode]);
      // Killed at a random point after its first complete write (one takes a few milliseconds).
      const wrote = await child.waitFor('wrote').catch((e: Error) => e);
      if (wrote instanceof Error) {
        tally.problems.push(`writer ${run}: ${wrote.message.slice(0, 300)}`);
        continue;
      }
      const timer = setTimeout(() => child.proc.kill('SIGKILL'), random.int(maxDelayMs));
      const exit = await child.exited;
      clearTimeout(timer);
      if (exit.signal !== 'SIGKILL') {
        tally.problems.push(`writer ${run} exited (${exit.code}): ${exit.stderr.slice(-300)}`);
        continue;
      }
      tally.kills++;
      const complete = hashes.indexOf(sha256(await fsp.readFile(file)));
      if (complete < 0) tally.killsLeavingPartialFile++;
      if (mode === 'atomic' && complete < 0) tally.problems.push(`run ${run}: the atomic writer left a partial file`);
      await new Promise((r) => setTimeout(r, 700)); // the watcher's 200 ms debounce and a reload
      const served = await ask();
      // A complete file is what serves; after a partial one, the last complete model keeps serving.
      if (complete >= 0 && served !== undefined && served !== 'AB'[complete])
        tally.problems.push(`run ${run}: the file holds model ${'AB'[complete]}, the server answers with ${served}`);
      const ready = await fetch(`${server.url}/readyz`);
      if (ready.status !== 200) tally.problems.push(`run ${run}: /readyz answered ${ready.status}`);
    }
  } finally {
    asking = false;
    await Promise.all(clients);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    tally.reloads = [...metrics.matchAll(/resnet_model_reloads_total\{result="(\w+)"\} (\d+)/g)]
      .map((m) => `${m[1]} ${m[2]}`)
      .join(', ');
    await server.close();
  }
  return tally;
}

async function main(): Promise<void> {
  const runs = Number(argValue('runs', '100'));
  const parts = argValue('parts', 'train,serve').split(',');
  const random = new Random(Number(argValue('seed', '1')));
  const maxDelayMs = Number(argValue('max-delay-ms', '2500'));
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'resnet-torch-crash-'));
  const started = performance.now();
  let failed = false;
  try {
    // One table per part: its counts, then the problems found (at most 20 shown).
    const report = (headers: string[], counts: (string | number)[], problems: string[]) => {
      console.log(formatTable([...headers, 'problems'], [[`${runs} runs`, ...counts, problems.length]]));
      for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
      failed ||= problems.length > 0;
    };
    if (parts.includes('train')) {
      const t = await trainPart(runs, random, maxDelayMs, root);
      report(
        ['checkpoints, weights', 'kills', 'mid-write', 'resumed', 'fresh', 'finished', 'files checked'],
        [t.kills, t.killsMidWrite, t.resumes, t.freshStarts, t.completed, t.filesChecked],
        t.problems,
      );
    }
    if (parts.includes('serve')) {
      const s = await servePart(runs, random, maxDelayMs, root);
      report(
        ['serve hot reload', 'kills', 'partial file', 'requests', 'model A', 'model B', 'reloads'],
        [s.kills, s.killsLeavingPartialFile, s.requests, s.answeredA, s.answeredB, s.reloads],
        s.problems,
      );
    }
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
  console.log(`${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (failed) process.exitCode = 1;
}

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
