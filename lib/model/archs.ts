// Depth is data: every network of the two papers as a row of this table, or a name pattern for the
// families defined for any depth (CIFAR 6n+2, pre-activation 9n+2).

/** The residual block: two 3×3 convolutions ('basic') or 1×1-3×3-1×1 ('bottleneck'). */
export type BlockKind = 'basic' | 'bottleneck';
/** The paper's shortcut options (Table 3): A zero-padding, B projection where the shape changes, C projection everywhere; 'none' for a plain net. */
export type ShortcutOption = 'A' | 'B' | 'C' | 'none';
/** The input stem: ImageNet's 7×7 convolution and max-pool, or CIFAR's one 3×3 convolution. */
export type StemKind = 'imagenet' | 'cifar';

/** The structure of a network: what the native core needs besides classes, channels and options. */
export interface Architecture {
  /** The residual block kind. */
  block: BlockKind;
  /** Blocks per stage. */
  depths: number[];
  /** Channels of each stage. */
  widths: number[];
  /** The input stem. */
  stem: StemKind;
  /** Pre-activation blocks (BN and ReLU before each convolution). */
  preact: boolean;
  /** The paper's default shortcut for this net ('none' for plain nets: it cannot be changed). */
  shortcut: ShortcutOption;
  /** A plain network: the same layers without shortcuts. */
  plain: boolean;
  /** Groups of each bottleneck's 3×3 convolution (ResNeXt's cardinality; 1 otherwise). */
  groups: number;
  /** Channels per group at base width 64: a bottleneck is ⌊width · widthPerGroup / 64⌋ · groups channels wide
   *  (torchvision's `width_per_group`; 64 for ResNet, 128 for Wide ResNet-50-2). */
  widthPerGroup: number;
  /** ResNet-C: three 3×3 convolutions (stemWidth, stemWidth, 2·stemWidth channels) instead of the 7×7 (timm's "deep"
   *  stem). */
  deepStem: boolean;
  /** The deep stem's first width (32 in timm's resnet50c/d, 64 in resnet50s). */
  stemWidth: number;
  /** ResNet-D: a projection shortcut that strides average-pools 2×2 first, then a stride-1 1×1 (timm's avg_down). */
  avgDown: boolean;
  /** 'se': squeeze-and-excitation at the end of each residual branch (timm's seresnet, 1/16 of the channels). */
  attention: Attention;
}

/** Attention on each block's residual branch: none, or squeeze-and-excitation. */
export type Attention = 'none' | 'se';

/** What a network has unless its name (resnet50d, seresnet50, ...) or its spec says otherwise. */
export const VARIANT_DEFAULTS = { deepStem: false, stemWidth: 32, avgDown: false, attention: 'none' as Attention };

/** The paper's bottleneck: one group, 64 channels per group at base width 64. */
export const DEFAULT_GROUPS = 1;
export const DEFAULT_WIDTH_PER_GROUP = 64;
/** The largest `groups` and `widthPerGroup` a spec takes. */
export const MAX_GROUPS = 1024;
export const MAX_WIDTH_PER_GROUP = 4096;

const IMAGENET_WIDTHS = [64, 128, 256, 512];
const CIFAR_WIDTHS = [16, 32, 64];

const IMAGENET_DEPTHS: Record<number, { block: BlockKind; depths: number[] }> = {
  18: { block: 'basic', depths: [2, 2, 2, 2] },
  26: { block: 'bottleneck', depths: [2, 2, 2, 2] }, // timm's resnet26 / resnet26d
  34: { block: 'basic', depths: [3, 4, 6, 3] },
  50: { block: 'bottleneck', depths: [3, 4, 6, 3] },
  101: { block: 'bottleneck', depths: [3, 4, 23, 3] },
  152: { block: 'bottleneck', depths: [3, 8, 36, 3] },
  200: { block: 'bottleneck', depths: [3, 24, 36, 3] }, // timm's resnet200d
};

/** Name patterns accepted by `arch`, for help texts and error messages. */
export const ARCH_PATTERNS = [
  'resnet18',
  'resnet34',
  'resnet50',
  'resnet101',
  'resnet152',
  'resnext50_32x4d',
  'resnext101_32x8d',
  'resnext101_64x4d',
  'resnextD_GxWd (D = 50, 101, 152; G groups of W channels)',
  'wide_resnet50_2',
  'wide_resnet101_2',
  'wide_resnetD_K (D = 50, 101, 152; K times as wide a bottleneck)',
  'resnetDc, resnetDd, resnetDs (timm: deep stem 32; deep stem and average-pool shortcut; deep stem 64)',
  'seresnetD, seresnextD_GxWd, resnextDd_GxWd, seresnextDd_GxWd (timm: squeeze-and-excitation, variants)',
  'resnet26, resnet200 (timm depths; also with the suffixes above)',
  'plain18',
  'plain34',
  'plain50',
  'plain101',
  'plain152',
  'cifar-resnetN (N = 6n+2: 20, 32, 44, 56, 110, 1202, ...)',
  'cifar-plainN (N = 6n+2)',
  'cifar-preact-resnetN (N = 6n+2, pre-activation basic blocks)',
  'preact-resnetN (N = 9n+2: 164, 1001, ...; pre-activation bottlenecks, CIFAR)',
];

