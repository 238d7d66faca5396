// Evaluation during a run and early stopping, as Keras' EarlyStopping and Lightning's: stop when the monitored
// evaluation metric has not improved by more than minDelta for `patience` evaluations in a row; optionally put
// back the best weights. The rule runs in the native trainer (native/train/trainer.cpp), which stops before the
// next iteration and keeps its state in checkpoints.
import type { Dataset } from '../../datasets/dataset';
import type { StreamingDataset } from '../../datasets/image-folder';
import { EVAL_BATCH_SIZE } from '../../eval-metrics';
import { EVAL_METRIC_NAMES, EvalMetricName, metricSplit } from '../../metric-names';
import { ValidationError } from '../../errors';
import type { NativeEarlyStopState, NativeTrainConfig } from '../../native';
import { Schema, Fields, s } from '../../validate';

/** train()'s earlyStopping option. */
export interface EarlyStoppingOptions {
  /** The evaluation metric watched (lower is better). */
  monitor: EvalMetricName;
  /** Evaluations without improvement before the run stops. */
  patience: number;
  /** An improvement smaller than this does not count (default 0). */
  minDelta?: number;
  /** At the stop, give the model the weights of its best evaluation (default false: the last ones). */
  restoreBest?: boolean;
}

/** Where early stopping stopped a run, in TrainResult.earlyStopped. */
export interface EarlyStop {
  /** The iteration the run stopped at. */
  iteration: number;
  /** The iteration of the best evaluation. */
  bestIteration: number;
  /** The best value of the monitored metric. */
  best: number;
  /** The model holds the best evaluation's weights (restoreBest, when the best was in this session: a resumed run
   *  whose best came before the resume keeps its last weights). */
  restored: boolean;
}

export interface EvaluationOptions {
  /** Held-out sets (a streamed folder is loaded into memory for evaluation). */
  validation?: Dataset | StreamingDataset;
  /** A test set, evaluated as validation is. */
  test?: Dataset | StreamingDataset;
  /** When to evaluate (default every epoch). */
  evalEvery?:
    | {
        /** Every this many epochs. */
        epochs: number;
      }
    | {
        /** Every this many iterations. */
        iterations: number;
      };
  /** Images per evaluation forward (default 500). */
  evalBatchSize?: number;
  /** Stop when an evaluation metric stops improving (needs `validation` or `test`, evaluated by evalEvery). */
  earlyStopping?: EarlyStoppingOptions;
}

export const EVALUATION_DEFAULTS = {
  evalEvery: { epochs: 1 } as { epochs: number } | { iterations: number },
  evalBatchSize: EVAL_BATCH_SIZE,
  earlyStopping: { minDelta: 0, restoreBest: false },
};

export const earlyStoppingSchema: Schema<EarlyStoppingOptions> = s.object<EarlyStoppingOptions>({
  monitor: s.enum(EVAL_METRIC_NAMES),
  patience: s.integer({ min: 1, max: 1_000_000 }),
  minDelta: s.optional(s.number({ min: 0 })),
  restoreBest: s.optional(s.boolean()),
});

/** The fields a config file can hold (the sets themselves come from its data section). */
export const evaluationFields: Fields = {
  evalEvery: s.optional(
    s.union(s.object({ epochs: s.integer({ min: 1 }) }), s.object({ iterations: s.integer({ min: 1 }) })),
  ),
  evalBatchSize: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  earlyStopping: s.optional(earlyStoppingSchema),
};

/** Checks that a watched metric is one of a set the run evaluates. */
export function checkMonitored(field: string, metric: EvalMetricName | undefined, o: EvaluationOptions): void {
  if (metric === undefined || o[metricSplit(metric)] !== undefined) return;
  throw new ValidationError(
    field,
    metric,
    'a metric of a set the run evaluates',
    `${field}: ${metric} needs the ${metricSplit(metric)} option`,
  );
}

export function evaluationConfig(
  o: EvaluationOptions,
  resumed: NativeEarlyStopState | undefined,
): Pick<NativeTrainConfig, 'evalEveryIterations' | 'evalEveryEpochs' | 'evalBatchSize' | 'earlyStop'> {
  checkMonitored('earlyStopping.monitor', o.earlyStopping?.monitor, o);
  const evalEvery = o.evalEvery ?? EVALUATION_DEFAULTS.evalEvery;
  const es = o.earlyStopping;
  return {
    evalEveryIterations: 'iterations' in evalEvery ? evalEvery.iterations : 0,
    evalEveryEpochs: 'epochs' in evalEvery ? evalEvery.epochs : 0,
    evalBatchSize: o.evalBatchSize ?? EVALUATION_DEFAULTS.evalBatchSize,
    earlyStop: {
      metric: es?.monitor ?? '',
      patience: es?.patience ?? 0,
      minDelta: es?.minDelta ?? EVALUATION_DEFAULTS.earlyStopping.minDelta,
      restoreBest: es?.restoreBest ?? EVALUATION_DEFAULTS.earlyStopping.restoreBest,
      state: resumed ?? { best: 1e308, bestIteration: 0, bad: 0 },
    },
  };
}
