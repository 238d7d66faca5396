// Training options resolved into what the native schedule runs: every default applied once, the run's length
// from the data, milestones checked against it. (The rates themselves are computed in C++ and checked against
// hand-computed tables in the integration lane.)
import { ValidationError } from '../../lib';
import { TRAIN_DEFAULTS, iterationsPerEpoch } from '../../lib/train/options';
import { resolveSchedule } from '../../lib/train/options/schedule';
import { thrown } from '../helpers/errors';

describe('iterations per epoch', () => {
  it('counts full batches, and the last partial one unless dropLast', () => {
    expect(iterationsPerEpoch(50000, 128, true)).toBe(390);
    expect(iterationsPerEpoch(50000, 128, false)).toBe(391);
    expect(iterationsPerEpoch(100, 25, false)).toBe(4);
  });
});

describe('schedule resolution', () => {
  it("the paper's CIFAR recipe: multistep at 32k and 48k, gamma 0.1 by default", () => {
    const s = resolveSchedule({ type: 'multistep', milestones: [32000, 48000] }, {}, 0.1, 64000, 390);
    expect(s).toMatchObject({
      type: 'multistep',
      baseLr: 0.1,
      totalIterations: 64000,
      iterationsPerEpoch: 390,
      milestones: [32000, 48000],
      milestonesInEpochs: false,
      gamma: 0.1,
      warmupIterations: 0,
      errorWarmup: false,
    });
  });
  it("epoch milestones are checked against the run's epochs", () => {
    const s = resolveSchedule({ type: 'multistep', milestones: [3, 6], unit: 'epoch', gamma: 0.2 }, {}, 1, 1000, 100);
    expect(s).toMatchObject({ milestones: [3, 6], milestonesInEpochs: true, gamma: 0.2 });
    const e = thrown(() => resolveSchedule({ type: 'multistep', milestones: [5, 10] }, {}, 1, 10, 1));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.field).toBe('schedule.milestones');
    expect(e.message).toBe('schedule.milestones: 10 is not before the end of the run (10 iterations)');
  });
  it("one-cycle peaks at the optimizer's lr unless told; PyTorch's OneCycleLR defaults", () => {
    expect(resolveSchedule({ type: 'onecycle' }, {}, 0.4, 100, 10)).toMatchObject({
      maxLr: 0.4,
      pctStart: 0.3,
      divFactor: 25,
      finalDivFactor: 1e4,
    });
  });
  it('warm-ups: linear from 0.1x, and the ResNet-110 one (0.01 until 80% training error)', () => {
    expect(resolveSchedule({ type: 'constant' }, { warmup: { iterations: 100 } }, 0.4, 1000, 10)).toMatchObject({
      warmupIterations: 100,
      warmupStartFactor: TRAIN_DEFAULTS.warmupStartFactor,
    });
    expect(resolveSchedule({ type: 'constant' }, { errorWarmup: {} }, 0.1, 1000, 10)).toMatchObject({
      errorWarmup: true,
      errorWarmupLr: 0.01,
      errorWarmupThreshold: 0.8,
    });
    expect(() => resolveSchedule({ type: 'constant' }, { warmup: { iterations: 1000 } }, 0.1, 1000, 10)).toThrow(
      /warmup.iterations: expected fewer than the run's 1000 iterations/,
    );
  });
});
