// Where eval, predict and export get their model: a checkpoint (full state, or the CLI's weights file
// with its run folder's config).
import * as fs from 'fs';
import * as path from 'path';

import { loadCheckpoint } from '../../train/checkpoint';
import { readConfigFile, resolveConfig, storedRunConfig } from '../../config/load';
import { RunConfig } from '../../config/schema';
import { readSafetensors } from '../../io/safetensors';
import { isCheckpointMetadata } from '../../io/weights';
import { loadModel } from '../../model/load';
import { Model } from '../../model/model';
import { UsageError } from '../args';
import { DEVICE_FLAG } from '../command';

export const MODEL_FLAGS = {
  arch: { type: 'string' as const, description: 'arch of a bare weights file (otherwise read from the file)' },
  ...DEVICE_FLAG,
};

/** The file a target names: itself, or for a run folder its best checkpoint, else its last, else its weights. */
export function modelFileOf(target: string): string {
  if (!fs.existsSync(target) || !fs.statSync(target).isDirectory()) return target; // reading it names the problem
  const candidates = [
    path.join(target, 'checkpoints', 'best.safetensors'),
    path.join(target, 'checkpoints', 'last.safetensors'),
  ];
  return candidates.find((c) => fs.existsSync(c)) ?? path.join(target, 'weights.safetensors');
}

/** A model from a checkpoint, a run folder, or a weights file (whose metadata names its spec). */
export async function modelFromTarget(
  target: string | undefined,
  flags: Record<string, unknown>,
): Promise<{ model: Model; config?: RunConfig; dataShape?: number[] }> {
  if (!target) throw new UsageError('name a checkpoint, a weights file or a run folder');
  const device = (flags.device as string | undefined) ?? 'cpu';
  const file = modelFileOf(target);
  let config: RunConfig | undefined;
  if (file !== target && fs.existsSync(path.join(target, 'config.yaml')))
    config = resolveConfig(await readConfigFile(path.join(target, 'config.yaml')));
  const { metadata } = await readSafetensors(file);
  if (isCheckpointMetadata(metadata)) {
    const { model, checkpoint } = await loadCheckpoint(file, { device });
    config ??= storedRunConfig(checkpoint);
    return { model, config, dataShape: checkpoint.data?.shape };
  }
  if (!metadata['resnet-torch.spec'] && !flags.arch)
    throw new UsageError(`${file} does not say which network it holds: pass --arch`);
  const model = await loadModel(file, { device, ...(flags.arch ? { arch: flags.arch as string } : {}) });
  return { model, config };
}
