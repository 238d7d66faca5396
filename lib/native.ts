// The only file that loads the compiled addon, the types of what it exports (the one contract with C++),
// and the one place native errors become typed ones: every call, every returned promise and every method of
// a returned native object passes through fromNative. Nothing outside lib/ should need this.
import * as fs from 'fs';
import * as path from 'path';

import { fromNative } from './errors';
import type { EvalMetricName } from './metric-names';
import { packageRoot } from './paths';

export interface NativeTensor {
  data: Float32Array;
  shape: number[];
}

export interface NativeStateEntry {
  name: string;
  shape: number[];
  dtype: string;
  parameter: boolean;
  requiresGrad: boolean;
}

export interface NativeTensorData {
  name: string;
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

export interface NativeGraphNode {
  op: string;
  name: string;
  inputs: string[];
  output: string;
  outputShape: number[];
  intAttrs: Record<string, number[]>;
  floatAttrs: Record<string, number>;
  params: number;
  macs: number;
}

export interface NativeGraph {
  input: string;
  output: string;
  nodes: NativeGraphNode[];
  constants: NativeTensorData[];
  weights: string[];
}

/** What the facade hands to the native constructor (lib/model/spec.ts resolves it). */
export interface NativeNetSpec {
  block: 'basic' | 'bottleneck';
  preact: boolean;
  shortcut: 'A' | 'B' | 'C' | 'none';
  stem: 'imagenet' | 'cifar';
  depths: number[];
  widths: number[];
  inChannels: number;
  numClasses: number;
  stride: 'conv3x3' | 'conv1x1';
  groups: number;
  widthPerGroup: number;
  deepStem: boolean;
  stemWidth: number;
  avgDown: boolean;
  attention: 'none' | 'se';
  dropPath: number;
  shortcutScale: number;
  zeroInitResidual: boolean;
  dtype: 'float32' | 'float64';
  seed: number;
}

export interface NativeModel {
  forward(input: Float32Array, shape: number[], forceEval: boolean): Promise<NativeTensor>;
  stateEntries(): NativeStateEntry[];
  exportState(): Promise<NativeTensorData[]>;
  importState(entries: { name: string; shape: number[]; data: NativeTensorData['data'] }[]): Promise<void>;
  setTraining(on: boolean): void;
  isTraining(): boolean;
  to(device: string): Promise<void>;
  device(): string;
  trace(height: number, width: number): NativeGraph;
  minInputSize(): number;
  setRequiresGrad(prefixes: string[], on: boolean): number;
  replaceHead(numClasses: number, seed: number): void;
  dispose(): void;
}

export interface NativeInfo {
  torchVersion: string;
  torchLibrary: string;
  /** CUDA versions as CUDA writes them (12040: 12.4); 0: none. */
  cudaCompiled: number;
  cudaRuntime: number;
  cudaDriver: number;
  cudaAvailable: boolean;
  builtWithCuda: boolean;
  cudaDevices: { index: number; name: string; computeCapability: string; totalMemory: number }[];
  cudnnVersion: number;
  intraOpThreads: number;
  interOpThreads: number;
  cxx11Abi: boolean;
  mkldnn: boolean;
  onednnOffReason: string;
  onednnVersion: string;
  onednnIsa: string;
  onednnTraining: string;
  onednnTrainingBlock: number;
  onednnTrainingVersion: string;
  onednnTrainingIsa: string;
  distributedGloo: boolean;
  distributedNccl: boolean;
}

export interface NativeEvalMetrics {
  split: string;
  count: number;
  loss: number;
  top1Error: number;
  top5Error: number;
  perClassAccuracy: number[];
  confusion: number[][];
}

export interface NativeDataset {
  length(): number;
  shape(): number[];
  dtype(): string;
  subset(indices: Int32Array): Promise<NativeDataset>;
  stats(): Promise<{ meanImage: Float32Array; channelMean: Float32Array; channelStd: Float32Array }>;
  labelCounts(): BigInt64Array;
  slice(start: number, count: number): { images: Uint8Array | Float32Array; labels: BigInt64Array };
  evaluate(model: NativeModel, augment: NativeAugment, batchSize: number, split: string): Promise<NativeEvalMetrics>;
  /** The indices a training run draws in `epoch` on `rank` of `worldSize`, in order (inspection, tests). */
  epochOrder(
    batchSize: number,
    shuffle: boolean,
    dropLast: boolean,
    seed: number,
    rank: number,
    worldSize: number,
    epoch: number,
    repeats?: number,
    repeatsRound?: number,
  ): BigInt64Array;
  /** Images start..start+count prepared as a training batch is, and what each drew (native/data/auto_augment.h). */
  augment(
    start: number,
    count: number,
    augment: NativeAugment,
    seed: number,
  ): Promise<{
    images: Float32Array;
    shape: number[];
    /** count×steps operation indices and signed magnitudes (with a policy). */
    ops?: BigInt64Array;
    magnitudes?: Float64Array;
    /** The operations' names, by index (the policy's order). */
    opNames?: string[];
    /** timm's RandAugment: count×steps, 1 where the operation applied, and where a geometric one was bicubic. */
    applied?: Uint8Array;
    bicubic?: Uint8Array;
    /** count×4: top, left, height, width (height 0: not erased), with random erasing. */
    eraseBoxes?: BigInt64Array;
  }>;
  dispose(): void;
}

/** Augmentation and normalisation as C++ applies them (training, and evaluation with everything random off). */
export interface NativeAugment extends NativeNormalization {
  pad: number;
  flip: boolean;
  randomResizedCrop: boolean;
  scaleMin: number;
  scaleMax: number;
  ratioMin: number;
  ratioMax: number;
  /** The crop's output size (randomResizedCrop), 0 otherwise. */
  outHeight: number;
  outWidth: number;
  /** Evaluation's size with randomResizedCrop (FixRes), 0: outHeight/outWidth. */
  evalHeight: number;
  evalWidth: number;
  /** TrivialAugmentWide, RandAugment or timm's RandAugment (native/data/auto_augment.h). */
  autoAugment: {
    kind: 'none' | 'trivial-augment-wide' | 'rand-augment' | 'timm-rand-augment';
    numOps: number;
    magnitude: number;
    numBins: number;
    /** timm's only: the magnitude's noise, each operation's probability, the increasing set, the filter, the fill. */
    magnitudeStd: number;
    prob: number;
    increasing: boolean;
    resample: 'bilinear' | 'bicubic' | 'random';
    fill: number[];
  };
  /** Random erasing (prob 0: off). */
  erase: {
    prob: number;
    scaleMin: number;
    scaleMax: number;
    ratioMin: number;
    ratioMax: number;
    randomValue: boolean;
    value: number;
  };
  channelsLast: boolean;
}

/** mean (with meanShape) for 'per-pixel' and 'per-channel', std for 'per-channel'. */
export interface NativeNormalization {
  norm: 'none' | 'per-pixel' | 'per-channel';
  mean?: Float32Array | Float64Array;
  meanShape?: number[];
  std?: Float32Array | Float64Array;
}

/** The learning-rate schedule as C++ runs it (lib/train/resolve.ts fills every key). */
export interface NativeScheduleConfig {
  type: 'constant' | 'multistep' | 'cosine' | 'onecycle' | 'plateau';
  baseLr: number;
  totalIterations: number;
  iterationsPerEpoch: number;
  milestones: number[];
  milestonesInEpochs: boolean;
  gamma: number;
  minLr: number;
  maxLr: number;
  pctStart: number;
  divFactor: number;
  finalDivFactor: number;
  factor: number;
  patience: number;
  threshold: number;
  cooldown: number;
  warmupIterations: number;
  warmupStartFactor: number;
  errorWarmup: boolean;
  errorWarmupLr: number;
  errorWarmupThreshold: number;
}

export interface NativeOptimizerConfig {
  type: 'sgd' | 'adamw' | 'lamb';
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  noDecayBnBias: boolean;
  maxGradNorm: number;
  trustClip: boolean;
  alwaysAdapt: boolean;
}

export interface NativeScheduleState {
  warmedUp: boolean;
  plateauScale: number;
  plateauBest: number;
  plateauBad: number;
  plateauCooldownLeft: number;
}

/** The running sums of the epoch in progress (a run resumed mid-epoch continues them). */
export interface NativeEpochMeter {
  lossSum: number;
  wrong: number;
  images: number;
}

/** A training run's settings, every key required: C++ (native/binding/train_convert.cpp) reads each one and
 *  rejects a missing key or an unknown enum value by name; the defaults live in lib/train/options/. */
export interface NativeTrainConfig {
  batchSize: number;
  totalIterations: number;
  startIteration: number;
  seed: number;
  shuffle: boolean;
  dropLast: boolean;
  /** Repeated augmentation's copies of each image per epoch (1: off). */
  repeats: number;
  /** Its epoch rounding (timm's selected_round; 0: none). */
  repeatsRound: number;
  deterministic: boolean;
  cudnnBenchmark: boolean;
  optimizer: NativeOptimizerConfig;
  schedule: NativeScheduleConfig;
  scheduleState: NativeScheduleState;
  augment: NativeAugment;
  labelSmoothing: number;
  loss: 'cross-entropy' | 'bce';
  bceTargetThreshold: number;
  mix: { mixupAlpha: number; cutmixAlpha: number; prob: number; switchProb: number; correctLam: boolean };
  /** 0: off. */
  clipGradNorm: number;
  freezeBatchNorm: boolean;
  accumulate: number;
  /** metric '': off. */
  earlyStop: {
    metric: EvalMetricName | '';
    patience: number;
    minDelta: number;
    restoreBest: boolean;
    state: NativeEarlyStopState;
  };
  /** 0: no moving average. */
  emaDecay: number;
  emaState: NativeTrainConfig['optimizerState'];
  logEvery: number;
  evalEveryIterations: number;
  evalEveryEpochs: number;
  evalBatchSize: number;
  plateauMetric: EvalMetricName | 'train_loss';
  diagnostics: boolean;
  threads: number;
  checkpointEveryIterations: number;
  stateAtEnd: boolean;
  stateOnEvaluation: boolean;
  epochMeter: NativeEpochMeter;
  channelsLast: boolean;
  precision: 'float32' | 'bfloat16' | 'float16';
  cudaGraph: boolean;
  syncBatchNorm: boolean;
  optimizerState: { name: string; shape: number[]; data: Float32Array | Float64Array | BigInt64Array }[];
  optimizerSteps: number;
  lossScale: number;
  distributed: NativeDistributedConfig;
}

/** What native/binding/train_convert.cpp's field tables read (test/integration/native-fields.test.ts). */
export interface NativeFieldTable {
  [field: string]: string | string[] | NativeFieldTable;
}

/** The process group (worldSize 1: one process); `fingerprint` holds what every rank must agree on. */
export interface NativeDistributedConfig {
  /** Joins a process group (worldSize > 1, or a group of one asked for). */
  join: boolean;
  backend: 'gloo' | 'nccl';
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  /** torchrun's agent serves the store: every rank is a client. */
  agentStore: boolean;
  /** The keys of this run in the store ('' for none). */
  storePrefix: string;
  fingerprint: [string, string][];
}

/** What a resumed run starts from (read from a checkpoint). */
/** Where the early-stopping rule stands; best 1e308: no evaluation yet. */
export interface NativeEarlyStopState {
  best: number;
  bestIteration: number;
  bad: number;
}

export interface NativeResumeState {
  startIteration: number;
  optimizerSteps: number;
  lossScale: number;
  schedule: NativeScheduleState;
  optimizer: NativeTrainConfig['optimizerState'];
  epochMeter: NativeEpochMeter;
  /** Absent in checkpoints from before early stopping. */
  earlyStop?: NativeEarlyStopState;
  /** The weights' moving average so far (ema.* tensors), when the run keeps one. */
  ema?: NativeTrainConfig['optimizerState'];
}

export interface NativeTrainState {
  iteration: number;
  epoch: number;
  schedule: NativeScheduleState;
  optimizerSteps: number;
  epochMeter: NativeEpochMeter;
  lossScale: number;
  earlyStop: NativeEarlyStopState;
  /** Empty without an EMA. */
  ema: NativeTensorData[];
  model: NativeTensorData[];
  optimizer: NativeTensorData[];
  cpuRng: Uint8Array;
  cudaRng: Uint8Array[];
}

export interface NativeEvent {
  kind: 'iteration' | 'epoch' | 'evaluation' | 'checkpoint';
  iteration: number;
  epoch: number;
  lr: number;
  elapsedSeconds: number;
  etaSeconds: number;
  loss?: number;
  trainError?: number;
  imagesPerSecond?: number;
  dataWaitSeconds?: number;
  lossScale?: number;
  evaluations?: Record<string, NativeEvalMetrics>;
  diagnostics?: { gradNorms: number[]; responseStds: number[] };
  mix?: { lam: number; cutmix: boolean; box?: [number, number, number, number] }[];
  state?: NativeTrainState;
}

/** Where a run's time went, in seconds (TrainResult.phases). */
export interface PhaseSeconds {
  /** Waiting for the next prepared batch (on the CPU, where no second thread prepares it: preparing it). */
  dataWait: number;
  /** Forward passes and the loss. */
  forward: number;
  /** Backward passes (with DDP, the all-reduces they wait for). */
  backward: number;
  /** zero_grad, the finite check, clipping, the optimizer step, the EMA. */
  optimizer: number;
  /** Meters, progress events, evaluations, checkpoint snapshots. */
  other: number;
  /** Drawing batches and copying them to the device: part of dataWait on the CPU, beside the step on a GPU (a thread
   *  of its own prepares the batches there). */
  gather: number;
  /** Conversion, normalisation and augmentation: as gather. */
  augment: number;
}

export interface NativeResult {
  aborted: boolean;
  iteration: number;
  epoch: number;
  elapsedSeconds: number;
  imagesPerSecond: number;
  lr: number;
  evaluations: Record<string, NativeEvalMetrics>;
  state?: NativeTrainState;
  stoppedEarly: boolean;
  restoredBest: boolean;
  earlyStop: NativeEarlyStopState;
  ema?: NativeTensorData[];
  engine: string;
  phases: PhaseSeconds;
}

export interface NativeRun {
  done: Promise<NativeResult>;
  cancel(): void;
}

export interface NativeBatchQueue {
  push(epoch: number, index: number, images: Uint8Array | Float32Array, shape: number[], labels: Int32Array): boolean;
  onSpace(callback: () => void): void;
  close(error?: string): void;
  size(): number;
}

export interface NativeFused {
  forward(input: Float32Array, shape: number[]): Promise<NativeTensor>;
  folded(): number;
  kernels(): { kernels: 'onednn' | 'aten'; reason: string };
  profile(input: Float32Array, shape: number[]): Promise<{ layer: string; ms: number }[]>;
}

export interface NativeBinding {
  createDataset(
    images: Uint8Array | Float32Array,
    shape: number[],
    labels: Int32Array | BigInt64Array,
    numClasses: number,
  ): Promise<NativeDataset>;
  startTraining(
    model: NativeModel,
    source: NativeDataset | NativeBatchQueue,
    validation: NativeDataset | undefined,
    test: NativeDataset | undefined,
    config: NativeTrainConfig,
    onEvent: (e: NativeEvent) => void,
  ): NativeRun;
  BatchQueue: new (capacity: number, batchesPerEpoch: number) => NativeBatchQueue;
  Model: new (spec: NativeNetSpec) => NativeModel;
  createModel(spec: NativeNetSpec, device: string): Promise<NativeModel>;
  info(): NativeInfo;
  fuse(
    model: NativeModel,
    height: number,
    width: number,
    channelsLast: boolean,
    onednn: boolean,
    precision: 'float32' | 'bfloat16' | 'int8',
    /** int8: the calibration images (N×C×height×width, as the net takes them). */
    calibration?: Float32Array,
    calibrationShape?: number[],
  ): Promise<NativeFused>;
  cudaMemoryStats(device: number): {
    allocated: number;
    reserved: number;
    peakAllocated: number;
    peakReserved: number;
    allocRetries: number;
    ooms: number;
  };
  cudaEmptyCache(): void;
  importPth(pickle: Uint8Array, records: Record<string, Uint8Array>): Promise<NativeTensorData[]>;
  /** Every field of NativeTrainConfig the binding reads, by name: "integer", "number", "boolean", "string",
   *  "integer[]", "tensors", "string pairs", with "?" where it may be absent; a nested table; or a choice's names. */
  trainConfigFields(): NativeFieldTable;
  scheduleValues(
    config: NativeTrainConfig,
    ops: ({ iteration: number } | { trainError: number } | { metric: number })[],
  ): number[];
  setNumThreads(n: number): void;
  getNumThreads(): number;
  checkDevice(device: string): string;
}

const ADDON = 'resnet_torch.node';

/** Where the addon is: $RESNET_TORCH_ADDON, or build/Release under the package root. */
export function addonPath(): string {
  if (process.env.RESNET_TORCH_ADDON) return path.resolve(process.env.RESNET_TORCH_ADDON);
  return path.join(packageRoot(), 'build', 'Release', ADDON);
}

let binding: NativeBinding | undefined;

/** The addon, loaded on first use, with every error it raises typed (lib/errors.ts). */
export function native(): NativeBinding {
  if (binding) return binding;
  const file = addonPath();
  let raw: NativeBinding;
  try {
    raw = require(file) as NativeBinding;
  } catch (e) {
    const reason = (e as Error).message;
    const hint = fs.existsSync(file)
      ? 'it exists but did not load (is libtorch still where it was when the addon was built?)'
      : 'it is not built yet: run `npm run build:native` (see the README for libtorch)';
    throw new Error(`resnet-torch: cannot load the native addon ${file}: ${hint}\n${reason}`);
  }
  binding = guarded(raw);
  return binding;
}

// ---- typed errors at the boundary -------------------------------------------------------------------

// Proxies of native objects -> the objects themselves: the addon unwraps only its own objects.
const targets = new WeakMap<object, object>();
const NATIVE_CLASSES = new Set(['Model', 'Dataset', 'TrainingRun', 'BatchQueue', 'FusedModel']);

function isNativeObject(value: object): boolean {
  return NATIVE_CLASSES.has(Object.getPrototypeOf(value)?.constructor?.name);
}

function unwrap(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? (targets.get(value) ?? value) : value;
}

// Duck-typed: under jest the addon's promises and the caller's Promise come from different realms.
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

const TYPED_ARRAYS: Record<string, new (buffer: ArrayBufferLike, offset: number, length: number) => ArrayBufferView> = {
  Float32Array,
  Float64Array,
  Uint8Array,
  Int32Array,
  BigInt64Array,
};

/**
 * The addon's typed arrays as this realm's (a view of the same memory, no copy): under jest a test file runs in
 * its own realm, where `out.data instanceof Float32Array` would otherwise be false (jest issue 2549).
 */
function localize(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) {
    const local = TYPED_ARRAYS[Object.prototype.toString.call(value).slice(8, -1)];
    if (!local || value instanceof local) return value;
    const a = value as unknown as { buffer: ArrayBufferLike; byteOffset: number; length: number };
    return new local(a.buffer, a.byteOffset, a.length);
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = localize(value[i]);
  } else if (
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(Object.getPrototypeOf(value) ?? {}) === null
  ) {
    for (const key of Object.keys(value))
      (value as Record<string, unknown>)[key] = localize((value as Record<string, unknown>)[key]);
  }
  return value;
}

