// What a user asks for (ModelSpec) and the fully resolved network description the core receives.
import { randomInt } from 'crypto';

import {
  ARCH_PATTERNS,
  Architecture,
  BlockKind,
  DEFAULT_GROUPS,
  DEFAULT_WIDTH_PER_GROUP,
  MAX_GROUPS,
  MAX_WIDTH_PER_GROUP,
  Attention,
  ShortcutOption,
  StemKind,
  VARIANT_DEFAULTS,
  resolveArch,
} from './archs';
import { ValidationError } from '../errors';
import { Fields, Schema, s } from '../validate';

/** What createModel() builds: a named architecture or an explicit structure, and its options. */
export interface ModelSpec {
  /** A named network: 'resnet50', 'plain34', 'cifar-resnet56', 'cifar-plain20', 'preact-resnet164', ... */
  arch?: string;
  /** Explicit structure instead of `arch`: the block kind, blocks per stage, and optionally the rest. */
  block?: BlockKind;
  /** Blocks per stage, for an explicit structure. */
  depths?: number[];
  /** Base channels per stage (default: 64-128-256-512 with the ImageNet stem, 16-32-64 with the CIFAR one). */
  widths?: number[];
  /** The input stem, for an explicit structure. */
  stem?: StemKind;
  /** Pre-activation blocks, for an explicit structure. */
  preact?: boolean;
  /** Shortcut option (the paper's Table 3): 'A' zero-padding, 'B' projection where the shape changes,
   *  'C' projection everywhere, 'none' for a plain net. Default: the arch's own (A for CIFAR, B for ImageNet). */
  shortcut?: ShortcutOption;
  /** Classes of the classifier (default 1000 with the ImageNet stem, 10 with the CIFAR one). */
  numClasses?: number;
  /** Channels of the input images (default 3). */
  inChannels?: number;
  /** Where a bottleneck strides: 'conv3x3' (torchvision, default) or 'conv1x1' (the paper). */
  stride?: 'conv3x3' | 'conv1x1';
  /** Groups of each bottleneck's 3×3 convolution (ResNeXt's cardinality). Default: the arch's (1 for ResNet, 32 for
   *  resnext50_32x4d); any bottleneck net takes it, e.g. `{ arch: 'resnet50', groups: 32, widthPerGroup: 4 }`. */
  groups?: number;
  /** Channels per group at base width 64: a bottleneck is ⌊width · widthPerGroup / 64⌋ · groups wide
   *  (torchvision's `width_per_group`). Default: the arch's (64; 4 for resnext50_32x4d, 128 for wide_resnet50_2). */
  widthPerGroup?: number;
  /** ResNet-C's deep stem (three 3×3 convolutions instead of the 7×7), as timm's resnet50c/d. Default: the arch's. */
  deepStem?: boolean;
  /** The deep stem's first width (it ends with twice as many channels). Default: the arch's (32; 64 in resnet50s). */
  stemWidth?: number;
  /** ResNet-D's shortcut: average-pool 2×2, then a stride-1 1×1 projection (timm's avg_down). Default: the arch's. */
  avgDown?: boolean;
  /** 'se': squeeze-and-excitation on each block's residual branch (timm's seresnet). Default: the arch's. */
  attention?: Attention;
  /** Stochastic depth (timm's drop_path_rate): the last block's residual branch is dropped per sample with this
   *  probability in training, earlier blocks linearly less (0 at the first); the identity in eval. Default 0. */
  dropPath?: number;
  /** Start each residual block as the identity (last BN γ = 0). */
  zeroInitResidual?: boolean;
  /** λ in h(x) = λx (the Identity Mappings analysis); default 1. */
  shortcutScale?: number;
  /** 'cpu', 'cuda' or 'cuda:N'. */
  device?: string;
  /** Element type of the parameters and of the computation: 'float32' (default), or 'float64' to verify against a
   *  reference where float32 rounding could decide a comparison (PyTorch's gradcheck does the same). float64 trains
   *  several times slower (no oneDNN kernels), has no mixed precision or CUDA graphs, and predictions, ONNX export and
   *  the folded inference model still run in float32. */
  dtype?: 'float32' | 'float64';
  /** Seed of the initialisation; random when absent. */
  seed?: number;
  /** Names of the classes, for predictions. */
  classNames?: string[];
  /** Start from these weights: a safetensors weights file or checkpoint of ours, or a `torch.save(state_dict)`
   *  .pth such as torchvision's. Loaded strictly, so numClasses must match the file's classifier: change the head
   *  afterwards with replaceHead(). loadModel(file) also takes the file's spec, class names and preprocessing. */
  weights?: string;
}

