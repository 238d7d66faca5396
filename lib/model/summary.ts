// summary(): the network's operator trace as a per-layer table (output shapes, parameters, multiply-adds).
import type { NativeGraph } from '../native';

/** One layer of model.summary(): output shape, parameters, multiply-adds. */
export interface LayerSummary {
  /** The layer's state_dict prefix. */
  name: string;
  /** Its kind (Conv2d, BatchNorm2d, ...). */
  type: string;
  /** Its output for one image. */
  outputShape: number[];
  /** Its parameters. */
  params: number;
  /** Its multiply-adds for one image. */
  macs: number;
}

/** model.summary(): per-layer shapes, parameters and multiply-adds, and their totals. */
export interface ModelSummary {
  /** The architecture's name. */
  arch?: string;
  /** The input it was computed for. */
  inputShape: number[];
  /** Every layer, in order. */
  layers: LayerSummary[];
  /** All parameters. */
  totalParams: number;
  /** Parameters that train. */
  trainableParams: number;
  /** Multiply-adds of one image (convolutions and fc): the paper's "FLOPs". */
  totalMacs: number;
}

// The trace names operators as ONNX does; the summary uses PyTorch's module names.
const LAYER_TYPES: Record<string, string> = {
  Conv: 'Conv2d',
  BatchNormalization: 'BatchNorm2d',
  Relu: 'ReLU',
  MaxPool: 'MaxPool2d',
  Add: 'Add',
  GlobalAveragePool: 'AdaptiveAvgPool2d',
  Flatten: 'Flatten',
  Gemm: 'Linear',
  Slice: 'Subsample',
  Pad: 'ZeroPadChannels',
  Mul: 'Scale',
};

export function summarize(graph: NativeGraph, head: Omit<ModelSummary, 'layers' | 'totalMacs'>): ModelSummary {
  const layers = graph.nodes.map((n) => ({
    name: n.name,
    type: LAYER_TYPES[n.op] ?? n.op,
    outputShape: n.outputShape,
    params: n.params,
    macs: n.macs,
  }));
  const totalMacs = graph.nodes.filter((n) => n.op === 'Conv' || n.op === 'Gemm').reduce((sum, n) => sum + n.macs, 0);
  return { ...head, layers, totalMacs };
}

/** Formats a summary as a fixed-width table. */
export function formatSummary(summary: ModelSummary): string {
  const rows = summary.layers.map((l) => [
    l.name,
    l.type,
    `[${l.outputShape.join(', ')}]`,
    l.params ? l.params.toLocaleString('en-US') : '-',
    l.macs ? l.macs.toLocaleString('en-US') : '-',
  ]);
  const header = ['layer', 'type', 'output shape', 'params', 'mult-adds'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [
    `${summary.arch ?? 'model'}, input [${summary.inputShape.join(', ')}]`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    `parameters: ${summary.totalParams.toLocaleString('en-US')} (${summary.trainableParams.toLocaleString('en-US')} trainable)`,
    `mult-adds:  ${(summary.totalMacs / 1e9).toFixed(2)} G per image`,
  ].join('\n');
}
