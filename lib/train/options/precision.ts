// Numerics and speed: precision, memory format, threads, determinism, cuDNN's benchmark, CUDA graphs.
import { ValidationError } from '../../errors';
import { native } from '../../native';
import type { NativeResumeState, NativeTrainConfig } from '../../native';
import { Fields, s } from '../../validate';

export interface PrecisionOptions {
  /** float32 (default); bfloat16 autocast on the CPU or CUDA (torch.autocast: convolutions and the classifier in
   *  bfloat16, weights and optimizer in float32; fast on CPUs with AVX-512 BF16 or AMX); float16 autocast with a
   *  dynamic loss scale on CUDA. */
  precision?: 'float32' | 'bfloat16' | 'float16';
  /** Tensor layout (default 'auto': channels_last where it is faster). */
  memoryFormat?: 'auto' | 'channels_last' | 'contiguous';
  /** Intra-op threads for this run (default: the process setting). */
  threads?: number;
  /** Bit-identical CPU runs; deterministic algorithms and no cuDNN benchmark on CUDA (default false). */
  deterministic?: boolean;
  /** Let cuDNN pick the fastest algorithms (default: on unless deterministic). */
  cudnnBenchmark?: boolean;
  /** Capture the whole step in a CUDA graph after 3 eager iterations (CUDA, SGD, float32, static shapes):
   *  for small networks, where kernel launches dominate. Default false. */
  cudaGraph?: boolean;
}

export const PRECISION_DEFAULTS = {
  precision: 'float32' as const,
  memoryFormat: 'auto' as const,
  /** 0: keep the process setting (setNumThreads). */
  threads: 0,
  deterministic: false,
  cudaGraph: false,
  /** fp16's dynamic loss scale starts where torch.cuda.amp.GradScaler starts. */
  lossScale: 65536,
};
const D = PRECISION_DEFAULTS;

export const precisionFields: Fields = {
  precision: s.optional(s.enum(['float32', 'bfloat16', 'float16'] as const)),
  memoryFormat: s.optional(s.enum(['auto', 'channels_last', 'contiguous'] as const)),
  threads: s.optional(s.integer({ min: 1, max: 1024 })),
  deterministic: s.optional(s.boolean()),
  cudnnBenchmark: s.optional(s.boolean()),
  cudaGraph: s.optional(s.boolean()),
};

/** What a CUDA graph needs of the rest of the run: the first unmet need, or undefined. */
export interface GraphNeeds {
  optimizer: 'sgd' | 'adamw' | 'lamb';
  diagnostics?: boolean;
  dropLast?: boolean;
  clipGradNorm?: number;
  accumulate?: number;
  ema?: unknown;
  distributed: boolean;
  /** The model's stochastic depth (its masks are drawn on the CPU each step, outside a graph). */
  dropPath?: number;
  /** The training loss (the graph captures the cross-entropy). */
  loss?: unknown;
}

function cudaGraphUnmet(cuda: boolean, device: string, precision: string, n: GraphNeeds): string | undefined {
  if (!cuda) return `the model on a CUDA device (it is on ${device})`;
  if (n.optimizer !== 'sgd') return 'the SGD optimizer';
  if (precision !== 'float32') return 'precision float32';
  if (n.diagnostics) return 'diagnostics off';
  if (n.dropLast === false) return 'dropLast';
  if (n.clipGradNorm !== undefined || (n.accumulate ?? 1) > 1 || n.ema) return 'no clipGradNorm, accumulate or ema';
  if ((n.dropPath ?? 0) > 0) return 'a model without dropPath (stochastic depth)';
  if (n.loss !== undefined && n.loss !== 'cross-entropy') return 'the cross-entropy loss';
  return undefined;
}

export function precisionConfig(
  o: PrecisionOptions,
  device: string,
  needs: GraphNeeds,
  resume: NativeResumeState | undefined,
): Pick<
  NativeTrainConfig,
  'precision' | 'channelsLast' | 'threads' | 'deterministic' | 'cudnnBenchmark' | 'cudaGraph' | 'lossScale'
> {
  const cuda = device.startsWith('cuda');
  const precision = o.precision ?? D.precision;
  if (o.cudaGraph && needs.distributed)
    throw new ValidationError(
      'cudaGraph',
      true,
      'false with distributed training',
      'cudaGraph: does not run with distributed training',
    );
  if (precision === 'float16' && !cuda)
    throw new ValidationError(
      'precision',
      precision,
      '"float32" or "bfloat16" on the CPU',
      `precision: float16 needs the model on a CUDA device (it is on ${device}); the CPU takes bfloat16`,
    );
  const unmet = o.cudaGraph ? cudaGraphUnmet(cuda, device, precision, needs) : undefined;
  if (unmet) throw new ValidationError('cudaGraph', true, unmet, `cudaGraph: needs ${unmet}`);
  const memoryFormat = o.memoryFormat ?? D.memoryFormat;
  const deterministic = o.deterministic ?? D.deterministic;
  return {
    precision,
    // channels_last takes oneDNN's fast path on the CPU (about 2x here) and the tensor cores' with AMP on CUDA.
    // Without oneDNN (turned off: info().mkldnnOffReason) the CPU has no channels_last fast path.
    channelsLast:
      memoryFormat === 'channels_last' ||
      (memoryFormat === 'auto' && (cuda ? precision !== 'float32' : native().info().mkldnn)),
    threads: o.threads ?? D.threads,
    deterministic,
    cudnnBenchmark: o.cudnnBenchmark ?? !deterministic,
    cudaGraph: o.cudaGraph ?? D.cudaGraph,
    // Where the checkpoint left it, else where GradScaler starts.
    lossScale: resume?.lossScale || D.lossScale,
  };
}
