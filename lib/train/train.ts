// train() and resumeTraining(): a run (lib/train/run.ts) with an optional checkpoint policy, and a run
// continued from a checkpoint.
import type { Dataset } from '../datasets/dataset';
import type { StreamingDataset } from '../datasets/image-folder';
import { CheckpointError, ValidationError } from '../errors';
import { StoredTensor, toFloatValues, typedArrayOf } from '../io/safetensors';
import type { Logger } from '../loggers';
import type { Model } from '../model/model';
import type { NativeResumeState } from '../native';
import { isPlainObject } from '../validate';
import { Checkpoint, CheckpointPolicy, checkpointPolicySchema, loadCheckpoint } from './checkpoint';
import { CheckpointWriter } from './checkpoint-writer';
import type { DistributedOptions } from './distributed';
import { ProgressEvent, TrainOptions } from './options';
import { RunHooks, TrainData, resolveRun } from './resolve';
import { TrainingRun, startRun } from './run';

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
 * the field; returns what the checks resolved.
 */
export async function checkTraining(
  model: Model,
  data: TrainData,
  options: TrainOptions,
  policy: CheckpointPolicy | undefined,
  hooks: RunHooks = {},
): Promise<{ probe: Awaited<ReturnType<typeof resolveRun>>; policy?: CheckpointPolicy }> {
  const p = policy ? checkpointPolicySchema.parse(policy, 'checkpoint') : undefined;
  if (p?.everyIterations && p.everyEpochs)
    throw new ValidationError('checkpoint.everyEpochs', p.everyEpochs, 'only one of everyIterations and everyEpochs');
  const probe = await resolveRun(model, data, options, hooks);
  const monitored = options.earlyStopping?.monitor.split('_')[0] as 'val' | 'test' | undefined;
  if (monitored && !options[monitored === 'val' ? 'validation' : 'test'])
    throw new ValidationError(
      'earlyStopping.monitor',
      options.earlyStopping!.monitor,
      `a metric of a set the run evaluates`,
      `earlyStopping.monitor: ${options.earlyStopping!.monitor} needs the ${monitored === 'val' ? 'validation' : 'test'} option`,
    );
  return { probe, policy: p };
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
    const hooks: RunHooks = { resume: resume?.state };
    const { probe, policy: p } = await checkTraining(model, data, options, policy, hooks);
    const history: ProgressEvent[] = [...(resume?.checkpoint.history ?? [])];
    const writtenBy = resume?.checkpoint.state.worldSize ?? 1;
    if (resume && writtenBy !== probe.group.worldSize)
      process.emitWarning(
        `${resume.checkpoint.file} was written by a run of ${writtenBy} rank(s), resumed with ${probe.group.worldSize}: ` +
          'the data order from here on differs from the interrupted run',
        'ResnetTorchWarning',
      );
    let writer: CheckpointWriter | undefined;
    // In a distributed run rank 0 writes the checkpoints (every rank holds the same weights); any rank resumes.
    if (p && probe.group.rank === 0) {
      writer = new CheckpointWriter(
        p,
        {
          model,
          options,
          totalIterations: probe.totalIterations,
          history,
          preprocessing: probe.preprocessing,
          data,
          extra: p.metadata ?? {},
          worldSize: probe.group.worldSize,
        },
        () => inner?.cancel(),
      );
      await writer.prepare(history);
      hooks.checkpointEveryIterations =
        p.everyIterations ?? (p.everyEpochs ? p.everyEpochs * probe.iterationsPerEpoch : 0);
      hooks.stateAtEnd = (p.onCancel ?? true) || (p.atEnd ?? true);
      hooks.stateOnEvaluation = p.keepBest !== undefined;
      hooks.onState = (state, event) => writer!.during(state, event);
      hooks.onFinalState = (state, aborted) => writer!.atEnd(state, aborted);
    }
    const resolved = await resolveRun(model, data, options, hooks);
    const reports = resolved.group.rank === 0 || resolved.group.progressOnAllRanks;
    const opened: Logger[] = []; // rank 0 logs, as it writes the checkpoints
    try {
      for (const l of resolved.group.rank === 0 ? (options.loggers ?? []) : []) {
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
        hooks,
      );
      if (cancelled) inner.cancel();
      const result = await inner.done;
      await writer?.flush();
      return { ...result, history };
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
  const entries = (tensors: Map<string, StoredTensor>) =>
    [...tensors].map(([name, t]) => ({
      name,
      shape: t.shape,
      data: t.dtype === 'I64' ? (typedArrayOf(t) as never) : toFloatValues(t),
    }));
  const optimizer = entries(checkpoint.optimizer);
  const st = checkpoint.state;
  const state: NativeResumeState = {
    startIteration: st.iteration,
    optimizerSteps: st.optimizerSteps,
    lossScale: st.lossScale,
    schedule: st.schedule,
    optimizer,
    epochMeter: st.epochMeter,
    earlyStop: st.earlyStop,
    ema: entries(checkpoint.ema),
  };
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
  const run = trainWithCheckpoints(model, data, options, extra.checkpoint, { checkpoint, state });
  return { model, run, checkpoint };
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
