// One training run of a config into a run folder: used by `resnet train`, `resnet resume` and each network
// of `resnet experiment`.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { LoadedData, defaultTest, loadDataset } from '../config/data';
import { configYaml, readConfigFile, resolveConfig, storedRunConfig } from '../config/load';
import { RunConfig } from '../config/schema';
import { ValidationError } from '../errors';
import { differingFields } from '../validate';
import { info, packageVersion } from '../info';
import type { EvalMetrics } from '../eval-metrics';
import { Model, createModel } from '../model/model';
import { readCheckpoint } from '../train/checkpoint';
import type { ProgressEvent } from '../train/options';
import { rankEpochLength } from '../train/options/length';
import type { TrainResult } from '../train/result';
import { processGroup, rankDevice, torchrunJob } from '../train/options/distributed';
import type { EarlyStop } from '../train/options/evaluation';
import { checkTraining, resumeTraining, train } from '../train/train';
import { Reporter } from './progress';
import { RunFolder } from './run-folder';

export interface RunSummary {
  name: string;
  arch?: string;
  dir: string;
  aborted: boolean;
  iteration: number;
  totalIterations: number;
  epochs: number;
  elapsedSeconds: number;
  imagesPerSecond: number;
  parameters: number;
  final: { val?: Metrics; test?: Metrics };
  best: { val?: Metrics & { iteration: number }; test?: Metrics & { iteration: number } };
  finalTrainError?: number;
  /** train.earlyStopping stopped the run. */
  earlyStopped?: EarlyStop;
  versions: { package: string; libtorch: string };
  files: Record<string, string>;
}

interface Metrics {
  accuracy: number;
  error: number;
  top5Error: number;
  loss: number;
}

const metrics = (m: EvalMetrics): Metrics => ({
  accuracy: m.accuracy,
  error: m.top1Error,
  top5Error: m.top5Error,
  loss: m.loss,
});

export interface SessionData {
  train: LoadedData;
  validation?: LoadedData;
  test?: LoadedData;
}

export async function loadRunData(config: RunConfig): Promise<SessionData> {
  const seed = config.seed ?? 0;
  let train = await loadDataset(config.data.train, 'data.train', seed);
  let validation: LoadedData | undefined;
  const v = config.data.validation;
  if (v && 'fromTrain' in v) {
    const parts = await train.split({ validation: v.fromTrain, seed });
    train = parts.train;
    validation = parts.validation;
  } else if (v) {
    validation = await loadDataset(v, 'data.validation', seed);
  }
  const testConfig = config.data.test === false ? undefined : (config.data.test ?? defaultTest(config.data.train));
  const test = testConfig ? await loadDataset(testConfig, 'data.test', seed) : undefined;
  return { train, validation, test };
}

export interface SessionOptions {
  reporter: Reporter;
  signal?: AbortSignal;
  /** Output folder of this run (default: <config.output.dir or runs>/<name>-<timestamp>). */
  dir?: string;
  device?: string;
  data?: SessionData;
}

function policy(config: RunConfig, folder: RunFolder, yaml: string) {
  const c = config.checkpoint ?? {};
  return {
    dir: folder.checkpoints,
    everyIterations: c.everyIterations,
    everyEpochs: c.everyIterations ? undefined : (c.everyEpochs ?? 1),
    keepLast: c.keepLast,
    keepBest: c.keepBest ?? (config.data.validation ? ('val_error' as const) : undefined),
    metadata: { config: yaml },
  };
}

/** The lowest-error evaluation of each set over the run, the final one included. */
function bestEvaluations(result: TrainResult): RunSummary['best'] {
  const best: RunSummary['best'] = {};
  for (const split of ['val', 'test'] as const) {
    for (const e of result.history) {
      const m = e.evaluations?.[split];
      if (m && (!best[split] || m.top1Error < best[split]!.error))
        best[split] = { ...metrics(m), iteration: e.iteration };
    }
    const last = result.evaluations[split];
    if (last && (!best[split] || last.top1Error < best[split]!.error))
      best[split] = { ...metrics(last), iteration: result.iteration };
  }
  return best;
}