/** A spec with every default filled in: the architecture (its shortcut possibly overridden) and the options. */
export interface ResolvedModelSpec extends Omit<
  Architecture,
  'plain' | 'groups' | 'widthPerGroup' | 'deepStem' | 'stemWidth' | 'avgDown' | 'attention'
> {
  /** The architecture's name, when built from one. */
  arch?: string;
  /** Classes of the classifier. */
  numClasses: number;
  /** Channels of the input images. */
  inChannels: number;
  /** Where a bottleneck strides. */
  stride: 'conv3x3' | 'conv1x1';
  /** Groups of each bottleneck's 3×3 convolution. */
  groups: number;
  /** Channels per group at base width 64. */
  widthPerGroup: number;
  /** The deep stem (ResNet-C). */
  deepStem: boolean;
  /** The deep stem's first width. */
  stemWidth: number;
  /** The average-pool shortcut (ResNet-D). */
  avgDown: boolean;
  /** Attention on the residual branch. */
  attention: Attention;
  /** Stochastic depth of the last block. */
  dropPath: number;
  /** Each residual block starts as the identity. */
  zeroInitResidual: boolean;
  /** λ in h(x) = λx. */
  shortcutScale: number;
  /** Where the weights are. */
  device: string;
  /** Element type of the parameters. */
  dtype: 'float32' | 'float64';
  /** Seed of the initialisation. */
  seed: number;
  /** Names of the classes. */
  classNames?: string[];
}

const positiveInts = s.array(s.integer({ min: 1 }), { minLength: 1, maxLength: 8 });

