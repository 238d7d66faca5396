// Evaluation metrics as users see them (training runs and model.evaluate() report the same shape).
import type { NativeEvalMetrics } from './native';

/** An evaluation: loss, top-1 and top-5 error, per-class accuracy and the confusion matrix. */
export interface EvalMetrics {
  /** Which set ('val', 'test', or the dataset's name). */
  split: string;
  /** Images evaluated. */
  count: number;
  /** Mean cross-entropy. */
  loss: number;
  /** Fraction whose top class is wrong. */
  top1Error: number;
  /** Fraction whose label is not among the top five. */
  top5Error: number;
  /** 1 − top1Error. */
  accuracy: number;
  /** Accuracy on each class's images, in class order. */
  perClassAccuracy: number[];
  /** confusion[true][predicted] */
  confusion: number[][];
}

export function toEvalMetrics(m: NativeEvalMetrics): EvalMetrics {
  return { ...m, accuracy: 1 - m.top1Error };
}

/** Images per evaluation forward, unless told (model.evaluate(), a run's evaluations, `resnet eval`). */
export const EVAL_BATCH_SIZE = 500;
