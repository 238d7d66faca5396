// A ready model from one file: a full checkpoint, or a weights file whose metadata names its spec and the
// preprocessing it was trained with (what saveWeights and the CLI's run folders write). What a service needs.
import { CheckpointError, ValidationError } from '../errors';
import { StoredTensor, readSafetensors } from '../io/safetensors';
import { applyState, isCheckpointMetadata } from '../io/weights';
import { Preprocessing, preprocessingSchema } from '../preprocess';
import { s } from '../validate';
import { Model, createModel } from './model';
import { ModelSpec } from './spec';

/** loadModel()'s options. */
export interface LoadModelOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** The architecture of a weights file that does not record its spec (a bare torchvision export). */
  arch?: string;
}

/** Builds the network a checkpoint or weights file describes and loads it, with its class names and
 *  preprocessing. The file's metadata is checked: a malformed spec or preprocessing is a CheckpointError. */
export async function loadModel(file: string, options: LoadModelOptions = {}): Promise<Model> {
  s.string().parse(file, 'file');
  s.object({ device: s.optional(s.string()), arch: s.optional(s.string()) }).parse(options, 'options');
  const device = options.device ?? 'cpu';
  const { metadata, tensors } = await readSafetensors(file);
  if (isCheckpointMetadata(metadata)) {
    const spec = parseMetadata(file, metadata, 'spec') as ModelSpec;
    const state = new Map([...tensors].filter(([n]) => n.startsWith('model.')).map(([n, t]) => [n.slice(6), t]));
    return modelFromState(
      file,
      spec,
      device,
      state,
      metadata.preprocessing ? parseMetadata(file, metadata, 'preprocessing') : undefined,
    );
  }
  let spec: ModelSpec;
  if (metadata['resnet-torch.spec']) spec = parseMetadata(file, metadata, 'resnet-torch.spec') as ModelSpec;
  else if (options.arch) spec = { arch: options.arch };
  else
    throw new CheckpointError(
      file,
      'does not say which network it holds (no "resnet-torch.spec" metadata): pass the arch',
    );
  const preprocessing = metadata['resnet-torch.preprocessing']
    ? parseMetadata(file, metadata, 'resnet-torch.preprocessing')
    : undefined;
  return modelFromState(file, { ...spec, seed: 0 }, device, tensors, preprocessing);
}

/**
 * The network of `spec` on `device` holding `tensors` (strict, as loadWeights), with the preprocessing a file
 * recorded (checked against the model): what a checkpoint or a weights file describes. A spec or preprocessing
 * that does not fit is the file's CheckpointError; the model is disposed when it cannot be loaded.
 */
export async function modelFromState(
  file: string,
  spec: ModelSpec,
  device: string,
  tensors: Map<string, StoredTensor>,
  preprocessing: unknown,
): Promise<Model> {
  let model: Model;
  try {
    model = await createModel({ ...spec, device });
  } catch (e) {
    if (e instanceof ValidationError) throw new CheckpointError(file, `metadata spec is invalid: ${e.message}`);
    throw e;
  }
  try {
    await applyState(model.handle(), tensors, file, { strict: true });
    if (preprocessing !== undefined) model.preprocessing = checkPreprocessing(file, preprocessing, model.inChannels);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

function parseMetadata(file: string, metadata: Record<string, string>, key: string): unknown {
  try {
    return JSON.parse(metadata[key]);
  } catch {
    throw new CheckpointError(file, `metadata "${key}" is not valid JSON`);
  }
}

/** Preprocessing from a file, checked against the model it will feed: no NaN from a short mean. */
export function checkPreprocessing(file: string, value: unknown, channels: number): Preprocessing {
  let p: Preprocessing;
  try {
    p = preprocessingSchema.parse(value, 'preprocessing');
  } catch (e) {
    throw new CheckpointError(file, `metadata preprocessing is invalid: ${(e as Error).message}`);
  }
  if (p.normalize === 'none') return p;
  const shape = p.meanShape ?? [p.mean?.length ?? 0];
  const wanted = p.normalize === 'per-pixel' ? shape.reduce((a, b) => a * b, 1) : channels;
  const problem =
    shape[0] !== channels
      ? `mean is for ${shape[0]} channels, the model takes ${channels}`
      : p.mean?.length !== wanted
        ? `mean has ${p.mean?.length ?? 0} values, expected ${wanted}`
        : p.normalize === 'per-channel' && p.std && p.std.length !== channels
          ? `std has ${p.std.length} values, expected ${channels}`
          : undefined;
  if (problem) throw new CheckpointError(file, `metadata preprocessing does not fit: ${problem}`);
  return p;
}
