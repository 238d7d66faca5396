// The process crash.ts kills. Two roles:
//   train <dir>: trains (or resumes from the newest checkpoint in <dir>), writing a full checkpoint every
//     iteration, the best one at each evaluation, and weights.safetensors (model A, then B, over and over);
//   weights <file> <atomic|truncate>: writes model A's weights, then B's, over <file>, over and over: atomically
//     (saveWeights), or in place as `cp` does (truncate, then write in chunks).
// It reports on stdout, one line each: "fresh", "resumed <iteration>", "saved <kind> <file>", "wrote" (a weights
// file), "done".
import { promises as fsp } from 'fs';
import * as path from 'path';

import { Dataset, Model, createModel, fromArrays, resumeTraining, train } from '../lib';
import type { CheckpointPolicy } from '../lib';
import { syntheticArrays } from '../harness/synthetic';

export const TOTAL_ITERATIONS = 96;
export const KEEP_LAST = 2;
const SHAPE: [number, number, number] = [3, 16, 16];

/** The two models whose weights the writers alternate: any complete weights file is exactly one of them. */
export function weightModels(): Promise<Model[]> {
  return Promise.all([1, 2].map((seed) => createModel({ arch: 'cifar-resnet20', inChannels: 3, numClasses: 4, seed })));
}

/** Newest periodic checkpoint in `dir` (checkpoint-<iteration>.safetensors), if any. */
export async function newestCheckpoint(dir: string): Promise<{ file: string; iteration: number } | undefined> {
  const found = (await fsp.readdir(dir).catch(() => [] as string[]))
    .map((f) => /^checkpoint-(\d+)\.safetensors$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: path.join(dir, m[0]), iteration: Number(m[1]) }))
    .sort((a, b) => b.iteration - a.iteration);
  return found[0];
}

/** Until `stop()` says so (checked between writes, so a normal exit never cuts one short). */
async function writeWeights(file: string, models: Model[], mode: 'atomic' | 'truncate', stop = () => false) {
  const bytes = mode === 'truncate' ? await Promise.all(models.map((m, i) => savedBytes(m, `${file}.ref${i}`))) : [];
  for (let i = 0; !stop(); i = 1 - i) {
    if (mode === 'atomic') {
      await models[i].saveWeights(file);
    } else {
      const handle = await fsp.open(file, 'w');
      for (let at = 0; at < bytes[i].length; at += 64 * 1024) await handle.write(bytes[i].subarray(at, at + 64 * 1024));
      await handle.close();
    }
    process.stdout.write('wrote\n');
  }
}

async function savedBytes(model: Model, file: string): Promise<Buffer> {
  await model.saveWeights(file);
  const bytes = await fsp.readFile(file);
  await fsp.rm(file);
  return bytes;
}

async function trainRole(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const data: Dataset = await fromArrays(syntheticArrays(128, SHAPE, 4, 1));
  const validation = await fromArrays(syntheticArrays(32, SHAPE, 4, 2));
  const policy: CheckpointPolicy = {
    dir,
    everyIterations: 1,
    keepLast: KEEP_LAST,
    keepBest: 'val_error',
    onSaved: (file, kind) => process.stdout.write(`saved ${kind} ${path.basename(file)}\n`),
  };
  const newest = await newestCheckpoint(dir);
  let run;
  if (newest) {
    ({ run } = await resumeTraining(newest.file, data, { validation, checkpoint: policy }));
    process.stdout.write(`resumed ${newest.iteration}\n`);
  } else {
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 3, numClasses: 4, seed: 3 });
    run = train(model, data, {
      iterations: TOTAL_ITERATIONS,
      batchSize: 16,
      evalEvery: { iterations: 4 },
      validation,
      checkpoint: policy,
    });
    process.stdout.write('fresh\n');
  }
  let finished = false;
  const writing = writeWeights(path.join(dir, 'weights.safetensors'), await weightModels(), 'atomic', () => finished);
  await run;
  finished = true;
  await writing;
  process.stdout.write('done\n');
  process.exit(0);
}

if (require.main === module) {
  const [role, target, mode] = process.argv.slice(2);
  const work =
    role === 'train'
      ? trainRole(target)
      : weightModels().then((models) => writeWeights(target, models, mode as 'atomic' | 'truncate'));
  work.catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
