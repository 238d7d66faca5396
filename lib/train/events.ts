// What a training run reports as it goes (onProgress, loggers, iterating a TrainingRun). Its own file so that the
// loggers, which train()'s options name, can take it without importing the options.
import type { EvalMetrics } from '../eval-metrics';

/** What a training run reports as it goes: to onProgress, loggers, and iterating a TrainingRun. */
export interface ProgressEvent {
  /** What happened: a logged iteration, an epoch's end, an evaluation, or (internal) a checkpoint. */
  kind: 'iteration' | 'epoch' | 'evaluation' | 'checkpoint';
  /** Iterations done. */
  iteration: number;
  /** Epochs done (complete). */
  epoch: number;
  /** Iterations the run will do. */
  totalIterations: number;
  /** Iterations in an epoch (this rank's share of the data, over the images each iteration draws). */
  iterationsPerEpoch: number;
  /** The learning rate of the last step. */
  lr: number;
  /** Mean training loss over the window (or epoch). */
  loss?: number;
  /** Training top-1 error over the window (or epoch). */
  trainError?: number;
  /** Training throughput over the window. */
  imagesPerSecond?: number;
  /** Seconds the loop waited for data over the same window (a streamed source that cannot keep up). */
  dataWaitSeconds?: number;
  /** Estimated seconds to the end. */
  etaSeconds: number;
  /** Seconds since the run started. */
  elapsedSeconds: number;
  /** The float16 loss scale (absent in other precisions). */
  lossScale?: number;
  /** The evaluations made at this point. */
  evaluations?: {
    /** On the validation set. */
    val?: EvalMetrics;
    /** On the test set. */
    test?: EvalMetrics;
  };
  /** With `diagnostics`: per block, in depth order. */
  diagnostics?: {
    /** ‖∂E/∂x‖ at each block's input. */
    gradNorms: number[];
    /** Std of each block's residual response (the paper's Fig. 7). */
    responseStds: number[];
  };
  /** With `augment.mix`, iteration events: the last step's draw, one per pass (λ, and cutmix's box as
   *  [top, bottom, left, right), rows and columns). */
  mix?: { lam: number; cutmix: boolean; box?: [number, number, number, number] }[];
}
