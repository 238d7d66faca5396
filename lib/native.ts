// The only file that loads the compiled addon, and the types of what it exports. Everything else in lib/
// goes through the typed facade; nothing outside lib/ should need this.
import * as fs from 'fs';
import * as path from 'path';

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

export interface NativeBinding {
  Model: new (spec: NativeNetSpec) => NativeModel;
  createModel(spec: NativeNetSpec, device: string): Promise<NativeModel>;
  info(): NativeInfo;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  checkDevice(device: string): string;
}

const ADDON = 'resnet_torch.node';

/** Where the addon is: $RESNET_TORCH_ADDON, or build/Release under the package root. */
export function addonPath(): string {
  if (process.env.RESNET_TORCH_ADDON) return path.resolve(process.env.RESNET_TORCH_ADDON);
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'build', 'Release', ADDON);
    if (fs.existsSync(candidate)) return candidate;
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'native'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return path.join(__dirname, '..', 'build', 'Release', ADDON);
    dir = parent;
  }
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
