// Evaluation metrics as users see them (training runs and model.evaluate() report the same shape).
import type { NativeEvalMetrics } from './native';

/** An evaluation: loss, top-1 and top-5 error, per-class accuracy and the confusion matrix. */
export interface EvalMetrics {
  split: string;
  count: number;
  loss: number;
  top1Error: number;
  top5Error: number;
  accuracy: number;
  perClassAccuracy: number[];
  /** confusion[true][predicted] */
  confusion: number[][];
}

export function toEvalMetrics(m: NativeEvalMetrics): EvalMetrics {
  return { ...m, accuracy: 1 - m.top1Error };
}
