import { EXPERIMENTS, ExperimentName, runExperiment } from '../../runs/experiments';
import { UsageError } from '../args';
import { Command, DEVICE_FLAG, EXIT, OUTPUT_FLAGS } from '../command';
import { reporterFor } from '../../runs/progress';

export const experimentCommand: Command = {
  name: 'experiment',
  usage: `resnet experiment <${EXPERIMENTS.join('|')}> [--dataset fashion-mnist|cifar10] [--data-path DIR] [--budget 3e|2000i] [--limit N] [--depths 20,32] [--out DIR]`,
  summary:
    "Reproduces one of the paper's experiments: trains its networks in turn (resumable) and writes report.md with a table and plots.\n" +
    '  degradation  plain vs ResNet at 20/32/44/56 layers (Fig. 6)\n  shortcuts    options A, B and C on one network\n' +
    '  identity     shortcut scale λ ∈ {0.5, 1, 1.5} and plain: errors, gradient norms and response std by depth (Fig. 7)\n' +
    '  preact       original vs pre-activation blocks\n' +
    "  recipe       today's ingredients (label smoothing, mixup/cutmix, TrivialAugment, random erasing, EMA), each and all, at one budget",
  flags: {
    dataset: { type: 'string', description: 'fashion-mnist (default) or cifar10' },
    'data-path': { type: 'string', description: 'the dataset folder (CIFAR-10: cifar-10-batches-bin)' },
    budget: { type: 'string', description: 'per network: epochs ("3e") or iterations ("2000i"); default 2e' },
    limit: { type: 'number', description: 'train on a seeded subset of N images' },
    depths: { type: 'string', description: 'comma-separated depths (6n+2)' },
    out: { type: 'string', description: 'output folder (default runs/experiments)' },
    ...DEVICE_FLAG,
    seed: { type: 'number', description: 'seed (default 0)' },
    'batch-size': { type: 'number', description: 'batch size (default 128)' },
    ...OUTPUT_FLAGS,
  },
  async run(args, ctx) {
    const name = args.positional[0] as ExperimentName;
    if (!EXPERIMENTS.includes(name)) throw new UsageError(`experiment needs one of ${EXPERIMENTS.join(', ')}`);
    const f = args.flags;
    const dataset = (f.dataset as string) ?? 'fashion-mnist';
    if (dataset !== 'fashion-mnist' && dataset !== 'cifar10')
      throw new UsageError('--dataset must be fashion-mnist or cifar10');
    const depths = f.depths
      ? String(f.depths)
          .split(',')
          .map((d) => Number(d.trim()))
      : undefined;
    if (depths?.some((d) => !Number.isInteger(d))) throw new UsageError('--depths must be integers, e.g. 20,32');
    const reporter = reporterFor(f, ctx.out);
    const result = await runExperiment(
      name,
      {
        dataset,
        dataPath: f['data-path'] as string | undefined,
        budget: (f.budget as string) ?? '2e',
        limit: f.limit as number | undefined,
        depths,
        out: (f.out as string) ?? 'runs/experiments',
        device: f.device as string | undefined,
        seed: f.seed as number | undefined,
        batchSize: f['batch-size'] as number | undefined,
      },
      reporter,
      ctx.signal,
    );
    if (result.aborted) {
      reporter.result(`stopped; run the same command again to resume (finished networks are kept): ${result.dir}`);
      return EXIT.interrupted;
    }
    reporter.result(`report: ${result.report}`);
    reporter.json({ type: 'experiment', name, report: result.report, summaries: result.summaries });
    return EXIT.ok;
  },
};
