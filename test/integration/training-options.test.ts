// train() options checked by their rules: early stopping (Keras' and Lightning's rule) against the rule applied by
// hand to the run's own evaluations and the checkpoints of the iterations it names; the validation of clipGradNorm
// and accumulate (their arithmetic is checked against PyTorch in training.test.ts, "agreement with PyTorch"); EMA.
import * as path from 'path';

import { Dataset, Model, ValidationError, createModel, readCheckpoint, resumeTraining, train } from '../../lib';
import { maxAbsDiff, tempDir } from '../../harness/files';
import { typedArrayOf } from '../../lib/io/safetensors';
import { syntheticDataset } from '../../harness/synthetic';
import { rejection } from '../helpers/errors';

async function sameAsCheckpoint(model: Model, file: string): Promise<boolean> {
  const saved = await readCheckpoint(file);
  for (const t of await model.handle().exportState()) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (Buffer.compare(bytes, saved.model.get(t.name)!.bytes) !== 0) return false;
  }
  return true;
}

describe('earlyStopping', () => {
  const setup = async () => ({
    data: await syntheticDataset(64, [1, 8, 8], 2),
    validation: await syntheticDataset(32, [1, 8, 8], 2, 9),
    model: await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 }),
    dir: await tempDir(),
  });

  it('stops after `patience` evaluations without an improvement over minDelta; restoreBest puts back the best weights', async () => {
    const { data, validation, model, dir } = await setup();
    // minDelta 10: no loss improves by 10, so the first evaluation (iteration 4) stays the best and the second
    // (iteration 8) exhausts patience 1.
    const result = await train(model, data, {
      iterations: 40,
      batchSize: 16,
      validation,
      evalEvery: { iterations: 4 },
      earlyStopping: { monitor: 'val_loss', patience: 1, minDelta: 10, restoreBest: true },
      checkpoint: { dir, everyIterations: 4, keepLast: 10 },
    });
    expect(result.aborted).toBe(false);
    expect(result.iteration).toBe(8);
    const first = result.history.find((e) => e.evaluations?.val)!;
    expect(result.earlyStopped).toEqual({
      iteration: 8,
      bestIteration: 4,
      best: first.evaluations!.val!.loss,
      restored: true,
    });
    expect(await sameAsCheckpoint(model, path.join(dir, 'checkpoint-4.safetensors'))).toBe(true);
    expect(await sameAsCheckpoint(model, path.join(dir, 'checkpoint-8.safetensors'))).toBe(false);
  });

  it('the stop agrees with the rule applied by hand to the evaluations; without restoreBest the last weights stay', async () => {
    const { data, validation, model, dir } = await setup();
    const patience = 2,
      minDelta = 0.002;
    const result = await train(model, data, {
      iterations: 200,
      batchSize: 16,
      optimizer: { type: 'sgd', lr: 0.5, momentum: 0.9 }, // an lr this high makes the validation loss wander
      validation,
      evalEvery: { iterations: 2 },
      earlyStopping: { monitor: 'val_error', patience, minDelta },
      checkpoint: { dir, everyIterations: 2, keepLast: 200 },
    });
    // The rule, by hand, over what the run reported.
    let best = Infinity,
      bestIteration = 0,
      bad = 0,
      stop: number | undefined;
    for (const e of result.history.filter((h) => h.evaluations?.val)) {
      const v = e.evaluations!.val!.top1Error;
      if (v < best - minDelta) [best, bestIteration, bad] = [v, e.iteration, 0];
      else if (++bad >= patience) {
        stop = e.iteration;
        break;
      }
    }
    expect(stop).toBeDefined(); // this run does stop early
    expect(result.earlyStopped).toEqual({ iteration: stop, bestIteration, best, restored: false });
    expect(result.iteration).toBe(stop);
    expect(await sameAsCheckpoint(model, path.join(dir, `checkpoint-${stop}.safetensors`))).toBe(true);
  });

  it('a run interrupted and resumed stops where the uninterrupted one stops (the rule travels in checkpoints)', async () => {
    const options = (validation: Dataset) => ({
      iterations: 400,
      batchSize: 16,
      optimizer: { type: 'sgd' as const, lr: 0.01, momentum: 0.9 },
      validation,
      evalEvery: { iterations: 2 },
      earlyStopping: { monitor: 'val_loss' as const, patience: 3, restoreBest: true },
    });
    const a = await setup();
    const whole = await train(a.model, a.data, options(a.validation));
    expect(whole.earlyStopped).toBeDefined();
    const b = await setup();
    const controller = new AbortController();
    const first = await train(b.model, b.data, {
      ...options(b.validation),
      logEvery: 1,
      signal: controller.signal,
      onProgress: (e) => e.iteration >= 4 && controller.abort(),
      checkpoint: { dir: b.dir, everyIterations: 1000 },
    });
    expect(first.aborted).toBe(true);
    expect(first.iteration).toBeLessThan(whole.earlyStopped!.bestIteration); // interrupted before the best
    const { run, model } = await resumeTraining(path.join(b.dir, `checkpoint-${first.iteration}.safetensors`), b.data, {
      validation: b.validation,
    });
    const rest = await run;
    expect(rest.earlyStopped).toEqual(whole.earlyStopped);
    expect(rest.iteration).toBe(whole.iteration);
    const weights = async (m: Model) =>
      (await m.handle().exportState()).map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    expect(await weights(model)).toEqual(await weights(a.model));
  });

  it('is refused without the evaluated set it monitors, and with bad fields, naming them', async () => {
    const { data, model } = await setup();
    const missing = await rejection(
      train(model, data, { iterations: 2, batchSize: 16, earlyStopping: { monitor: 'test_error', patience: 1 } }).done,
    );
    expect(missing).toBeInstanceOf(ValidationError);
    expect(missing.message).toBe('earlyStopping.monitor: test_error needs the test option');
    const bad = await rejection(
      train(model, data, { iterations: 2, batchSize: 16, earlyStopping: { monitor: 'val_loss', patience: 0 } }).done,
    );
    expect(bad).toMatchObject({ field: 'earlyStopping.patience' });
  });
});

