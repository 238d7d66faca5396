// Early stopping, as Keras' EarlyStopping and Lightning's: stop when the monitored evaluation metric has not
// improved by more than minDelta for `patience` evaluations in a row; optionally put back the best weights. The
// rule runs in the native trainer (native/train/trainer.cpp), which stops before the next iteration and keeps its
// state in checkpoints; this file holds the options and what the result reports.
import { Schema, s } from '../validate';

/** train()'s earlyStopping option. */
export interface EarlyStoppingOptions {
  /** The evaluation metric watched (lower is better). */
  monitor: 'val_loss' | 'val_error' | 'test_loss' | 'test_error';
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

export const earlyStoppingSchema: Schema<EarlyStoppingOptions> = s.object<EarlyStoppingOptions>({
  monitor: s.enum(['val_loss', 'val_error', 'test_loss', 'test_error'] as const),
  patience: s.integer({ min: 1, max: 1_000_000 }),
  minDelta: s.optional(s.number({ min: 0 })),
  restoreBest: s.optional(s.boolean()),
});
