// train() and resumeTraining(): a run (lib/train/run.ts) with an optional checkpoint policy, and a run
// continued from a checkpoint.
import * as fs from 'fs';
import * as path from 'path';

import type { Dataset } from '../datasets/dataset';
import type { StreamingDataset } from '../datasets/image-folder';
import { CheckpointError, ValidationError } from '../errors';
import { StoredTensor, toFloatValues, typedArrayOf } from '../io/safetensors';
import { applyState } from '../io/weights';
import type { Logger } from './loggers';
import type { Model } from '../model/model';
import type { NativeResumeState } from '../native';
import { differingFields, isPlainObject } from '../validate';
import { Checkpoint, loadCheckpoint, readCheckpoint, storableOptions } from './checkpoint';
import { CheckpointWriter } from './checkpoint-writer';
import type { DistributedOptions } from './options/distributed';
import { ProgressEvent, TrainOptions } from './options';
import { CheckpointPolicy, parseCheckpointPolicy } from './options/checkpoint';
import { ResolvedRun, TrainData, resolveRun } from './resolve';
import { StateHandlers, TrainingRun, startRun } from './run';

function checkSameData(file: string, stored: Checkpoint['data'], data: TrainData): void {
  if (!stored) return;
  if (
    stored.length !== data.length ||
    stored.numClasses !== data.numClasses ||
    stored.shape.some((v, i) => v !== data.shape[i])
  )
    throw new CheckpointError(
      file,
      `was trained on ${stored.name} (${stored.length} images of [${stored.shape.join(', ')}], ${stored.numClasses} classes); ` +
        `the data given is ${data.name} (${data.length} images of [${data.shape.join(', ')}], ${data.numClasses} classes)`,
    );
}

/**
 * Every check train() makes of its options before it starts, without starting anything: a caller that prepares
 * files for a run (the CLI's run folder) refuses bad options before it creates any. Throws ValidationError naming
 * the field.
 */
export async function checkTraining(
  model: Model,
  data: TrainData,
  options: TrainOptions,
  policy: CheckpointPolicy | undefined,
): Promise<void> {
  await resolveRun(model, data, options, { policy: parseCheckpointPolicy(policy) });
}

/** The writer of a run's checkpoints, with what every checkpoint records of the run. */
function checkpointWriter(
  p: CheckpointPolicy,
  model: Model,
  data: TrainData,
  options: TrainOptions,
  resolved: ResolvedRun,
  history: ProgressEvent[],
  cancel: () => void,
): CheckpointWriter {
  const context = {
    model,
    options,
    totalIterations: resolved.totalIterations,
    history,
    preprocessing: resolved.preprocessing,
    data,
    extra: p.metadata ?? {},
    worldSize: resolved.group.worldSize,
  };
  return new CheckpointWriter(p, context, cancel);
}

/** @internal train() with a checkpoint policy and optionally a resume state. */
export function trainWithCheckpoints(
  model: Model,
  data: TrainData,
  options: TrainOptions,
  policy: CheckpointPolicy | undefined,
  resume?: { checkpoint: Checkpoint; state: NativeResumeState },
): TrainingRun {
  let inner: TrainingRun | undefined;
  let cancelled = false;
  return new TrainingRun(async (emit, setCancel) => {
    setCancel(() => {
      cancelled = true;
      inner?.cancel();
    });
    const p = parseCheckpointPolicy(policy);
    if (!resume && p?.resume === 'last') resume = await lastCheckpoint(p.dir, model, data, options);
    const resolved = await resolveRun(model, data, options, { resume: resume?.state, policy: p });
    const { group } = resolved;
    const history: ProgressEvent[] = [...(resume?.checkpoint.history ?? [])];
    const writtenBy = resume?.checkpoint.state.worldSize ?? 1;
    if (resume && writtenBy !== group.worldSize)
      process.emitWarning(
        `${resume.checkpoint.file} was written by a run of ${writtenBy} rank(s), resumed with ${group.worldSize}: ` +
          'the data order from here on differs from the interrupted run',
        'ResnetTorchWarning',
      );
    // In a distributed run rank 0 writes the checkpoints (every rank holds the same weights); any rank resumes.
    const writer =
      p && group.rank === 0
        ? checkpointWriter(p, model, data, options, resolved, history, () => inner?.cancel())
        : undefined;
    await writer?.prepare(history);
    const handlers: StateHandlers = writer
      ? {
          onState: (state, event) => writer.during(state, event),
          onFinalState: (state, aborted) => writer.atEnd(state, aborted),
        }
      : {};
    const reports = group.rank === 0 || group.progressOnAllRanks;
    const opened: Logger[] = []; // rank 0 logs, as it writes the checkpoints
    try {
      for (const l of group.rank === 0 ? (options.loggers ?? []) : []) {
        await l.open({ resumedAt: resume?.checkpoint.state.iteration });
        opened.push(l);
      }
      inner = startRun(
        model,
        data,
        {
          ...options,
          onProgress: (e) => {
            if (e.kind === 'epoch' || e.kind === 'evaluation') history.push(e);
            for (const l of opened) l.write(e); // a logger that throws stops the run, as onProgress does
            if (!reports) return;
            emit(e);
            options.onProgress?.(e);
          },
        },
        resolved,
        handlers,
      );
      if (cancelled) inner.cancel();
      const result = await inner.done;
      await writer?.flush();
      const from = resume && { file: resume.checkpoint.file, iteration: resume.checkpoint.state.iteration };
      return { ...result, history, ...(from ? { resumedFrom: from } : {}) };
    } catch (e) {
      await writer?.flush().catch(() => undefined);
      throw e;
    } finally {
      for (const l of opened) await l.close().catch(() => undefined);
    }
  });
}

