// The learning-rate schedule and its warm-ups: constant, multistep (the paper's), cosine, one-cycle or
// reduce-on-plateau; a linear warm-up, or the paper's ResNet-110 warm-up until a training error.
import { EVAL_METRIC_NAMES, EvalMetricName } from '../../metric-names';
import { ValidationError } from '../../errors';
import type { NativeScheduleConfig, NativeTrainConfig } from '../../native';
import { Schema, Fields, s } from '../../validate';
import { lr } from './common';
import { EvaluationOptions, checkMonitored } from './evaluation';

/** The learning-rate schedule: constant, multistep (the paper's), cosine, one-cycle, or reduce-on-plateau. */
export type ScheduleOptions =
  | {
      /** The base rate throughout. */
      type: 'constant';
    }
  | {
      /** ÷gamma at each milestone (iterations, or epochs with unit 'epoch'): the paper's 32k/48k. */
      type: 'multistep';
      /** Where the rate drops (iterations or epochs, by `unit`). */
      milestones: number[];
      /** What milestones count (default 'iteration'). */
      unit?: 'iteration' | 'epoch';
      /** The factor at each milestone (default 0.1). */
      gamma?: number;
    }
  | {
      /** Half a cosine from the base rate down to minLr over the run. */
      type: 'cosine';
      /** The lowest rate (default 0). */
      minLr?: number;
    }
  | {
      /** One cycle (Smith): up to maxLr, then down far below the start. */
      type: 'onecycle';
      /** The peak rate (default: the optimizer's lr). */
      maxLr?: number;
      /** Fraction of the run spent rising (default 0.3). */
      pctStart?: number;
      /** Start at maxLr / divFactor (default 25). */
      divFactor?: number;
      /** End at the start rate / finalDivFactor (default 1e4). */
      finalDivFactor?: number;
    }
  | {
      /** ×factor when the watched metric stops improving (torch.optim.lr_scheduler.ReduceLROnPlateau). */
      type: 'plateau';
      /** What is watched (default val_loss with a validation set, else train_loss). */
      metric?: PlateauMetric;
      /** The factor at each reduction (default 0.1). */
      factor?: number;
      /** Evaluations without improvement before a reduction (default 10). */
      patience?: number;
      /** Relative improvement that counts (default 1e-4). */
      threshold?: number;
      /** Evaluations to wait after a reduction (default 0). */
      cooldown?: number;
      /** The lowest rate (default 0). */
      minLr?: number;
    };

/** What a plateau schedule watches: an evaluation metric, or the training loss. */
export type PlateauMetric = EvalMetricName | 'train_loss';

export interface ScheduleGroupOptions {
  /** The learning-rate schedule (default constant). */
  schedule?: ScheduleOptions;
  /** Linear warm-up of the rate over the first iterations. */
  warmup?: {
    /** Iterations of the linear warm-up. */
    iterations: number;
    /** The rate's factor at the start (default 0.1). */
    startFactor?: number;
  };
  /** The paper's ResNet-110 warm-up: `lr` until the training error falls below `untilTrainError`. */
  errorWarmup?: {
    /** The rate until then (default 0.01). */
    lr?: number;
    /** The training error to reach (default 0.8). */
    untilTrainError?: number;
  };
}

export const SCHEDULE_DEFAULTS = {
  schedule: { type: 'constant' } as ScheduleOptions,
  multistep: { unit: 'iteration' as const, gamma: 0.1 },
  cosine: { minLr: 0 },
  /** maxLr defaults to the optimizer's lr. */
  onecycle: { pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4 },
  /** metric defaults to val_loss with a validation set, else train_loss. */
  plateau: { factor: 0.1, patience: 10, threshold: 1e-4, cooldown: 0, minLr: 0 },
  warmupStartFactor: 0.1,
  errorWarmup: { lr: 0.01, untilTrainError: 0.8 },
};
const D = SCHEDULE_DEFAULTS;

const increasing = (values: number[]) =>
  values.every((v, i) => i === 0 || v > values[i - 1])
    ? undefined
    : `milestones must be strictly increasing, got [${values.join(', ')}]`;

export const scheduleSchema: Schema<ScheduleOptions> = s.tagged<ScheduleOptions>('type', {
  constant: s.object({ type: s.enum(['constant'] as const) }),
  multistep: s.object({
    type: s.enum(['multistep'] as const),
    milestones: s.refine(s.array(s.integer({ min: 1 }), { minLength: 1 }), increasing),
    unit: s.optional(s.enum(['iteration', 'epoch'] as const)),
    gamma: s.optional(s.number({ min: 0, minExclusive: true, max: 1 })),
  }),
  cosine: s.object({ type: s.enum(['cosine'] as const), minLr: s.optional(s.number({ min: 0 })) }),
  onecycle: s.object({
    type: s.enum(['onecycle'] as const),
    maxLr: s.optional(lr),
    pctStart: s.optional(s.number({ min: 0, max: 1, minExclusive: true, maxExclusive: true })),
    divFactor: s.optional(s.number({ min: 1 })),
    finalDivFactor: s.optional(s.number({ min: 1 })),
  }),
  plateau: s.object({
    type: s.enum(['plateau'] as const),
    metric: s.optional(s.enum([...EVAL_METRIC_NAMES, 'train_loss'] as const)),
    factor: s.optional(s.number({ min: 0, max: 1, minExclusive: true, maxExclusive: true })),
    patience: s.optional(s.integer({ min: 0 })),
    threshold: s.optional(s.number({ min: 0 })),
    cooldown: s.optional(s.integer({ min: 0 })),
    minLr: s.optional(s.number({ min: 0 })),
  }),
});