/** Results as they come back: promises settle through fromNative, native objects come back guarded. */
function guardResult(value: unknown): unknown {
  if (isThenable(value)) return Promise.resolve(value).then(guardResult, (e) => Promise.reject(fromNative(e)));
  if (typeof value === 'object' && value !== null && isNativeObject(value)) return guarded(value);
  return localize(value);
}

function guardCall(fn: (...args: unknown[]) => unknown, self: unknown, args: unknown[]): unknown {
  try {
    return guardResult(fn.apply(self, args.map(unwrap)));
  } catch (e) {
    throw fromNative(e);
  }
}

function guarded<T extends object>(target: T): T {
  const proxy = new Proxy(target, {
    get(obj, key) {
      const value = Reflect.get(obj, key, obj);
      if (typeof value === 'function') {
        // Classes (Model, BatchQueue) are constructed; everything else is called on the native object.
        if (/^[A-Z]/.test(String(key))) {
          return new Proxy(value, {
            construct: (cls, args) => {
              try {
                return guarded(Reflect.construct(cls, args.map(unwrap)) as object);
              } catch (e) {
                throw fromNative(e);
              }
            },
          });
        }
        return (...args: unknown[]) => guardCall(value as (...a: unknown[]) => unknown, obj, args);
      }
      return isThenable(value) ? guardResult(value) : value;
    },
  });
  targets.set(proxy, target);
  return proxy;
}
