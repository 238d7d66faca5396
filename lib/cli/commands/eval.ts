import { EVAL_BATCH_SIZE } from '../../eval-metrics';
import { DatasetKind } from '../../config/schema';
import { LoadedData, defaultTest, loadDataset } from '../../config/data';
import { Dataset } from '../../datasets/dataset';
import { UsageError } from '../args';
import { Command, EXIT } from '../command';
import { MODEL_FLAGS, modelFromTarget } from './model-source';

export const DATA_FLAGS = {
  data: {
    type: 'string' as const,
    description: 'dataset type: fashion-mnist, mnist, idx, cifar10, cifar100, image-folder',
  },
  'data-path': { type: 'string' as const, description: 'its folder' },
  split: { type: 'string' as const, description: 'train or test (default test)' },
  limit: { type: 'number' as const, description: 'only the first N images' },
};

export async function datasetFromFlags(
  flags: Record<string, unknown>,
  fallback: ReturnType<typeof defaultTest>,
  size?: number[],
  classes?: number,
): Promise<LoadedData> {
  const c = flags.data
    ? {
        type: flags.data as DatasetKind,
        ...(flags['data-path'] ? { path: flags['data-path'] as string } : {}),
        split: (flags.split as 'test') ?? 'test',
        ...(flags.data === 'image-folder' && size
          ? { size: [size[1], size[2]] as [number, number], channels: size[0] as 1 | 3 }
          : {}),
        ...(flags.data === 'synthetic' && size ? { shape: size as [number, number, number], classes } : {}),
      }
    : fallback;
  if (!c) throw new UsageError('say which data: --data TYPE [--data-path DIR] [--split test]');
  const data = await loadDataset({ ...c, ...(flags.split ? { split: flags.split as 'test' } : {}) }, '--data');
  if (flags.limit !== undefined)
    return data instanceof Dataset
      ? data.take(Math.min(flags.limit as number, data.length))
      : data.subset(Array.from({ length: Math.min(flags.limit as number, data.length) }, (_, i) => i));
  return data;
}

export const evalCommand: Command = {
  name: 'eval',
  usage:
    'resnet eval <checkpoint | weights | run folder> [--data TYPE --data-path DIR --split test] [--batch-size N] [--json]',
  summary:
    "Loss, top-1/top-5 error, per-class accuracy and the confusion matrix on a dataset (default: the run's test set).",
  flags: {
    ...MODEL_FLAGS,
    ...DATA_FLAGS,
    'batch-size': { type: 'number', description: `evaluation batch (default ${EVAL_BATCH_SIZE})` },
    json: { type: 'boolean', description: 'print as JSON' },
  },
  async run(args, ctx) {
    const { model, config, dataShape } = await modelFromTarget(args.positional[0], args.flags);
    const loaded = await datasetFromFlags(
      args.flags,
      config ? config.data.test || defaultTest(config.data.train) : undefined,
      dataShape,
      model.numClasses,
    );
    const data = loaded instanceof Dataset ? loaded : await loaded.load();
    const m = await model.evaluate(data, {
      batchSize: (args.flags['batch-size'] as number) ?? EVAL_BATCH_SIZE,
      split: data.name,
    });
    if (args.flags.json) {
      ctx.out.write(`${JSON.stringify({ dataset: data.name, ...m }, null, 2)}\n`);
      return EXIT.ok;
    }
    const names = model.classNames ?? data.classNames;
    const lines = [
      `${data.name}: ${m.count} images`,
      `accuracy ${(m.accuracy * 100).toFixed(2)}%, top-1 error ${(m.top1Error * 100).toFixed(2)}%, top-5 error ${(m.top5Error * 100).toFixed(2)}%, loss ${m.loss.toFixed(4)}`,
      '',
      'per-class accuracy:',
      ...m.perClassAccuracy.map(
        (a, i) => `  ${(names[i] ?? String(i)).padEnd(16)} ${Number.isNaN(a) ? '   -' : `${(a * 100).toFixed(1)}%`}`,
      ),
      '',
      'confusion matrix (rows: true class, columns: predicted):',
      ...m.confusion.map((row, i) => `  ${String(i).padStart(3)} ${row.map((v) => String(v).padStart(6)).join('')}`),
    ];
    ctx.out.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};