export const scheduleFields: Fields = {
  schedule: s.optional(scheduleSchema),
  warmup: s.optional(
    s.object({ iterations: s.integer({ min: 1 }), startFactor: s.optional(s.number({ min: 0, max: 1 })) }),
  ),
  errorWarmup: s.optional(
    s.object({ lr: s.optional(lr), untilTrainError: s.optional(s.number({ min: 0, max: 1, minExclusive: true })) }),
  ),
};

/** The schedule with every key C++ reads (defaults applied); `perEpoch` and `total` give the run's length. */
export function resolveSchedule(
  schedule: ScheduleOptions,
  o: Omit<ScheduleGroupOptions, 'schedule'>,
  baseLr: number,
  total: number,
  perEpoch: number,
): NativeScheduleConfig {
  const sched: NativeScheduleConfig = {
    type: schedule.type,
    baseLr,
    totalIterations: total,
    iterationsPerEpoch: perEpoch,
    milestones: [],
    milestonesInEpochs: false,
    gamma: D.multistep.gamma,
    minLr: 0,
    maxLr: baseLr,
    ...D.onecycle,
    factor: D.plateau.factor,
    patience: D.plateau.patience,
    threshold: D.plateau.threshold,
    cooldown: D.plateau.cooldown,
    warmupIterations: 0,
    warmupStartFactor: D.warmupStartFactor,
    errorWarmup: false,
    errorWarmupLr: D.errorWarmup.lr,
    errorWarmupThreshold: D.errorWarmup.untilTrainError,
  };
  if (schedule.type === 'multistep') {
    const unit = schedule.unit ?? D.multistep.unit;
    const limit = unit === 'epoch' ? Math.ceil(total / perEpoch) : total;
    const late = schedule.milestones.find((m) => m >= limit);
    if (late !== undefined)
      throw new ValidationError(
        'schedule.milestones',
        schedule.milestones,
        `milestones below ${limit} (${unit}s in the run)`,
        `schedule.milestones: ${late} is not before the end of the run (${limit} ${unit}s)`,
      );
    Object.assign(sched, {
      milestones: schedule.milestones,
      milestonesInEpochs: unit === 'epoch',
      gamma: schedule.gamma ?? D.multistep.gamma,
    });
  } else if (schedule.type === 'cosine') {
    sched.minLr = schedule.minLr ?? D.cosine.minLr;
  } else if (schedule.type === 'onecycle') {
    Object.assign(sched, {
      maxLr: schedule.maxLr ?? baseLr,
      pctStart: schedule.pctStart ?? D.onecycle.pctStart,
      divFactor: schedule.divFactor ?? D.onecycle.divFactor,
      finalDivFactor: schedule.finalDivFactor ?? D.onecycle.finalDivFactor,
    });
  } else if (schedule.type === 'plateau') {
    Object.assign(sched, {
      factor: schedule.factor ?? D.plateau.factor,
      patience: schedule.patience ?? D.plateau.patience,
      threshold: schedule.threshold ?? D.plateau.threshold,
      cooldown: schedule.cooldown ?? D.plateau.cooldown,
      minLr: schedule.minLr ?? D.plateau.minLr,
    });
  }
  if (o.warmup) {
    if (o.warmup.iterations >= total)
      throw new ValidationError('warmup.iterations', o.warmup.iterations, `fewer than the run's ${total} iterations`);
    Object.assign(sched, {
      warmupIterations: o.warmup.iterations,
      warmupStartFactor: o.warmup.startFactor ?? D.warmupStartFactor,
    });
  }
  if (o.errorWarmup)
    Object.assign(sched, {
      errorWarmup: true,
      errorWarmupLr: o.errorWarmup.lr ?? D.errorWarmup.lr,
      errorWarmupThreshold: o.errorWarmup.untilTrainError ?? D.errorWarmup.untilTrainError,
    });
  return sched;
}

/** The metric a plateau schedule watches, checked against the sets the run evaluates. */
function plateauMetricOf(schedule: ScheduleOptions, evaluates: EvaluationOptions): PlateauMetric {
  if (schedule.type !== 'plateau') return 'val_loss';
  const metric = schedule.metric ?? (evaluates.validation ? 'val_loss' : 'train_loss');
  if (metric !== 'train_loss') checkMonitored('schedule.metric', metric, evaluates);
  return metric;
}

export function scheduleConfig(
  o: ScheduleGroupOptions,
  run: { baseLr: number; total: number; perEpoch: number; evaluates: EvaluationOptions },
): Pick<NativeTrainConfig, 'schedule' | 'plateauMetric'> {
  const schedule = o.schedule ?? D.schedule;
  return {
    schedule: resolveSchedule(schedule, o, run.baseLr, run.total, run.perEpoch),
    plateauMetric: plateauMetricOf(schedule, run.evaluates),
  };
}