/** resumeTraining()'s options: what a checkpoint does not store (data, signal, callbacks, loggers, policy). */
export interface ResumeOptions {
  /** Evaluated as the run goes (checked against the checkpoint's data). */
  validation?: Dataset | StreamingDataset;
  /** Evaluated as the run goes. */
  test?: Dataset | StreamingDataset;
  /** Stops the run (it resolves with aborted: true). */
  signal?: AbortSignal;
  /** Each progress event, on the main thread (progressBar() is one). */
  onProgress?: (event: ProgressEvent) => void;
  /** As train()'s (a checkpoint does not store them): what they logged after the checkpoint is dropped. */
  loggers?: Logger[];
  /** Where the resumed run writes its checkpoints. */
  checkpoint?: CheckpointPolicy;
  /** Where the model goes (default: the CPU). */
  device?: string;
  /** As train()'s: by default the environment's process group. */
  distributed?: DistributedOptions | false;
}

/** Continues the run a checkpoint was taken from; with the same data it ends bit-identical (on the CPU). */
export async function resumeTraining(
  file: string,
  data: TrainData,
  extra: ResumeOptions = {},
): Promise<{
  /** The model, with the checkpoint's weights. */
  model: Model;
  /** The resumed run. */
  run: TrainingRun;
  /** The checkpoint resumed from. */
  checkpoint: Checkpoint;
}> {
  const { model, checkpoint } = await loadCheckpoint(file, { device: extra.device });
  checkSameData(file, checkpoint.data, data);
  const options: TrainOptions = {
    ...checkpoint.options,
    validation: extra.validation,
    test: extra.test,
    signal: extra.signal,
    onProgress: extra.onProgress,
    loggers: extra.loggers,
    distributed: extra.distributed,
  };
  for (const k of ['validation', 'test', 'signal', 'onProgress', 'loggers', 'distributed'] as const)
    if (options[k] === undefined) delete options[k];
  const run = trainWithCheckpoints(model, data, options, extra.checkpoint, {
    checkpoint,
    state: resumeState(checkpoint),
  });
  return { model, run, checkpoint };
}

/** The native trainer's starting point from a checkpoint. */
function resumeState(checkpoint: Checkpoint): NativeResumeState {
  const entries = (tensors: Map<string, StoredTensor>) =>
    [...tensors].map(([name, t]) => ({
      name,
      shape: t.shape,
      data: t.dtype === 'I64' ? (typedArrayOf(t) as never) : toFloatValues(t),
    }));
  const st = checkpoint.state;
  return {
    startIteration: st.iteration,
    optimizerSteps: st.optimizerSteps,
    lossScale: st.lossScale,
    schedule: st.schedule,
    optimizer: entries(checkpoint.optimizer),
    epochMeter: st.epochMeter,
    earlyStop: st.earlyStop,
    ema: entries(checkpoint.ema),
  };
}

/**
 * checkpoint.resume 'last': the newest whole checkpoint of the policy's folder (last.safetensors, written
 * atomically after every periodic, final and cancel checkpoint), checked against this run (model, options, data)
 * and its weights put into `model`; undefined where the folder holds none (a fresh start).
 */
async function lastCheckpoint(
  dir: string,
  model: Model,
  data: TrainData,
  options: TrainOptions,
): Promise<{ checkpoint: Checkpoint; state: NativeResumeState } | undefined> {
  const file = path.join(dir, 'last.safetensors');
  if (!fs.existsSync(file)) return undefined;
  const checkpoint = await readCheckpoint(file);
  const refuse = (what: string) =>
    new CheckpointError(
      file,
      `checkpoint.resume 'last' continues the run of this checkpoint, and ${what}: give this run another ` +
        'checkpoint.dir, or remove the folder to start over',
    );
  const { device: _d, seed: _s, ...spec } = { ...model.spec, classNames: model.classNames };
  const { device: _sd, seed: _ss, ...stored } = checkpoint.spec as typeof model.spec;
  const specDiffers = differingFields(spec, stored);
  if (specDiffers.length) throw refuse(`the model given differs from its model in ${specDiffers.join(', ')}`);
  const given = storableOptions(options);
  const optionsDiffer = differingFields(given, checkpoint.options);
  if (optionsDiffer.length) throw refuse(`the options given differ from its run's in ${optionsDiffer.join(', ')}`);
  checkSameData(file, checkpoint.data, data);
  await applyState(model.handle(), checkpoint.model, file, { strict: true });
  return { checkpoint, state: resumeState(checkpoint) };
}

/**
 * Trains `model` on `data` on a native thread, writing checkpoints if `options.checkpoint` asks for them.
 * Resolves (never rejects) with `aborted: true` when the signal stops it: the model and optimizer are then
 * as after the last complete iteration (and, by default, a checkpoint of that state is on disk).
 */
export function train(
  model: Model,
  data: TrainData,
  options: TrainOptions & { checkpoint?: CheckpointPolicy },
): TrainingRun {
  if (!isPlainObject(options)) throw new ValidationError('options', options, 'an object');
  const { checkpoint, ...rest } = options as TrainOptions & { checkpoint?: CheckpointPolicy };
  return trainWithCheckpoints(model, data, rest, checkpoint);
}
