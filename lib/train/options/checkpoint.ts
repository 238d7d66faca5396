// The checkpoint policy: when a run writes checkpoints and which it keeps (lib/train/checkpoint-writer.ts writes
// them; the native trainer hands over the states this policy asks for).
import { EVAL_METRIC_NAMES, EvalMetricName } from '../../metric-names';
import { ValidationError } from '../../errors';
import type { NativeTrainConfig } from '../../native';
import { Fields, s } from '../../validate';

/** When train() writes checkpoints and which it keeps. */
export interface CheckpointPolicy {
  /** Folder for checkpoint-<iteration>.safetensors, last.safetensors and best.safetensors. */
  dir: string;
  /** A periodic checkpoint every this many iterations. */
  everyIterations?: number;
  /** A periodic checkpoint every this many epochs. */
  everyEpochs?: number;
  /** Write one when the run is cancelled (default true). */
  onCancel?: boolean;
  /** Write one when the run ends (default true). */
  atEnd?: boolean;
  /** Periodic checkpoints kept (default 3); older ones are deleted after a newer one is safely written. */
  keepLast?: number;
  /** Also keep best.safetensors, by this evaluation metric (lower is better). */
  keepBest?: EvalMetricName;
  /** Extra metadata strings saved in every checkpoint (the CLI stores its resolved config). */
  metadata?: Record<string, string>;
  /** Called after each checkpoint is on disk. */
  onSaved?: (file: string, kind: 'periodic' | 'best' | 'final' | 'cancel') => void;
  /** 'last': where `dir` holds a checkpoint (last.safetensors), train() continues that run instead of starting
   *  over, as Lightning's `ckpt_path="last"`: the model gets its weights, the optimizer, schedule and data order go
   *  on from there, and the run ends as the uninterrupted one would (bit-identical on the CPU). The model, the
   *  options and the data must be the checkpoint's (a difference is refused, naming it). Set it once in a script
   *  that torchrun may restart (`--max-restarts`). */
  resume?: 'last';
}

export const CHECKPOINT_DEFAULTS = { onCancel: true, atEnd: true, keepLast: 3 };

/** The fields a run config's checkpoint section holds (the CLI picks the folder and the metadata). */
export const checkpointFields: Fields = {
  everyIterations: s.optional(s.integer({ min: 1 })),
  everyEpochs: s.optional(s.integer({ min: 1 })),
  keepLast: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  keepBest: s.optional(s.enum(EVAL_METRIC_NAMES)),
};

export const checkpointPolicySchema = s.object<CheckpointPolicy>({
  dir: s.string(),
  ...checkpointFields,
  onCancel: s.optional(s.boolean()),
  atEnd: s.optional(s.boolean()),
  metadata: s.optional(s.record(s.string({ nonEmpty: false }))),
  onSaved: s.optional(s.func()),
  resume: s.optional(s.enum(['last'] as const)),
});

/** The policy validated, or undefined without one. */
export function parseCheckpointPolicy(policy: CheckpointPolicy | undefined): CheckpointPolicy | undefined {
  if (policy === undefined) return undefined;
  const p = checkpointPolicySchema.parse(policy, 'checkpoint');
  if (p.everyIterations && p.everyEpochs)
    throw new ValidationError('checkpoint.everyEpochs', p.everyEpochs, 'only one of everyIterations and everyEpochs');
  return p;
}

/** The states the native trainer hands over for `p` (none without a policy). */
export function checkpointConfig(
  p: CheckpointPolicy | undefined,
  perEpoch: number,
): Pick<NativeTrainConfig, 'checkpointEveryIterations' | 'stateAtEnd' | 'stateOnEvaluation'> {
  if (!p) return { checkpointEveryIterations: 0, stateAtEnd: false, stateOnEvaluation: false };
  return {
    checkpointEveryIterations: p.everyIterations ?? (p.everyEpochs ? p.everyEpochs * perEpoch : 0),
    stateAtEnd: (p.onCancel ?? CHECKPOINT_DEFAULTS.onCancel) || (p.atEnd ?? CHECKPOINT_DEFAULTS.atEnd),
    stateOnEvaluation: p.keepBest !== undefined,
  };
}
