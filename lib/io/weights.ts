// Weights in safetensors with torchvision's key names: what moves between PyTorch and us.
import { CheckpointError, inContext } from '../errors';
import type { NativeModel } from '../native';
import {
  DType,
  StoredTensor,
  TO_SAFETENSORS,
  TensorToWrite,
  readSafetensors,
  toFloatValues,
  typedArrayOf,
  writeSafetensors,
} from './safetensors';
import { packageVersion } from '../info';
import type { Preprocessing } from '../preprocess';

/** What a weights load matched, and what it did not. */
export interface LoadReport {
  /** Tensors loaded. */
  loaded: string[];
  /** In the model, not in the file. */
  missing: string[];
  /** In the file, not in the model. */
  unexpected: string[];
  /** In both, with different shapes or incompatible dtypes. */
  mismatched: {
    /** The tensor. */
    name: string;
    /** How it differs. */
    problem: string;
  }[];
}

/** How weights load: strictly (every tensor named and shaped as the model's), or not. */
export interface LoadOptions {
  /** Refuse the file unless every name, shape and dtype matches (default true). With false, load what
   *  matches and report the rest: a new head, a different class count. */
  strict?: boolean;
}

const FLOAT = new Set<DType>(['F32', 'F64', 'F16', 'BF16']);

/** Matches stored tensors against the model and copies those that fit; `file` names the source in errors. */
export async function applyState(
  handle: NativeModel,
  tensors: Map<string, StoredTensor>,
  file: string,
  options: LoadOptions = {},
): Promise<LoadReport> {
  const strict = options.strict ?? true;
  const report: LoadReport = { loaded: [], missing: [], unexpected: [], mismatched: [] };
  const entries: { name: string; shape: number[]; data: Float32Array | Float64Array | BigInt64Array }[] = [];
  const wanted = new Map(handle.stateEntries().map((e) => [e.name, e]));
  for (const [name, stored] of tensors) {
    const target = wanted.get(name);
    if (!target) {
      report.unexpected.push(name);
      continue;
    }
    const problem =
      stored.shape.length !== target.shape.length || stored.shape.some((d, i) => d !== target.shape[i])
        ? `shape [${stored.shape.join(', ')}] in the file, [${target.shape.join(', ')}] in the model`
        : (target.dtype === 'float32' || target.dtype === 'float64') && !FLOAT.has(stored.dtype)
          ? `dtype ${stored.dtype} in the file, ${target.dtype} in the model`
          : target.dtype === 'int64' && stored.dtype !== 'I64'
            ? `dtype ${stored.dtype} in the file, int64 in the model`
            : undefined;
    if (problem) {
      report.mismatched.push({ name, problem });
      continue;
    }
    entries.push({
      name,
      shape: stored.shape,
      data: target.dtype === 'int64' ? (typedArrayOf(stored) as BigInt64Array) : toFloatValues(stored),
    });
    report.loaded.push(name);
  }
  for (const [name, target] of wanted) {
    if (tensors.has(name)) continue;
    // PyTorch's BatchNorm loads a state without num_batches_tracked (Hugging Face and timm files omit it) as 0.
    if (name.endsWith('.num_batches_tracked') && target.dtype === 'int64')
      entries.push({ name, shape: target.shape, data: new BigInt64Array(1) });
    else report.missing.push(name);
  }
  const problems = [
    ...report.missing.map((n) => `missing ${n}`),
    ...report.unexpected.map((n) => `unexpected ${n}`),
    ...report.mismatched.map((m) => `${m.name}: ${m.problem}`),
  ];
  if (strict && problems.length > 0)
    throw new CheckpointError(
      file,
      `does not fit the model (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`,
    );
  try {
    await handle.importState(entries);
  } catch (e) {
    throw inContext(e, file);
  }
  return report;
}

/** The network's parameters and buffers as safetensors entries, in state_dict order. */
export async function stateTensors(handle: NativeModel): Promise<TensorToWrite[]> {
  const state = await handle.exportState();
  return state.map((t) => ({ name: t.name, dtype: TO_SAFETENSORS[t.dtype], shape: t.shape, data: t.data }));
}

/** Weights with the spec that rebuilds the network (without its seed and device) in the metadata. */
/** Weights with the spec that rebuilds the network (without its seed and device) and the preprocessing it was
 *  trained with in the metadata: all a service needs to predict from image bytes. */
export async function saveWeights(
  handle: NativeModel,
  spec: { seed?: number; device?: string; classNames?: string[] },
  file: string,
  preprocessing?: Preprocessing,
): Promise<void> {
  const tensors = await stateTensors(handle);
  const { seed: _seed, device: _device, ...rest } = spec;
  await writeSafetensors(file, tensors, {
    format: 'pt',
    'resnet-torch.version': packageVersion(),
    'resnet-torch.spec': JSON.stringify(rest),
    ...(preprocessing ? { 'resnet-torch.preprocessing': JSON.stringify(preprocessing) } : {}),
  });
}

/** The metadata format of a full training checkpoint (lib/train/checkpoint.ts writes them). */
export const CHECKPOINT_FORMAT = 'resnet-torch/checkpoint';

/** Whether a safetensors file's metadata is a full training checkpoint's. */
export function isCheckpointMetadata(metadata: Record<string, string>): boolean {
  return metadata.format === CHECKPOINT_FORMAT;
}

/** Weights from a safetensors file: a weights file, or the model.* tensors of a full checkpoint. */
export async function loadWeights(handle: NativeModel, file: string, options: LoadOptions = {}): Promise<LoadReport> {
  const { tensors, metadata } = await readSafetensors(file);
  if (!isCheckpointMetadata(metadata)) return applyState(handle, tensors, file, options);
  const model = new Map([...tensors].filter(([name]) => name.startsWith('model.')).map(([n, t]) => [n.slice(6), t]));
  return applyState(handle, model, file, options);
}
