// Full-state checkpoints: one safetensors file holding the weights and BN buffers (model.*), the optimizer
// state (optim.*) and the RNG states (rng.*), with the spec, the validated options, the schedule position,
// the metrics history and the versions in its metadata. Loading never executes anything from the file.
import { CheckpointError } from '../errors';
import { info, packageVersion } from '../info';
import {
  DType,
  SafetensorsFile,
  StoredTensor,
  TO_SAFETENSORS,
  TensorToWrite,
  readSafetensors,
  writeSafetensors,
} from '../io/safetensors';
import { CHECKPOINT_FORMAT, isCheckpointMetadata } from '../io/weights';
import { modelFromState } from '../model/load';
import type { Model } from '../model/model';
import { ModelSpec, ResolvedModelSpec } from '../model/spec';
import type {
  NativeEarlyStopState,
  NativeEpochMeter,
  NativeScheduleState,
  NativeTensorData,
  NativeTrainState,
} from '../native';
import type { Preprocessing } from '../preprocess';
import { Schema, s } from '../validate';
import { ProgressEvent, TrainOptions, trainFields } from './options';
import type { TrainData } from './resolve';

export { CHECKPOINT_FORMAT };

/** Where the run stood when the checkpoint was taken: enough to resume it exactly. */
export interface CheckpointState {
  /** Iterations done. */
  iteration: number;
  /** Epochs done. */
  epoch: number;
  /** Iterations the run was to do. */
  totalIterations: number;
  /** Steps the optimizer took. */
  optimizerSteps: number;
  /** The float16 loss scale (0 in other precisions). */
  lossScale: number;
  /** The schedule's position (warm-up, plateau). */
  schedule: NativeScheduleState;
  /** The current epoch's running sums. */
  epochMeter: NativeEpochMeter;
  /** Ranks of the run that wrote it (1: one process; absent in checkpoints from before distributed training). */
  worldSize?: number;
  /** Where the early-stopping rule stood (absent in checkpoints from before it). */
  earlyStop?: NativeEarlyStopState;
}

/** A full training checkpoint as readCheckpoint() returns it: tensors, options, schedule position and history. */
export interface Checkpoint {
  /** The file it was read from. */
  file: string;
  /** The model's resolved spec. */
  spec: ResolvedModelSpec;
  /** The validated training options of the run. */
  options: TrainOptions;
  /** Where the run stood. */
  state: CheckpointState;
  /** Epoch and evaluation events up to the checkpoint. */
  history: ProgressEvent[];
  /** The normalisation the run used. */
  preprocessing?: Preprocessing;
  /** The training data it was taken on (resume checks it is the same). */
  data?: {
    /** The dataset's name. */
    name: string;
    /** Its images. */
    length: number;
    /** [C, H, W] of its images. */
    shape: number[];
    numClasses: number;
  };
  /** The versions that wrote it. */
  versions: {
    /** resnet-torch's version. */
    package: string;
    /** libtorch's version. */
    libtorch: string;
  };
  /** Every metadata string of the file. */
  metadata: Record<string, string>;
  /** model.* tensors (by state_dict name), optim.* tensors (by "<param>.<slot>") and ema.* tensors (the weights'
   *  moving average, by state_dict name; empty without one). */
  model: Map<string, StoredTensor>;
  /** The optimizer's buffers. */
  optimizer: Map<string, StoredTensor>;
  /** The weights' moving average (empty without one). */
  ema: Map<string, StoredTensor>;
}

/** The options a checkpoint stores: everything serialisable (no datasets, signal, callbacks or loggers). */
export function storableOptions(options: TrainOptions): TrainOptions {
  const { validation: _v, test: _t, signal: _s, onProgress: _p, distributed: _d, loggers: _l, ...rest } = options;
  return JSON.parse(JSON.stringify(rest));
}

function tensorsOf(prefix: string, list: NativeTensorData[]): TensorToWrite[] {
  return list.map((t) => ({
    name: `${prefix}${t.name}`,
    dtype: TO_SAFETENSORS[t.dtype],
    shape: t.shape,
    data: t.data,
  }));
}

export interface SaveContext {
  model: Model;
  options: TrainOptions;
  totalIterations: number;
  history: ProgressEvent[];
  preprocessing: Preprocessing;
  data: TrainData;
  extra: Record<string, string>;
  worldSize: number;
}

