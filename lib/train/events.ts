// What a training run reports as it goes (onProgress, loggers, iterating a TrainingRun). Its own file so that the
// loggers, which train()'s options name, can take it without importing the options.
import type { EvalMetrics } from '../metrics';

/** What a training run reports as it goes: to onProgress, loggers, and iterating a TrainingRun. */
export interface ProgressEvent {
  kind: 'iteration' | 'epoch' | 'evaluation' | 'checkpoint';
  /** Iterations done. */
  iteration: number;
  epoch: number;
  totalIterations: number;
  /** Iterations in an epoch (this rank's share of the data, over the images each iteration draws). */
  iterationsPerEpoch: number;
  lr: number;
  loss?: number;
  trainError?: number;
  imagesPerSecond?: number;
  /** Seconds the loop waited for data over the same window (a streamed source that cannot keep up). */
  dataWaitSeconds?: number;
  etaSeconds: number;
  elapsedSeconds: number;
  lossScale?: number;
  evaluations?: { val?: EvalMetrics; test?: EvalMetrics };
  diagnostics?: { gradNorms: number[]; responseStds: number[] };
}
