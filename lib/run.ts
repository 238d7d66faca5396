// Training runs with checkpoints: train() (with an optional checkpoint policy) and resumeTraining().
import { promises as fsp } from 'fs';
import * as path from 'path';

import { CheckpointPolicy, Checkpoint, checkpointPolicySchema, loadCheckpoint, writeCheckpoint, SaveContext } from './checkpoint';
import { Dataset } from './datasets/dataset';
import { StreamingDataset } from './datasets/image-folder';
import { CheckpointError, ValidationError } from './errors';
import { toFloat32, typedArrayOf } from './io/safetensors';
import type { Model } from './model';
import { NativeTrainState } from './native';
import { ProgressEvent, ResumeState, RunHooks, TrainData, TrainOptions, TrainingRun, resolveRun, startRun } from './train';
import { isPlainObject } from './validate';

/** Writes checkpoints as the policy asks, in order, never deleting one before its successor is on disk. */
class CheckpointWriter {
  #queue: Promise<void> = Promise.resolve();
  #periodic: string[] = [];
  #best = Infinity;
  #error: unknown;

  constructor(private readonly policy: CheckpointPolicy, private readonly ctx: SaveContext) {}

  async prepare(history: ProgressEvent[]): Promise<void> {
    const dir = this.policy.dir;
    await fsp.mkdir(dir, { recursive: true });
    // Temporary files left by a writer that was killed mid-write (the checkpoints themselves are intact).
    for (const f of await fsp.readdir(dir)) if (/^\..+\.safetensors\.\d+\.[0-9a-f]+\.tmp$/.test(f)) await fsp.rm(path.join(dir, f), { force: true });
    this.#periodic = (await fsp.readdir(dir)).filter((f) => /^checkpoint-\d+\.safetensors$/.test(f))
      .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0])).map((f) => path.join(dir, f));
    for (const e of history) this.#improves(e);
  }

  /** A periodic checkpoint (kind 'checkpoint') or an evaluation that may be the best so far. */
  during(state: NativeTrainState, event: ProgressEvent): void {
    if (event.kind === 'checkpoint') this.#write(state, `checkpoint-${state.iteration}.safetensors`, 'periodic');
    else if (this.#improves(event)) this.#write(state, 'best.safetensors', 'best');
  }

  atEnd(state: NativeTrainState, aborted: boolean): void {
    if (aborted ? this.policy.onCancel ?? true : this.policy.atEnd ?? true)
      this.#write(state, `checkpoint-${state.iteration}.safetensors`, aborted ? 'cancel' : 'final');
  }

  #improves(event: ProgressEvent): boolean {
    if (!this.policy.keepBest || !event.evaluations) return false;
    const [split, metric] = this.policy.keepBest.split('_') as ['val' | 'test', 'error' | 'loss'];
    const m = event.evaluations[split];
    const value = m ? (metric === 'error' ? m.top1Error : m.loss) : undefined;
    if (value === undefined || !(value < this.#best)) return false;
    this.#best = value;
    return true;
  }

  #write(state: NativeTrainState, name: string, kind: 'periodic' | 'best' | 'final' | 'cancel'): void {
    const p = this.policy;
    const file = path.join(p.dir, name);
    this.#queue = this.#queue.then(async () => {
      await writeCheckpoint(file, state, this.ctx);
      if (kind !== 'best') {
        await writeCheckpoint(path.join(p.dir, 'last.safetensors'), state, this.ctx);
        if (!this.#periodic.includes(file)) this.#periodic.push(file);
        while (this.#periodic.length > (p.keepLast ?? 3)) await fsp.rm(this.#periodic.shift()!, { force: true });
      }
      p.onSaved?.(file, kind);
    }).catch((e) => {
      this.#error ??= e;
    });
  }

  async flush(): Promise<void> {
    await this.#queue;
    if (this.#error) throw this.#error;
  }
}

function checkSameData(file: string, stored: Checkpoint['data'], data: TrainData): void {
  if (!stored) return;
  if (stored.length !== data.length || stored.numClasses !== data.numClasses || stored.shape.some((v, i) => v !== data.shape[i]))
    throw new CheckpointError(file, `was trained on ${stored.name} (${stored.length} images of [${stored.shape.join(', ')}], ${stored.numClasses} classes); ` +
      `the data given is ${data.name} (${data.length} images of [${data.shape.join(', ')}], ${data.numClasses} classes)`);
}

/** @internal train() with a checkpoint policy and optionally a resume state. */
export function trainWithCheckpoints(model: Model, data: TrainData, options: TrainOptions, policy: CheckpointPolicy | undefined,
  resume?: { checkpoint: Checkpoint; state: ResumeState }): TrainingRun {
  let inner: TrainingRun | undefined;
  let cancelled = false;
  return new TrainingRun(async (emit, setCancel) => {
    setCancel(() => {
      cancelled = true;
      inner?.cancel();
    });
    const p = policy ? checkpointPolicySchema.parse(policy, 'checkpoint') : undefined;
    if (p?.everyIterations && p.everyEpochs) throw new ValidationError('checkpoint.everyEpochs', p.everyEpochs, 'only one of everyIterations and everyEpochs');
    const hooks: RunHooks = { resume: resume?.state };
    const probe = await resolveRun(model, data, options, hooks);
    const history: ProgressEvent[] = [...(resume?.checkpoint.history ?? [])];
    let writer: CheckpointWriter | undefined;
    if (p) {
      writer = new CheckpointWriter(p, { model, options, totalIterations: probe.totalIterations, history, preprocessing: probe.preprocessing, data,
        extra: p.metadata ?? {} });
      await writer.prepare(history);
      hooks.checkpointEveryIterations = p.everyIterations ?? (p.everyEpochs ? p.everyEpochs * probe.iterationsPerEpoch : 0);
      hooks.stateAtEnd = (p.onCancel ?? true) || (p.atEnd ?? true);
      hooks.stateOnEvaluation = p.keepBest !== undefined;
      hooks.onState = (state, event) => writer!.during(state, event);
      hooks.onFinalState = (state, aborted) => writer!.atEnd(state, aborted);
    }
    const resolved = await resolveRun(model, data, options, hooks);
    inner = startRun(model, data, { ...options, onProgress: (e) => {
      if (e.kind === 'epoch' || e.kind === 'evaluation') history.push(e);
      emit(e);
      options.onProgress?.(e);
    } }, resolved, hooks);
    if (cancelled) inner.cancel();
    try {
      const result = await inner.done;
      await writer?.flush();
      return { ...result, history };
    } catch (e) {
      await writer?.flush().catch(() => undefined);
      throw e;
    }
  });
}

export interface ResumeOptions {
  validation?: Dataset | StreamingDataset;
  test?: Dataset | StreamingDataset;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  checkpoint?: CheckpointPolicy;
  device?: string;
}

/** Continues the run a checkpoint was taken from; with the same data it ends bit-identical (on the CPU). */
export async function resumeTraining(file: string, data: TrainData, extra: ResumeOptions = {}): Promise<{ model: Model; run: TrainingRun; checkpoint: Checkpoint }> {
  const { model, checkpoint } = await loadCheckpoint(file, { device: extra.device });
  checkSameData(file, checkpoint.data, data);
  const optimizer = [...checkpoint.optimizer].map(([name, t]) => ({ name, shape: t.shape, data: t.dtype === 'I64' ? (typedArrayOf(t) as never) : toFloat32(t) }));
  const st = checkpoint.state;
  const state: ResumeState = { startIteration: st.iteration, optimizerSteps: st.optimizerSteps, lossScale: st.lossScale, schedule: st.schedule, optimizer,
    epochMeter: st.epochMeter };
  const options: TrainOptions = { ...checkpoint.options, validation: extra.validation, test: extra.test, signal: extra.signal, onProgress: extra.onProgress };
  for (const k of ['validation', 'test', 'signal', 'onProgress'] as const) if (options[k] === undefined) delete options[k];
  const run = trainWithCheckpoints(model, data, options, extra.checkpoint, { checkpoint, state });
  return { model, run, checkpoint };
}

/**
 * Trains `model` on `data` on a native thread, writing checkpoints if `options.checkpoint` asks for them.
 * Resolves (never rejects) with `aborted: true` when the signal stops it: the model and optimizer are then
 * as after the last complete iteration (and, by default, a checkpoint of that state is on disk).
 */
export function train(model: Model, data: TrainData, options: TrainOptions & { checkpoint?: CheckpointPolicy }): TrainingRun {
  if (!isPlainObject(options)) throw new ValidationError('options', options, 'an object');
  const { checkpoint, ...rest } = options as TrainOptions & { checkpoint?: CheckpointPolicy };
  return trainWithCheckpoints(model, data, rest, checkpoint);
}