export async function writeCheckpoint(file: string, state: NativeTrainState, ctx: SaveContext): Promise<void> {
  const tensors = [
    ...tensorsOf('model.', state.model),
    ...tensorsOf('optim.', state.optimizer),
    ...tensorsOf('ema.', state.ema ?? []),
    { name: 'rng.cpu', dtype: 'U8' as DType, shape: [state.cpuRng.length], data: state.cpuRng },
    ...state.cudaRng.map((r, i) => ({ name: `rng.cuda.${i}`, dtype: 'U8' as DType, shape: [r.length], data: r })),
  ];
  const cs: CheckpointState = {
    iteration: state.iteration,
    epoch: state.epoch,
    totalIterations: ctx.totalIterations,
    optimizerSteps: state.optimizerSteps,
    lossScale: state.lossScale,
    schedule: {
      ...state.schedule,
      plateauBest: Number.isFinite(state.schedule.plateauBest) ? state.schedule.plateauBest : 1e308,
    },
    epochMeter: state.epochMeter,
    worldSize: ctx.worldSize,
    earlyStop: state.earlyStop,
  };
  const { device: _d, ...spec } = ctx.model.spec;
  await writeSafetensors(file, tensors, {
    ...ctx.extra,
    format: CHECKPOINT_FORMAT,
    formatVersion: '1',
    'resnet-torch.version': packageVersion(),
    'libtorch.version': info().libtorchVersion,
    spec: JSON.stringify({ ...spec, ...(ctx.model.classNames ? { classNames: ctx.model.classNames } : {}) }),
    options: JSON.stringify(storableOptions(ctx.options)),
    state: JSON.stringify(cs),
    history: JSON.stringify(ctx.history.filter((e) => e.iteration <= state.iteration)),
    preprocessing: JSON.stringify(ctx.preprocessing),
    data: JSON.stringify({
      name: ctx.data.name,
      length: ctx.data.length,
      shape: ctx.data.shape,
      numClasses: ctx.data.numClasses,
    }),
  });
}

function parseJson<T>(file: string, metadata: Record<string, string>, key: string, schema?: Schema<T>): T {
  const text = metadata[key];
  if (text === undefined)
    throw new CheckpointError(file, `metadata "${key}" is missing: not a resnet-torch checkpoint, or a damaged one`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CheckpointError(file, `metadata "${key}" is not valid JSON`);
  }
  if (!schema) return value as T;
  try {
    return schema.parse(value, key);
  } catch (e) {
    throw new CheckpointError(file, `metadata ${(e as Error).message}`);
  }
}

const stateSchema: Schema<CheckpointState> = s.object<CheckpointState>({
  iteration: s.integer({ min: 0 }),
  epoch: s.integer({ min: 0 }),
  totalIterations: s.integer({ min: 1 }),
  optimizerSteps: s.integer({ min: 0 }),
  lossScale: s.number({ min: 0 }),
  schedule: s.object({
    warmedUp: s.boolean(),
    plateauScale: s.number({ min: 0 }),
    plateauBest: s.number(),
    plateauBad: s.integer({ min: 0 }),
    plateauCooldownLeft: s.integer({ min: 0 }),
  }),
  epochMeter: s.object({ lossSum: s.number(), wrong: s.integer({ min: 0 }), images: s.integer({ min: 0 }) }),
  worldSize: s.optional(s.integer({ min: 1 })),
  earlyStop: s.optional(
    s.object({ best: s.number(), bestIteration: s.integer({ min: 0 }), bad: s.integer({ min: 0 }) }),
  ),
});

const storedOptionsSchema: Schema<TrainOptions> = s.object<TrainOptions>(trainFields);

/** Reads and checks a checkpoint (header, every tensor's bounds, every metadata field). */
export async function readCheckpoint(file: string): Promise<Checkpoint> {
  const st: SafetensorsFile = await readSafetensors(file);
  const md = st.metadata;
  if (!isCheckpointMetadata(md))
    throw new CheckpointError(
      file,
      md.format === 'pt'
        ? 'holds weights only (use loadWeights), not a full training checkpoint'
        : 'not a resnet-torch checkpoint',
    );
  const spec = parseJson<ResolvedModelSpec>(file, md, 'spec');
  const options = parseJson(file, md, 'options', storedOptionsSchema);
  const state = parseJson(file, md, 'state', stateSchema);
  const history = parseJson<ProgressEvent[]>(file, md, 'history');
  if (!Array.isArray(history)) throw new CheckpointError(file, 'metadata "history" is not a list');
  const preprocessing = parseJson<Preprocessing>(file, md, 'preprocessing');
  const data = parseJson<Checkpoint['data']>(file, md, 'data');
  if (state.iteration > state.totalIterations)
    throw new CheckpointError(file, `state.iteration ${state.iteration} is past the run's ${state.totalIterations}`);
  const model = new Map<string, StoredTensor>(),
    optimizer = new Map<string, StoredTensor>(),
    ema = new Map<string, StoredTensor>();
  for (const [name, t] of st.tensors) {
    if (name.startsWith('model.')) model.set(name.slice(6), t);
    else if (name.startsWith('optim.')) optimizer.set(name.slice(6), t);
    else if (name.startsWith('ema.')) ema.set(name.slice(4), t);
  }
  if (model.size === 0) throw new CheckpointError(file, 'holds no model.* tensors');
  return {
    file,
    spec,
    options,
    state,
    history,
    preprocessing,
    data,
    metadata: md,
    model,
    optimizer,
    ema,
    versions: { package: md['resnet-torch.version'] ?? 'unknown', libtorch: md['libtorch.version'] ?? 'unknown' },
  };
}

/** A model rebuilt from a checkpoint (weights, BN buffers, preprocessing, class names). */
export async function loadCheckpoint(
  file: string,
  options: { device?: string } = {},
): Promise<{
  /** The model, with the checkpoint's weights. */
  model: Model;
  /** The checkpoint as read. */
  checkpoint: Checkpoint;
}> {
  const checkpoint = await readCheckpoint(file);
  const spec = checkpoint.spec as ModelSpec;
  const model = await modelFromState(file, spec, options.device ?? 'cpu', checkpoint.model, checkpoint.preprocessing);
  return { model, checkpoint };
}
