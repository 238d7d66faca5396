// A user's jest test of a training job: arrays made in the test, a few iterations, progress as callbacks and as
// an async iterator, cancellation with an AbortController.
import { createModel, fromArrays, train } from 'resnet-torch';

/** 64 grey 8x8 images of 4 classes, and a small network for them. */
async function job() {
  const images = Uint8Array.from({ length: 64 * 8 * 8 }, (_, i) => (i * 37) % 256);
  const labels = Array.from({ length: 64 }, (_, i) => i % 4);
  const data = await fromArrays({ images, shape: [64, 1, 8, 8], labels });
  const model = await createModel({ arch: 'cifar-resnet8', inChannels: 1, numClasses: 4, seed: 2 });
  return { data, model };
}

describe('a training job inside jest', () => {
  it('trains a few iterations and reports progress events', async () => {
    const { data, model } = await job();
    const seen: number[] = [];
    const run = train(model, data, {
      iterations: 6,
      batchSize: 16,
      logEvery: 2,
      onProgress: (e) => e.kind === 'iteration' && seen.push(e.iteration),
    });
    const iterated: string[] = [];
    for await (const e of run) iterated.push(e.kind);
    const result = await run;
    expect(seen).toEqual([2, 4, 6]);
    expect(iterated).toContain('iteration');
    expect(result).toMatchObject({ aborted: false, iteration: 6, totalIterations: 6 });
    expect(result.imagesPerSecond).toBeGreaterThan(0);
    model.dispose();
  });

  it('an AbortController stops it after a complete iteration', async () => {
    const { data, model } = await job();
    const controller = new AbortController();
    const result = await train(model, data, {
      iterations: 1000,
      batchSize: 16,
      logEvery: 1,
      signal: controller.signal,
      onProgress: (e) => e.iteration === 3 && controller.abort(),
    });
    expect(result.aborted).toBe(true);
    expect(result.iteration).toBeGreaterThanOrEqual(3);
    expect(result.iteration).toBeLessThan(1000);
    model.dispose();
  });
});
