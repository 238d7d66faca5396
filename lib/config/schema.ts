// The run configuration: one schema for JSON and YAML files (published as configs/schema.json), checked
// with the same validator as the API, so a bad value is refused with its path:
//   train.optimizer.momentum: expected a number in [0, 1), got "x"
import { ModelSpec, modelSpecFields } from '../model/spec';
import { TrainOptions, trainFields } from '../train/options';
import { CheckpointPolicy, checkpointFields } from '../train/options/checkpoint';
import { JsonSchema, Schema, s } from '../validate';

export type DatasetKind = 'fashion-mnist' | 'mnist' | 'idx' | 'cifar10' | 'cifar100' | 'image-folder' | 'synthetic';

export interface DatasetConfig {
  type: DatasetKind;
  /** Folder of the files (Fashion-MNIST defaults to Debian's /usr/share/datasets/fashion-mnist). */
  path?: string;
  split?: 'train' | 'test';
  /** CIFAR-100: 'fine' (100 classes) or 'coarse' (20). */
  labels?: 'fine' | 'coarse';
  /** Image folders: output size, channels, streaming (for folders larger than memory), bad images. */
  size?: number | [number, number];
  /** Image folders: resize the shorter edge to this, then centre-crop `size` (torchvision's Resize + CenterCrop). */
  resize?: number;
  channels?: 1 | 3;
  stream?: boolean;
  onBadImage?: 'fail' | 'skip';
  /** Use only this many images (a seeded random subset), for short runs. */
  limit?: number;
  /** synthetic: random images of this shape and class count (benchmarks, smoke tests). */
  shape?: [number, number, number];
  classes?: number;
  count?: number;
}

export interface RunConfig {
  name: string;
  description?: string;
  seed?: number;
  model: Omit<ModelSpec, 'seed' | 'classNames'>;
  data: {
    train: DatasetConfig;
    /** A held-out part of the training set (the paper's 45k/5k: 5000), or its own dataset. */
    validation?: { fromTrain: number } | DatasetConfig;
    /** The test set (default: the training dataset's test split, when it has one). */
    test?: DatasetConfig | false;
  };
  train: TrainOptions;
  checkpoint?: Pick<CheckpointPolicy, 'everyIterations' | 'everyEpochs' | 'keepLast' | 'keepBest'>;
  /** Where runs go (default: runs/). */
  output?: { dir?: string };
}

const size = s.union(
  s.integer({ min: 1, max: 16384 }),
  s.array(s.integer({ min: 1, max: 16384 }), { minLength: 2, maxLength: 2 }),
);

export const datasetSchema: Schema<DatasetConfig> = s.object<DatasetConfig>({
  type: s
    .enum(['fashion-mnist', 'mnist', 'idx', 'cifar10', 'cifar100', 'image-folder', 'synthetic'] as const)
    .doc(
      "fashion-mnist (Debian's package by default), mnist/idx (an MNIST-layout folder), cifar10, cifar100 (binary versions), image-folder, synthetic",
    ),
  path: s.optional(s.string()),
  split: s.optional(s.enum(['train', 'test'] as const)),
  labels: s.optional(s.enum(['fine', 'coarse'] as const)),
  size: s.optional(size),
  resize: s.optional(s.integer({ min: 1, max: 16384 })),
  channels: s.optional(s.enum([1, 3] as const)),
  stream: s.optional(s.boolean()),
  onBadImage: s.optional(s.enum(['fail', 'skip'] as const)),
  limit: s.optional(s.integer({ min: 1 })),
  shape: s.optional(s.array(s.integer({ min: 1, max: 4096 }), { minLength: 3, maxLength: 3 })),
  classes: s.optional(s.integer({ min: 1 })),
  count: s.optional(s.integer({ min: 1 })),
});

// The model section is the API's spec without the seed (the run's) and class names (the data's).
const { seed: _seed, classNames: _classNames, ...modelFields } = modelSpecFields;
const modelSchema = s.object(modelFields);

export const runConfigSchema: Schema<RunConfig> = s.object<RunConfig>({
  name: s.string().doc('names the run folder'),
  description: s.optional(s.string({ nonEmpty: false })),
  seed: s.optional(s.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  model: modelSchema,
  data: s.object({
    train: datasetSchema,
    validation: s.optional(s.union(s.object({ fromTrain: s.number({ min: 0, minExclusive: true }) }), datasetSchema)),
    test: s.optional(s.union(datasetSchema, s.literal(false))),
  }),
  train: s.object(trainFields),
  checkpoint: s.optional(s.object(checkpointFields)),
  output: s.optional(s.object({ dir: s.optional(s.string()) })),
});

/** The JSON Schema of a run config (configs/schema.json is this, written by scripts/write-presets.js). */
export function runConfigJsonSchema(): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/resnet-torch/resnet-torch/configs/schema.json',
    title: 'resnet-torch run configuration',
    ...runConfigSchema.jsonSchema(),
  };
}
