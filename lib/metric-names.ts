// The evaluation metrics by name, the one list every option, table and checkpoint policy that watches one uses.

/** The metrics a run's evaluations give by name, `<split>_<loss|error>` (lower is better): what early stopping,
 *  the best checkpoint and a plateau schedule watch. */
export const EVAL_METRIC_NAMES = ['val_loss', 'val_error', 'test_loss', 'test_error'] as const;
export type EvalMetricName = (typeof EVAL_METRIC_NAMES)[number];

/** The train() option whose set a metric is evaluated on. */
export function metricSplit(metric: EvalMetricName): 'validation' | 'test' {
  return metric.startsWith('val') ? 'validation' : 'test';
}