/** The spec's fields, shared with the run config's `model` section (lib/config/schema.ts). */
export const modelSpecFields: Fields = {
  weights: s.optional(
    s
      .string()
      .doc(
        "Start from these weights (fine-tuning): a safetensors weights file or checkpoint of ours, or a .pth state dict (torch.save, e.g. torchvision's)",
      ),
  ),
  arch: s.optional(
    s
      .string()
      .doc(
        'resnet18..152, resnext50_32x4d, resnext101_32x8d, resnext101_64x4d, wide_resnet50_2, wide_resnet101_2, timm variants (resnet50c/d/s, seresnet50, seresnext50_32x4d, resnext50d_32x4d), plain18/34, cifar-resnetN (6n+2), cifar-plainN, cifar-preact-resnetN, preact-resnetN (9n+2)',
      ),
  ),
  block: s.optional(s.enum(['basic', 'bottleneck'] as const)),
  depths: s.optional(positiveInts),
  widths: s.optional(s.array(s.integer({ min: 1, max: 65536 }), { minLength: 1, maxLength: 8 })),
  stem: s.optional(s.enum(['imagenet', 'cifar'] as const)),
  preact: s.optional(s.boolean()),
  shortcut: s.optional(s.enum(['A', 'B', 'C', 'none'] as const)),
  numClasses: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  inChannels: s.optional(s.integer({ min: 1, max: 4096 })),
  stride: s.optional(s.enum(['conv3x3', 'conv1x1'] as const)),
  groups: s.optional(s.integer({ min: 1, max: MAX_GROUPS }).doc('Groups of the bottleneck 3x3 convolution (ResNeXt)')),
  widthPerGroup: s.optional(
    s
      .integer({ min: 1, max: MAX_WIDTH_PER_GROUP })
      .doc(
        'Channels per group at base width 64 (torchvision width_per_group: 4 in resnext50_32x4d, 128 in wide_resnet50_2)',
      ),
  ),
  deepStem: s.optional(s.boolean().doc('ResNet-C: three 3x3 convolutions instead of the 7x7 stem (timm resnet50c/d)')),
  stemWidth: s.optional(
    s.integer({ min: 1, max: 4096 }).doc("The deep stem's first width (32, or 64 in timm's resnet50s)"),
  ),
  avgDown: s.optional(s.boolean().doc('ResNet-D: average-pool before a stride-1 projection shortcut (timm avg_down)')),
  attention: s.optional(s.enum(['none', 'se'] as const).doc('se: squeeze-and-excitation on each residual branch')),
  dropPath: s.optional(
    s.number({ min: 0, max: 1, maxExclusive: true }).doc('Stochastic depth of the last block (timm drop_path_rate)'),
  ),
  zeroInitResidual: s.optional(s.boolean()),
  shortcutScale: s.optional(s.number({ min: 0, minExclusive: true, max: 100 })),
  device: s.optional(s.string()),
  dtype: s.optional(s.enum(['float32', 'float64'] as const)),
  seed: s.optional(s.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  classNames: s.optional(s.array(s.string({ nonEmpty: false }))),
};

const specSchema: Schema<ModelSpec> = s.object<ModelSpec>(modelSpecFields);

/** The structure a spec names: its arch's (checked against any explicit field), or its explicit fields. */
function structureOf(spec: ModelSpec): Architecture {
  if (spec.arch !== undefined) {
    const found = resolveArch(spec.arch);
    if (!found) throw new ValidationError('arch', spec.arch, `one of ${ARCH_PATTERNS.join(', ')}`);
    // A resolved spec (as checkpoints store it) names both; they must then agree.
    for (const key of ['block', 'depths', 'widths', 'stem', 'preact'] as const) {
      if (spec[key] !== undefined && JSON.stringify(spec[key]) !== JSON.stringify(found[key]))
        throw new ValidationError(
          key,
          spec[key],
          `nothing, or ${JSON.stringify(found[key])} as ${spec.arch} has`,
          `${key}: give either arch or an explicit structure (block, depths, ...), not both (${spec.arch} has ${key} ${JSON.stringify(found[key])})`,
        );
    }
    return found;
  }
  if (spec.block === undefined || spec.depths === undefined)
    throw new ValidationError(
      spec.block === undefined ? 'block' : 'depths',
      undefined,
      'a value',
      'a spec needs either arch (e.g. "resnet50") or block and depths',
    );
  const stem = spec.stem ?? 'imagenet';
  const widths = spec.widths ?? (stem === 'imagenet' ? [64, 128, 256, 512] : [16, 32, 64]).slice(0, spec.depths.length);
  if (widths.length !== spec.depths.length)
    throw new ValidationError('widths', spec.widths, `an array of ${spec.depths.length} widths, one per stage`);
  return {
    block: spec.block,
    depths: spec.depths,
    widths,
    stem,
    preact: spec.preact ?? false,
    shortcut: stem === 'cifar' ? 'A' : 'B',
    plain: false,
    groups: DEFAULT_GROUPS,
    widthPerGroup: DEFAULT_WIDTH_PER_GROUP,
    ...VARIANT_DEFAULTS,
  };
}

/** The Bag-of-Tricks and attention options: an arch's own (a spec may repeat them), else the spec's or the defaults. */
function variantOf(
  spec: ModelSpec,
  arch: Architecture,
  shortcut: ShortcutOption,
): Pick<ResolvedModelSpec, 'deepStem' | 'stemWidth' | 'avgDown' | 'attention' | 'dropPath'> {
  for (const key of ['deepStem', 'stemWidth', 'avgDown', 'attention'] as const) {
    const own = key === 'stemWidth' ? arch.deepStem : arch[key] !== VARIANT_DEFAULTS[key];
    if (own && spec[key] !== undefined && spec[key] !== arch[key])
      throw new ValidationError(
        key,
        spec[key],
        `nothing, or ${JSON.stringify(arch[key])} as ${spec.arch} has`,
        `${key}: ${spec.arch} has ${key} ${JSON.stringify(arch[key])}; start from the plain depth (e.g. resnet50) to choose it`,
      );
  }
  const deepStem = spec.deepStem ?? arch.deepStem;
  const stemWidth = spec.stemWidth ?? arch.stemWidth;
  const avgDown = spec.avgDown ?? arch.avgDown;
  if (deepStem && arch.stem !== 'imagenet')
    throw new ValidationError(
      'deepStem',
      true,
      'false with the CIFAR stem',
      "deepStem: replaces the ImageNet stem's 7x7; the CIFAR stem is one 3x3 already",
    );
  if (!deepStem && stemWidth !== VARIANT_DEFAULTS.stemWidth)
    throw new ValidationError(
      'stemWidth',
      stemWidth,
      'nothing without deepStem',
      'stemWidth: only the deep stem (deepStem: true) has a width of its own',
    );
  if (avgDown && shortcut !== 'B' && shortcut !== 'C')
    throw new ValidationError(
      'avgDown',
      true,
      'a projection shortcut (B or C)',
      `avgDown: shortcut ${shortcut} has no projection to pool before`,
    );
  return { deepStem, stemWidth, avgDown, attention: spec.attention ?? arch.attention, dropPath: spec.dropPath ?? 0 };
}

/** groups and widthPerGroup: a ResNeXt or Wide arch's own (a spec may repeat them), else the spec's or the defaults. */
function groupingOf(spec: ModelSpec, arch: Architecture): { groups: number; widthPerGroup: number } {
  const own = arch.groups !== DEFAULT_GROUPS || arch.widthPerGroup !== DEFAULT_WIDTH_PER_GROUP;
  for (const key of ['groups', 'widthPerGroup'] as const) {
    if (own && spec[key] !== undefined && spec[key] !== arch[key])
      throw new ValidationError(
        key,
        spec[key],
        `nothing, or ${arch[key]} as ${spec.arch} has`,
        `${key}: ${spec.arch} has ${key} ${arch[key]}; for another, start from the plain depth (e.g. resnet50) and give groups and widthPerGroup`,
      );
  }
  const groups = spec.groups ?? arch.groups;
  const widthPerGroup = spec.widthPerGroup ?? arch.widthPerGroup;
  if (arch.block === 'basic' && (groups !== DEFAULT_GROUPS || widthPerGroup !== DEFAULT_WIDTH_PER_GROUP))
    throw new ValidationError(
      groups !== DEFAULT_GROUPS ? 'groups' : 'widthPerGroup',
      groups !== DEFAULT_GROUPS ? groups : widthPerGroup,
      `${groups !== DEFAULT_GROUPS ? DEFAULT_GROUPS : DEFAULT_WIDTH_PER_GROUP} for basic blocks`,
      `${groups !== DEFAULT_GROUPS ? 'groups' : 'widthPerGroup'}: basic blocks have no grouped or widened 3x3 (torchvision's BasicBlock refuses them too); use a bottleneck net such as resnet50`,
    );
  for (const width of arch.widths)
    if (Math.floor((width * widthPerGroup) / 64) < 1)
      throw new ValidationError(
        'widthPerGroup',
        widthPerGroup,
        `at least ${Math.ceil(64 / width)} for stage width ${width}`,
        `widthPerGroup: a bottleneck of width ${width} at ${widthPerGroup} per group has no channel in each group (⌊${width}·${widthPerGroup}/64⌋ = 0)`,
      );
  return { groups, widthPerGroup };
}

/** Validates a spec and fills every default; throws ValidationError naming the field. */
export function resolveSpec(input: unknown): ResolvedModelSpec {
  const spec = specSchema.parse(input, '');
  const arch = structureOf(spec);
  if (arch.plain && spec.shortcut !== undefined && spec.shortcut !== 'none')
    throw new ValidationError(
      'shortcut',
      spec.shortcut,
      '"none" for a plain network',
      `shortcut: ${spec.arch} is a plain network and has no shortcut; use the resnet of the same depth for "${spec.shortcut}"`,
    );
  const shortcut = spec.shortcut ?? arch.shortcut;
  if (spec.shortcutScale !== undefined && spec.shortcutScale !== 1 && shortcut === 'none')
    throw new ValidationError(
      'shortcutScale',
      spec.shortcutScale,
      'nothing for a plain network',
      'shortcutScale: a plain network has no shortcut to scale',
    );
  const numClasses = spec.numClasses ?? (arch.stem === 'imagenet' ? 1000 : 10);
  if (spec.classNames && spec.classNames.length !== numClasses)
    throw new ValidationError('classNames', spec.classNames, `${numClasses} names, one per class`);
  if (spec.stride !== undefined && arch.block !== 'bottleneck' && spec.stride !== 'conv3x3')
    throw new ValidationError(
      'stride',
      spec.stride,
      '"conv3x3" for basic blocks',
      'stride: only bottleneck blocks have a 1x1 convolution to put the stride on',
    );
  return {
    ...(spec.arch !== undefined ? { arch: spec.arch } : {}),
    block: arch.block,
    depths: [...arch.depths],
    widths: [...arch.widths],
    stem: arch.stem,
    preact: arch.preact,
    shortcut,
    numClasses,
    inChannels: spec.inChannels ?? 3,
    stride: spec.stride ?? 'conv3x3',
    ...groupingOf(spec, arch),
    ...variantOf(spec, arch, shortcut),
    zeroInitResidual: spec.zeroInitResidual ?? false,
    shortcutScale: spec.shortcutScale ?? 1,
    device: spec.device ?? 'cpu',
    dtype: spec.dtype ?? 'float32',
    seed: spec.seed ?? randomInt(0, 2 ** 47),
    ...(spec.classNames ? { classNames: [...spec.classNames] } : {}),
  };
}

/** The `inputSize` option of summary(), exportOnnx() and optimizeForInference(): a side or [height, width]. */
export const inputSizeSchema: Schema<number | [number, number]> = s.union<number | [number, number]>(
  s.integer({ min: 1, max: 16384 }),
  s.array(s.integer({ min: 1, max: 16384 }), { minLength: 2, maxLength: 2 }),
);

/**
 * The input [height, width] that traces, exports and the folded model use: the option, else the training
 * crop, else 224 for the ImageNet family and 32 for the CIFAR one. Checked against the net's minimum side.
 */
export function resolveInputSize(
  spec: Pick<ResolvedModelSpec, 'stem'>,
  option: unknown,
  trainedSize: [number, number] | undefined,
  minSide: number,
): [number, number] {
  const size =
    option === undefined
      ? (trainedSize ?? (spec.stem === 'imagenet' ? 224 : 32))
      : inputSizeSchema.parse(option, 'inputSize');
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  for (const v of [h, w]) s.integer({ min: minSide, max: 16384 }).parse(v, 'inputSize');
  return [h, w];
}