const PAPER_BOTTLENECK = { groups: DEFAULT_GROUPS, widthPerGroup: DEFAULT_WIDTH_PER_GROUP, ...VARIANT_DEFAULTS };

// timm's suffixes on a depth (resnet50c, resnet50d, resnet50s): the "Bag of Tricks" stems and shortcuts.
const SUFFIXES: Record<string, Partial<Architecture>> = {
  '': {},
  c: { deepStem: true, stemWidth: 32 },
  d: { deepStem: true, stemWidth: 32, avgDown: true },
  s: { deepStem: true, stemWidth: 64 },
};

/** torchvision's and timm's ImageNet names: [se]resnet|resnext DEPTH [c|d|s] [_GxWd], wide_resnetDEPTH_K. */
function imagenetArch(name: string): Architecture | undefined {
  let variant: Partial<Architecture> = {};
  let depth: string;
  let grouping = { groups: DEFAULT_GROUPS, widthPerGroup: DEFAULT_WIDTH_PER_GROUP };
  let m = /^wide_resnet(\d+)_(\d+)$/.exec(name);
  if (m) {
    depth = m[1];
    grouping = { groups: 1, widthPerGroup: 64 * Number(m[2]) };
    if (`wide_resnet${depth}_${Number(m[2])}` !== name) return undefined;
  } else {
    m = /^(se)?(resnet|resnext)(\d+)([cds]?)(?:_(\d+)x(\d+)d)?$/.exec(name);
    if (!m || (m[2] === 'resnext') !== (m[5] !== undefined)) return undefined;
    depth = m[3];
    variant = { ...SUFFIXES[m[4]], ...(m[1] ? { attention: 'se' as const } : {}) };
    if (m[5] !== undefined) {
      grouping = { groups: Number(m[5]), widthPerGroup: Number(m[6]) };
      if (`${m[1] ?? ''}resnext${depth}${m[4]}_${grouping.groups}x${grouping.widthPerGroup}d` !== name)
        return undefined;
    } else if (`${m[1] ?? ''}resnet${Number(depth)}${m[4]}` !== name) return undefined;
  }
  const row = IMAGENET_DEPTHS[Number(depth)];
  const grouped = grouping.groups !== DEFAULT_GROUPS || grouping.widthPerGroup !== DEFAULT_WIDTH_PER_GROUP;
  const { groups, widthPerGroup } = grouping;
  const inRange = groups >= 1 && groups <= MAX_GROUPS && widthPerGroup >= 1 && widthPerGroup <= MAX_WIDTH_PER_GROUP;
  if (!row || !inRange || (grouped && row.block !== 'bottleneck')) return undefined;
  return {
    ...row,
    depths: [...row.depths],
    widths: [...IMAGENET_WIDTHS],
    stem: 'imagenet',
    preact: false,
    shortcut: 'B',
    plain: false,
    ...PAPER_BOTTLENECK,
    ...grouping,
    ...variant,
  };
}

/** The structure of a named network ('resnet50', 'resnext50_32x4d', 'cifar-resnet56', ...), or undefined. */
export function resolveArch(name: string): Architecture | undefined {
  const imagenet = imagenetArch(name);
  if (imagenet) return imagenet;
  let m = /^plain(\d+)$/.exec(name);
  if (m) {
    const row = IMAGENET_DEPTHS[Number(m[1])];
    if (!row) return undefined;
    return {
      ...row,
      depths: [...row.depths],
      widths: [...IMAGENET_WIDTHS],
      stem: 'imagenet',
      preact: false,
      shortcut: 'none',
      plain: true,
      ...PAPER_BOTTLENECK,
    };
  }
  m = /^cifar-(resnet|plain|preact-resnet)(\d+)$/.exec(name);
  if (m) {
    const layers = Number(m[2]);
    const n = (layers - 2) / 6;
    if (!Number.isInteger(n) || n < 1 || String(layers) !== m[2]) return undefined;
    const plain = m[1] === 'plain';
    const preact = m[1] === 'preact-resnet';
    return {
      block: 'basic',
      depths: [n, n, n],
      widths: [...CIFAR_WIDTHS],
      stem: 'cifar',
      preact,
      shortcut: plain ? 'none' : preact ? 'B' : 'A',
      plain,
      ...PAPER_BOTTLENECK,
    };
  }
  m = /^preact-resnet(\d+)$/.exec(name);
  if (m) {
    const layers = Number(m[1]);
    const n = (layers - 2) / 9;
    if (!Number.isInteger(n) || n < 1 || String(layers) !== m[1]) return undefined;
    return {
      block: 'bottleneck',
      depths: [n, n, n],
      widths: [...CIFAR_WIDTHS],
      stem: 'cifar',
      preact: true,
      shortcut: 'B',
      plain: false,
      ...PAPER_BOTTLENECK,
    };
  }
  return undefined;
}

/** Weighted layers (convs + fc) along the main path: the number in a network's name. */
export function layerCount(a: Pick<Architecture, 'block' | 'depths'>): number {
  const perBlock = a.block === 'basic' ? 2 : 3;
  return a.depths.reduce((sum, d) => sum + d, 0) * perBlock + 2;
}
