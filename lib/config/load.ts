// Config files (JSON or YAML), presets from configs/, and --set overrides, resolved into one validated,
// frozen RunConfig.
import { promises as fsp } from 'fs';
import * as path from 'path';

import YAML from 'yaml';

import { ValidationError } from '../errors';
import { isPlainObject } from '../validate';
import { packageRoot } from '../paths';
import { RunConfig, runConfigSchema } from './schema';

export const PRESETS_DIR = path.join(packageRoot(), 'configs');

export async function listPresets(): Promise<string[]> {
  try {
    return (await fsp.readdir(PRESETS_DIR))
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => f.replace(/\.ya?ml$/, ''))
      .sort();
  } catch {
    return [];
  }
}

/** Deeper than any run config: past it a document is refused before the recursive validation could overflow. */
const MAX_CONFIG_DEPTH = 64;

export function parseConfigText(text: string, file: string): unknown {
  let value: unknown;
  try {
    value = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text, { prettyErrors: true });
  } catch (e) {
    throw new ValidationError(
      file,
      undefined,
      'a valid JSON or YAML document',
      `${file}: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  if (depthOver(value, MAX_CONFIG_DEPTH))
    throw new ValidationError(
      file,
      undefined,
      `a document nested at most ${MAX_CONFIG_DEPTH} levels deep`,
      `${file}: nested more than ${MAX_CONFIG_DEPTH} levels deep (a run config needs about 4)`,
    );
  return value;
}

/** Whether `value` nests objects or arrays more than `limit` deep (iterative: a deep document cannot overflow it). */
function depthOver(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new ValidationError(
      'config',
      file,
      'a readable file',
      `${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  return parseConfigText(text, file);
}

export async function readPreset(name: string): Promise<unknown> {
  const presets = await listPresets();
  if (!presets.includes(name)) throw new ValidationError('preset', name, `one of ${presets.join(', ')}`);
  return readConfigFile(path.join(PRESETS_DIR, `${name}.yaml`));
}

// Keys of which a config gives one: setting either with --set removes the other, so that the later setting wins
// (an epoch-based preset trained for N iterations with --set train.iterations=N).
const EITHER_OR: [string, string][] = [
  ['epochs', 'iterations'],
  ['everyEpochs', 'everyIterations'],
];

/** Applies "a.b.c=value" (value parsed as YAML: numbers, booleans, lists) to a plain config object; "a.b.c=" (no
 *  value) removes the key. */
export function applyOverride(config: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0)
    throw new ValidationError(
      '--set',
      assignment,
      'key.path=value',
      `--set: expected key.path=value, got ${JSON.stringify(assignment)}`,
    );
  const key = assignment.slice(0, eq).trim();
  const text = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = YAML.parse(text);
  } catch {
    value = text;
  }
  const parts = key.split('.');
  if (parts.some((p) => p.length === 0 || p === '__proto__' || p === 'constructor' || p === 'prototype'))
    throw new ValidationError('--set', key, 'a dotted key path', `--set: bad key path ${JSON.stringify(key)}`);
  let node: Record<string, unknown> = config;
  for (const part of parts.slice(0, -1)) {
    if (node[part] === undefined) node[part] = {};
    if (!isPlainObject(node[part]))
      throw new ValidationError(key, node[part], 'an object', `--set ${key}: ${part} is not an object`);
    node = node[part] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1];
  if (text.trim() === '') {
    delete node[last];
    return;
  }
  for (const pair of EITHER_OR) if (pair.includes(last)) delete node[pair[pair[0] === last ? 1 : 0]];
  node[last] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Validates a config object (after overrides) into a frozen RunConfig. */
export function resolveConfig(raw: unknown, overrides: string[] = []): RunConfig {
  const config = structuredClone(raw);
  if (!isPlainObject(config))
    throw new ValidationError('', raw, 'a config object', 'the config must be an object (a YAML mapping)');
  for (const o of overrides) applyOverride(config, o);
  const parsed = runConfigSchema.parse(config, '');
  if (parsed.model.arch === undefined && (parsed.model.block === undefined || parsed.model.depths === undefined))
    throw new ValidationError(
      'model.arch',
      undefined,
      'an arch name, or block and depths',
      'model.arch: required (or model.block and model.depths)',
    );
  if (parsed.train.epochs === undefined && parsed.train.iterations === undefined)
    throw new ValidationError(
      'train.epochs',
      undefined,
      'train.epochs or train.iterations',
      'train.epochs: required (or train.iterations)',
    );
  return deepFreeze(parsed);
}

export function configToYaml(config: RunConfig): string {
  return YAML.stringify(config, { lineWidth: 0 });
}

/** The text of a run folder's config.yaml (and of the config stored in its checkpoints). */
export function configYaml(config: RunConfig): string {
  return `# resnet-torch run configuration (resolved)\n${configToYaml(config)}`;
}

/** The run config a checkpoint written by the CLI stores (metadata "config"), resolved; undefined in one the API
 *  wrote. */
export function storedRunConfig(checkpoint: { file: string; metadata: Record<string, string> }): RunConfig | undefined {
  const text = checkpoint.metadata.config;
  return text === undefined ? undefined : resolveConfig(parseConfigText(text, `${checkpoint.file} (config)`));
}
