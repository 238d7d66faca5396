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
}

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
  34: { block: 'basic', depths: [3, 4, 6, 3] },
  50: { block: 'bottleneck', depths: [3, 4, 6, 3] },
  101: { block: 'bottleneck', depths: [3, 4, 23, 3] },
  152: { block: 'bottleneck', depths: [3, 8, 36, 3] },
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

const PAPER_BOTTLENECK = { groups: DEFAULT_GROUPS, widthPerGroup: DEFAULT_WIDTH_PER_GROUP };

/** The structure of a named network ('resnet50', 'resnext50_32x4d', 'cifar-resnet56', ...), or undefined. */
export function resolveArch(name: string): Architecture | undefined {
  // torchvision's ResNeXt (resnext50_32x4d: 32 groups of 4 channels) and Wide ResNet (wide_resnet50_2: a twice as
  // wide bottleneck), by its names, for the bottleneck depths.
  let m = /^resnext(\d+)_(\d+)x(\d+)d$/.exec(name) ?? /^wide_resnet(\d+)_(\d+)$/.exec(name);
  if (m) {
    const row = IMAGENET_DEPTHS[Number(m[1])];
    const resnext = name.startsWith('resnext');
    const [groups, widthPerGroup] = resnext ? [Number(m[2]), Number(m[3])] : [1, 64 * Number(m[2])];
    const canonical = resnext ? `resnext${m[1]}_${groups}x${widthPerGroup}d` : `wide_resnet${m[1]}_${m[2]}`;
    const inRange = groups >= 1 && groups <= MAX_GROUPS && widthPerGroup >= 1 && widthPerGroup <= MAX_WIDTH_PER_GROUP;
    if (!row || row.block !== 'bottleneck' || canonical !== name || !inRange) return undefined;
    return {
      ...row,
      depths: [...row.depths],
      widths: [...IMAGENET_WIDTHS],
      stem: 'imagenet',
      preact: false,
      shortcut: 'B',
      plain: false,
      groups,
      widthPerGroup,
    };
  }
  m = /^(resnet|plain)(\d+)$/.exec(name);
  if (m) {
    const row = IMAGENET_DEPTHS[Number(m[2])];
    if (!row) return undefined;
    const plain = m[1] === 'plain';
    return {
      ...row,
      depths: [...row.depths],
      widths: [...IMAGENET_WIDTHS],
      stem: 'imagenet',
      preact: false,
      shortcut: plain ? 'none' : 'B',
      plain,
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
