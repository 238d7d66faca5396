// The only file that loads the compiled addon, and the types of what it exports. Everything else in lib/
// goes through the typed facade; nothing outside lib/ should need this.
import * as fs from 'fs';
import * as path from 'path';

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

/** What the facade hands to the native constructor (lib/model.ts resolves it). */
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
  shortcutScale: number;
  zeroInitResidual: boolean;
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
  cudaAvailable: boolean;
  builtWithCuda: boolean;
  cudaDevices: { index: number; name: string; computeCapability: string; totalMemory: number }[];
  cudnnVersion: number;
  intraOpThreads: number;
  interOpThreads: number;
  cxx11Abi: boolean;
  mkldnn: boolean;
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
}

export interface NativeAugment {
  pad?: number;
  flip?: boolean;
  randomResizedCrop?: boolean;
  scaleMin?: number;
  scaleMax?: number;
  ratioMin?: number;
  ratioMax?: number;
  outHeight?: number;
  outWidth?: number;
  norm?: 'none' | 'per-pixel' | 'per-channel';
  mean?: Float32Array;
  meanShape?: number[];
  std?: Float32Array;
  channelsLast?: boolean;
}

export interface NativeTrainState {
  iteration: number;
  epoch: number;
  schedule: { warmedUp: boolean; plateauScale: number; plateauBest: number; plateauBad: number; plateauCooldownLeft: number };
  optimizerSteps: number;
  lossScale: number;
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
  state?: NativeTrainState;
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
}

export interface NativeBinding {
  createDataset(images: Uint8Array | Float32Array, shape: number[], labels: Int32Array | BigInt64Array, numClasses: number): Promise<NativeDataset>;
  startTraining(model: NativeModel, source: NativeDataset | NativeBatchQueue, validation: NativeDataset | undefined,
    test: NativeDataset | undefined, config: object, onEvent: (e: NativeEvent) => void): NativeRun;
  BatchQueue: new (capacity: number, batchesPerEpoch: number) => NativeBatchQueue;
  Model: new (spec: NativeNetSpec) => NativeModel;
  createModel(spec: NativeNetSpec, device: string): Promise<NativeModel>;
  info(): NativeInfo;
  fuse(model: NativeModel, height: number, width: number, channelsLast: boolean): Promise<NativeFused>;
  cudaMemoryStats(device: number): { allocated: number; reserved: number; peakAllocated: number; peakReserved: number; allocRetries: number; ooms: number };
  cudaEmptyCache(): void;
  importPth(pickle: Uint8Array, records: Record<string, Uint8Array>): Promise<NativeTensorData[]>;
  scheduleValues(config: object, ops: ({ iteration: number } | { trainError: number } | { metric: number })[]): number[];
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

export function native(): NativeBinding {
  if (binding) return binding;
  const file = addonPath();
  try {
    binding = require(file) as NativeBinding;
  } catch (e) {
    const reason = (e as Error).message;
    const hint = fs.existsSync(file)
      ? 'it exists but did not load (is libtorch still where it was when the addon was built?)'
      : 'it is not built yet: run `npm run build:native` (see the README for libtorch)';
    throw new Error(`resnet-torch: cannot load the native addon ${file}: ${hint}\n${reason}`);
  }
  return binding;
}