async function finish(
  model: Model,
  result: TrainResult,
  config: RunConfig,
  folder: RunFolder,
  reporter: Reporter,
  perEpoch: number,
  priorSeconds = 0,
): Promise<RunSummary> {
  await model.saveWeights(folder.weights);
  if (result.ema) {
    await result.ema.saveWeights(path.join(folder.dir, 'weights-ema.safetensors')); // train.ema
    result.ema.dispose();
  }
  // The run's last evaluation, recorded like the others so that the curves reach the end.
  if (
    Object.keys(result.evaluations).length > 0 &&
    !result.history.some((e) => e.iteration === result.iteration && e.evaluations)
  )
    folder.record({
      kind: 'evaluation',
      iteration: result.iteration,
      epoch: result.epoch,
      totalIterations: result.totalIterations,
      iterationsPerEpoch: perEpoch,
      lr: result.lr,
      etaSeconds: 0,
      elapsedSeconds: priorSeconds + result.elapsedSeconds,
      evaluations: result.evaluations,
    });
  await folder.closeMetrics();
  const plot = await folder.plot(
    `${config.name}: training (dashed) and ${result.evaluations.test ? 'test' : 'validation'} error`,
  );
  const best = bestEvaluations(result);
  const recorded = folder.events();
  const trainEvents =
    recorded.filter((e) => e.kind === 'epoch').length > 0
      ? recorded.filter((e) => e.kind === 'epoch')
      : recorded.filter((e) => e.kind === 'iteration');
  const summary: RunSummary = {
    name: config.name,
    ...(config.model.arch ? { arch: config.model.arch } : {}),
    dir: folder.dir,
    aborted: result.aborted,
    iteration: result.iteration,
    totalIterations: result.totalIterations,
    epochs: result.epoch,
    elapsedSeconds: priorSeconds + result.elapsedSeconds,
    imagesPerSecond: result.imagesPerSecond,
    parameters: model.parameterCount(),
    final: {
      ...(result.evaluations.val ? { val: metrics(result.evaluations.val) } : {}),
      ...(result.evaluations.test ? { test: metrics(result.evaluations.test) } : {}),
    },
    best,
    ...(trainEvents.length ? { finalTrainError: trainEvents[trainEvents.length - 1].trainError } : {}),
    ...(result.earlyStopped ? { earlyStopped: result.earlyStopped } : {}),
    versions: { package: packageVersion(), libtorch: info().libtorchVersion },
    files: {
      config: folder.config,
      metricsJsonl: folder.metricsJsonl,
      metricsCsv: folder.metricsCsv,
      weights: folder.weights,
      checkpoints: folder.checkpoints,
      plotSvg: plot.svg,
      plotPng: plot.png,
      ...(result.ema ? { weightsEma: path.join(folder.dir, 'weights-ema.safetensors') } : {}),
    },
  };
  fs.writeFileSync(folder.summary, `${JSON.stringify(summary, null, 2)}\n`);
  reporter.json({ type: 'summary', ...summary });
  return summary;
}

/** Trains a config from scratch into a new run folder. In a distributed run rank 0 writes the run folder; the other
 *  ranks train into a scratch folder that is removed when they finish. */