describe('clipGradNorm and accumulate: validation', () => {
  it('names the field and what is allowed', async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    expect(await rejection(train(model, data, { iterations: 1, clipGradNorm: 0 }).done)).toMatchObject({
      field: 'clipGradNorm',
    });
    expect(await rejection(train(model, data, { iterations: 1, accumulate: 1.5 }).done)).toMatchObject({
      field: 'accumulate',
    });
    const tooMany = await rejection(train(model, data, { iterations: 1, batchSize: 32, accumulate: 4 }).done);
    expect(tooMany.message).toBe('batchSize: 128 (4 × 32, accumulated) is larger than the training set (64 images)');
  });
});

describe('ema', () => {
  const floats = async (m: Model) =>
    new Map(
      (await m.handle().exportState())
        .filter((t) => t.data instanceof Float32Array)
        .map((t) => [t.name, Float64Array.from(t.data as Float32Array)]),
    );

  it("is the moving average of each step's weights, as computed by hand from the checkpoints; evaluations use it", async () => {
    const data = await syntheticDataset(64, [1, 8, 8], 2);
    const test = await syntheticDataset(32, [1, 8, 8], 2, 7);
    const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
    const dir = await tempDir();
    const decay = 0.8;
    let average = await floats(model); // the average starts as the initial weights
    const result = await train(model, data, {
      iterations: 4,
      batchSize: 16,
      shuffle: false,
      ema: { decay },
      test,
      checkpoint: { dir, everyIterations: 1, keepLast: 10 },
    });
    for (let k = 1; k <= 4; k++) {
      const saved = await readCheckpoint(path.join(dir, `checkpoint-${k}.safetensors`));
      const next = new Map<string, Float64Array<ArrayBuffer>>();
      for (const [name, e] of average) {
        const w = typedArrayOf(saved.model.get(name)!) as Float32Array;
        next.set(
          name,
          e.map((v, i) => decay * v + (1 - decay) * w[i]),
        );
      }
      average = next;
      // The checkpoint carries the average so far.
      const stored = typedArrayOf(saved.ema.get('layer1.0.conv1.weight')!) as Float32Array;
      expect(maxAbsDiff(stored, average.get('layer1.0.conv1.weight')!)).toBeLessThan(1e-6);
    }
    const ema = await floats(result.ema!);
    let worst = 0;
    for (const [name, v] of average) worst = Math.max(worst, maxAbsDiff(ema.get(name)!, v));
    expect(worst).toBeLessThan(1e-5);
    expect(maxAbsDiff(ema.get('fc.weight')!, (await floats(model)).get('fc.weight')!)).toBeGreaterThan(1e-4);
    // The run's final evaluation is the average's.
    const evaluated = await result.ema!.evaluate(test, { split: 'test' });
    expect(result.evaluations.test!.loss).toBeCloseTo(evaluated.loss, 5);
    expect(result.evaluations.test!.top1Error).toBe(evaluated.top1Error);
  });

  it('a resumed run continues the average exactly where the uninterrupted one would be', async () => {
    const run = async (stopAt?: number) => {
      const data = await syntheticDataset(64, [1, 8, 8], 2);
      const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 2, seed: 1 });
      const dir = await tempDir();
      const controller = new AbortController();
      const first = await train(model, data, {
        iterations: 8,
        batchSize: 16,
        ema: { decay: 0.9 },
        logEvery: 1,
        signal: controller.signal,
        onProgress: (e) => stopAt !== undefined && e.iteration >= stopAt && controller.abort(),
        checkpoint: { dir, everyIterations: 100 },
      });
      if (stopAt === undefined) return first.ema!;
      expect(first.aborted).toBe(true);
      expect(first.iteration).toBeLessThan(8);
      const { run: rest } = await resumeTraining(path.join(dir, `checkpoint-${first.iteration}.safetensors`), data);
      return (await rest).ema!;
    };
    const whole = await floats(await run());
    const resumed = await floats(await run(3));
    for (const [name, v] of whole) expect(maxAbsDiff(resumed.get(name)!, v)).toBe(0);
  });
});
