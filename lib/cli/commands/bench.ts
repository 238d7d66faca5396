import * as os from 'os';

import { fromArrays } from '../../datasets/dataset';
import { createModel } from '../../model/model';
import { resolveInputSize } from '../../model/spec';
import { train } from '../../train/train';
import { Command, DEVICE_FLAG, EXIT } from '../command';

export const benchCommand: Command = {
  name: 'bench',
  usage:
    'resnet bench [--arch cifar-resnet20] [--batch 128] [--size 32] [--iterations 40] [--device cpu|cuda] [--precision float32|bfloat16|float16]',
  summary:
    'Training and inference throughput of one network on synthetic data. (The side-by-side comparisons with PyTorch are npm run bench.)',
  flags: {
    arch: { type: 'string', description: 'network (default cifar-resnet20)' },
    batch: { type: 'number', description: 'batch size (default 128)' },
    size: { type: 'number', description: 'input side (default 32, or 224 for the ImageNet family)' },
    iterations: { type: 'number', description: 'timed iterations (default 40)' },
    ...DEVICE_FLAG,
    precision: { type: 'string', description: 'float32, bfloat16 or float16 (CUDA)' },
    json: { type: 'boolean', description: 'print as JSON' },
  },
  async run(args, ctx) {
    const f = args.flags;
    const arch = (f.arch as string) ?? 'cifar-resnet20';
    const batch = (f.batch as number) ?? 128;
    const model = await createModel({ arch, numClasses: 10, device: (f.device as string) ?? 'cpu', seed: 0 });
    const [size] = resolveInputSize(model.spec, f.size, undefined, model.minInputSize);
    const iterations = (f.iterations as number) ?? 40;
    const count = batch * 4;
    const images = new Uint8Array(count * 3 * size * size).map((_, i) => (i * 2654435761) >>> 24);
    const data = await fromArrays({
      images,
      shape: [count, 3, size, size],
      labels: Array.from({ length: count }, (_, i) => i % 10),
    });
    let trainRate = 0;
    await train(model, data, {
      iterations: 2 * iterations,
      batchSize: batch,
      logEvery: iterations,
      normalize: 'none',
      precision: (f.precision as 'float32') ?? 'float32',
      signal: ctx.signal,
      onProgress: (e) => {
        if (e.kind === 'iteration') trainRate = e.imagesPerSecond!;
      },
    });
    model.eval();
    const x = { data: new Float32Array(batch * 3 * size * size).fill(0.5), shape: [batch, 3, size, size] };
    await model.forward(x);
    const start = performance.now();
    const n = Math.max(3, Math.floor(iterations / 4));
    for (let i = 0; i < n; i++) await model.forward(x);
    const inferRate = (n * batch) / ((performance.now() - start) / 1000);
    const result = {
      arch,
      batch,
      size,
      device: model.device,
      threads: os.cpus().length,
      trainImagesPerSecond: trainRate,
      inferenceImagesPerSecond: inferRate,
    };
    ctx.out.write(
      f.json
        ? `${JSON.stringify(result)}\n`
        : `${arch}, batch ${batch}, ${size}x${size}, ${model.device}: training ${Math.round(trainRate)} images/s, inference ${Math.round(inferRate)} images/s\n`,
    );
    return EXIT.ok;
  },
};