export async function trainConfig(config: RunConfig, options: SessionOptions): Promise<RunSummary> {
  const { rank } = processGroup();
  const job = options.dir ? undefined : torchrunJob();
  if (job) {
    // Under torchrun the run folder is the job's: a restart (--max-restarts) of the same job finds it and goes on from
    // its newest checkpoint; every rank looks there (another host sees it where the output folder is shared).
    const folder = torchrunFolder(config, job.runId);
    if (fs.existsSync(path.join(folder.checkpoints, 'last.safetensors'))) {
      checkSameConfig(folder, config, job.runId);
      return resumeFolder(folder.dir, options);
    }
    if (rank === 0) return trainInto(config, { ...options, dir: folder.dir });
  }
  if (rank === 0) return trainInto(config, options);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `resnet-torch-rank${rank}-`));
  try {
    return await trainInto(config, { ...options, dir: scratch });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** The run folder of torchrun's job `runId`: `<output dir>/<name>-torchrun-<runId>`. */
function torchrunFolder(config: RunConfig, runId: string): RunFolder {
  const id = runId.replace(/[^A-Za-z0-9._-]/g, '_');
  return new RunFolder(path.join(config.output?.dir ?? 'runs', `${config.name}-torchrun-${id}`));
}

/** A torchrun job's run folder holds the run of this config, else a ValidationError naming what differs. */
function checkSameConfig(folder: RunFolder, config: RunConfig, runId: string): void {
  const file = path.join(folder.dir, 'config.json');
  let stored: object = {};
  try {
    stored = JSON.parse(fs.readFileSync(file, 'utf8')) as object;
  } catch (e) {
    throw new ValidationError('run', folder.dir, 'a run folder', `${file}: cannot be read (${(e as Error).message})`);
  }
  const differ = differingFields(JSON.parse(JSON.stringify(config)) as object, stored);
  if (differ.length)
    throw new ValidationError(
      'config',
      differ.join(', '),
      `the config of ${folder.dir}`,
      `${folder.dir} holds torchrun job ${runId}'s run of another config (${differ.join(', ')} differ): ` +
        'give torchrun another --rdzv-id, or another config name',
    );
}

async function trainInto(config: RunConfig, options: SessionOptions): Promise<RunSummary> {
  const { reporter } = options;
  const data = options.data ?? (await loadRunData(config));
  const model = await createModel({
    ...config.model,
    inChannels: config.model.inChannels ?? data.train.shape[0],
    numClasses: config.model.numClasses ?? data.train.numClasses,
    classNames:
      (config.model.numClasses ?? data.train.numClasses) === data.train.numClasses ? data.train.classNames : undefined,
    device: rankDevice(options.device ?? config.model.device ?? 'cpu'),
    seed: config.seed ?? 0,
  });
  const folder = options.dir ? new RunFolder(options.dir) : RunFolder.choose(config.output?.dir ?? 'runs', config.name);
  const yaml = configYaml(config);
  const trainOptions = {
    ...structuredClone(config.train as object),
    seed: config.train.seed ?? config.seed ?? 0,
    validation: data.validation,
    test: data.test,
    signal: options.signal,
  };
  // Every option checked before the run folder exists: a refused config leaves nothing behind.
  try {
    await checkTraining(model, data.train, trainOptions, policy(config, folder, yaml));
  } catch (e) {
    model.dispose();
    throw e;
  }
  fs.mkdirSync(folder.dir, { recursive: true });
  await folder.writeConfig(config);
  await folder.startMetrics();
  reporter.line(`run folder: ${folder.dir}`);
  reporter.line(
    `model: ${config.model.arch ?? 'custom'}, ${model.parameterCount().toLocaleString('en-US')} parameters, on ${model.device}; ` +
      `data: ${data.train.name} (${data.train.length} images of [${data.train.shape.join(', ')}])` +
      `${data.validation ? `, validation ${data.validation.length}` : ''}${data.test ? `, test ${data.test.length}` : ''}`,
  );
  const perEpoch = epochLength(config, data.train.length);
  const run = train(model, data.train, {
    ...trainOptions,
    checkpoint: policy(config, folder, yaml),
    onProgress: (e: ProgressEvent) => {
      folder.record(e);
      reporter.event(e, perEpoch);
    },
  });
  try {
    return await finish(model, await run, config, folder, reporter, perEpoch);
  } finally {
    model.dispose();
  }
}

/** Iterations per epoch as the run counts them (the reporter's epoch numbers and ETA): one rank's share of the data. */
function epochLength(config: RunConfig, length: number): number {
  return Math.max(1, rankEpochLength(config.train, length, processGroup().worldSize));
}

interface ResumePoint {
  /** The checkpoint to resume from. */
  last: string;
  config: RunConfig;
  /** The run folder it belongs to (undefined: none exists and `create` was false). */
  folder?: RunFolder;
}

/** Where `resnet resume TARGET` starts: a run folder's last checkpoint, or a checkpoint file (with its run folder,
 *  or a new one when `create`). */
async function resumePoint(target: string, create: boolean): Promise<ResumePoint> {
  if (fs.existsSync(target) && fs.statSync(target).isFile()) {
    const config = storedRunConfig(await readCheckpoint(target));
    if (!config)
      throw new ValidationError(
        'checkpoint',
        target,
        'a checkpoint written by the CLI',
        `${target}: holds no run configuration; resume it with the API (resumeTraining)`,
      );
    const home = path.dirname(path.dirname(path.resolve(target)));
    if (fs.existsSync(path.join(home, 'config.yaml'))) return { last: target, config, folder: new RunFolder(home) };
    if (!create) return { last: target, config };
    const folder = await RunFolder.create(config.output?.dir ?? 'runs', config.name);
    await folder.writeConfig(config);
    return { last: target, config, folder };
  }
  const folder = new RunFolder(target);
  if (!fs.existsSync(folder.config))
    throw new ValidationError(
      'run',
      target,
      'a run folder',
      `${target}: not a run folder (no config.yaml) and not a checkpoint file`,
    );
  const config = resolveConfig(await readConfigFile(folder.config));
  const last = path.join(folder.checkpoints, 'last.safetensors');
  if (!fs.existsSync(last))
    throw new ValidationError(
      'run',
      target,
      'a run with a checkpoint',
      `${target}: no checkpoint to resume from (checkpoints/last.safetensors)`,
    );
  return { last, config, folder };
}

/** Continues a run from its run folder (its last checkpoint) or from a checkpoint file. In a distributed run rank 0
 *  goes on in the run folder; the other ranks read the same checkpoint and write into a scratch folder. */
export async function resumeFolder(target: string, options: SessionOptions): Promise<RunSummary> {
  const { rank } = processGroup();
  const point = await resumePoint(target, rank === 0);
  if (rank === 0) return resumeInto(point.last, point.config, point.folder!, options);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `resnet-torch-rank${rank}-`));
  try {
    const folder = new RunFolder(scratch);
    await folder.writeConfig(point.config);
    return await resumeInto(point.last, point.config, folder, options);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function resumeInto(
  last: string,
  config: RunConfig,
  folder: RunFolder,
  options: SessionOptions,
): Promise<RunSummary> {
  const { reporter } = options;
  const dir = folder.dir;
  const data = options.data ?? (await loadRunData(config));
  const checkpoint = await readCheckpoint(last);
  // Time already spent, so that the run's clock (metrics and summary) goes on from there.
  const priorSeconds = Math.max(
    0,
    ...folder
      .events()
      .filter((e) => e.iteration <= checkpoint.state.iteration)
      .map((e) => e.elapsedSeconds),
  );
  await folder.startMetrics(checkpoint.state.iteration);
  const yaml = fs.readFileSync(folder.config, 'utf8');
  const perEpoch = epochLength(config, data.train.length);
  reporter.line(`resuming ${dir} at iteration ${checkpoint.state.iteration} of ${checkpoint.state.totalIterations}`);
  const { model, run } = await resumeTraining(last, data.train, {
    validation: data.validation,
    test: data.test,
    signal: options.signal,
    device: rankDevice(options.device ?? config.model.device),
    checkpoint: policy(config, folder, yaml),
    onProgress: (e: ProgressEvent) => {
      folder.record({ ...e, elapsedSeconds: priorSeconds + e.elapsedSeconds });
      reporter.event(e, perEpoch);
    },
  });
  try {
    return await finish(model, await run, config, folder, reporter, perEpoch, priorSeconds);
  } finally {
    model.dispose();
  }
}
