// Written as a user of resnet-torch writes a jest test for their service: the package by its name, typed arrays
// made in the test file (jest gives each file its own realm), predictions. The user lane runs these files in
// parallel workers: the addon loads in each.
import { ImageError, Model, createBatcher, createModel, info } from 'resnet-torch';

describe('a service predicts with resnet-torch inside jest', () => {
  let model: Model;
  beforeAll(async () => {
    model = await createModel({ arch: 'cifar-resnet20', numClasses: 3, classNames: ['cat', 'dog', 'emu'], seed: 1 });
    model.eval();
  });
  afterAll(() => model.dispose());

  it('runs in a jest worker process with the addon loaded there', () => {
    if (process.env.RESNET_TORCH_JEST_MAIN_PID)
      expect(process.pid).not.toBe(Number(process.env.RESNET_TORCH_JEST_MAIN_PID));
    expect(info().addon).toMatch(/resnet_torch\.node$/);
  });

  it('forward takes a Float32Array made here and returns one that is a Float32Array here', async () => {
    const x = new Float32Array(2 * 3 * 32 * 32).fill(0.5);
    const out = await model.forward({ data: x, shape: [2, 3, 32, 32] });
    expect(out.shape).toEqual([2, 3]);
    expect(out.data).toBeInstanceOf(Float32Array);
    expect(out.data.every(Number.isFinite)).toBe(true);
  });

  it('predict gives labelled, ordered probabilities that sum to one', async () => {
    const [top] = await model.predict(
      { data: new Float32Array(3 * 32 * 32).map((_, i) => Math.sin(i)), shape: [1, 3, 32, 32] },
      { topK: 3 },
    );
    expect(top.map((p) => p.label).sort()).toEqual(['cat', 'dog', 'emu']);
    expect(top[0].probability).toBeGreaterThanOrEqual(top[1].probability);
    expect(top.reduce((sum, p) => sum + p.probability, 0)).toBeCloseTo(1, 5);
  });

  it('a wrong input is a typed error the test can match', async () => {
    await expect(model.forward({ data: new Float32Array(10), shape: [1, 3, 32, 32] })).rejects.toThrow(
      /holds 10 values/,
    );
    await expect(model.forward({ data: [1, 2, 3] as never, shape: [1, 3, 1, 1] })).rejects.toMatchObject({
      name: 'ValidationError',
      field: 'input.data',
    });
  });

  it('predictImage takes a Buffer and a Uint8Array of raw pixels made here; a batcher shares forwards', async () => {
    const rgb = new Uint8Array(32 * 32 * 3).map((_, i) => (i * 37) % 256);
    const raw = await model.predictImage({ data: rgb, width: 32, height: 32, channels: 3 }, { topK: 2 });
    expect(raw).toHaveLength(2);
    await expect(model.predictImage(Buffer.from('not an image'))).rejects.toBeInstanceOf(ImageError);
    const batcher = createBatcher(await model.optimizeForInference(), { maxBatch: 4 });
    const answers = await Promise.all(
      [0, 1, 2, 3].map(() => batcher.predictImage({ data: rgb, width: 32, height: 32, channels: 3 }, { topK: 2 })),
    );
    for (const a of answers) expect(a.map((p) => p.label)).toEqual(raw.map((p) => p.label));
    await batcher.close();
  });
});
