// What a finished (or cancelled, or early-stopped) run reports.
import type { EvalMetrics } from '../eval-metrics';
import type { Model } from '../model/model';
import type { PhaseSeconds } from '../native';
import type { ProgressEvent } from './events';
import type { EarlyStop } from './options/evaluation';

/** What a finished (or cancelled, or early-stopped) run reports. */
export interface TrainResult {
  /** The run was stopped by its AbortSignal (after a complete iteration) rather than finishing. */
  aborted: boolean;
  /** Iterations done. */
  iteration: number;
  /** Epochs done. */
  epoch: number;
  /** Iterations the run was to do. */
  totalIterations: number;
  /** Seconds the run took. */
  elapsedSeconds: number;
  /** Training throughput over the run. */
  imagesPerSecond: number;
  /** The learning rate at the end. */
  lr: number;
  /** The last evaluations. */
  evaluations: {
    /** On the validation set. */
    val?: EvalMetrics;
    /** On the test set. */
    test?: EvalMetrics;
  };
  /** Epoch and evaluation events, in order. */
  history: ProgressEvent[];
  /** Set when earlyStopping stopped the run (then `aborted` is false). */
  earlyStopped?: EarlyStop;
  /** With the ema option: a model holding the weights' moving average (same spec and preprocessing). */
  ema?: Model;
  /** What ran the forward and backward passes: 'onednn' (on the CPU, activations kept in oneDNN's blocked layout,
   *  BatchNorm fused with its ReLU; README, "Performance"), or 'libtorch (why not oneDNN)'. */
  engine: string;
  /** Where a resumed run started: the checkpoint and its iteration (resumeTraining, checkpoint.resume 'last'). */
  resumedFrom?: { file: string; iteration: number };
  /** Where this call's time went, in seconds. On CUDA they are host times: kernels run asynchronously. */
  phases: PhaseSeconds;
}
