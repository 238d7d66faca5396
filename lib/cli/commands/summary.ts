import { ARCH_PATTERNS } from '../../model/archs';
import { createModel } from '../../model/model';
import { formatSummary } from '../../model/summary';
import { UsageError } from '../args';
import { Command } from '../command';

export const summaryCommand: Command = {
  name: 'summary',
  usage:
    'resnet summary <arch> [--input-size N] [--in-channels C] [--num-classes K] [--shortcut A|B|C] [--stride conv1x1] | --list-archs',
  summary: 'Per-layer output shapes, parameters and multiply-adds of a network.',
  flags: {
    'input-size': {
      type: 'number',
      description: 'input side (default 224 for the ImageNet family, 32 for CIFAR nets)',
    },
    'in-channels': { type: 'number', description: 'input channels (default 3)' },
    'num-classes': { type: 'number', description: 'classes (default 1000 / 10)' },
    shortcut: { type: 'string', description: 'shortcut option A, B, C or none' },
    stride: { type: 'string', description: 'bottleneck stride on conv3x3 (torchvision) or conv1x1 (the paper)' },
    json: { type: 'boolean', description: 'print as JSON' },
    'list-archs': {
      type: 'boolean',
      description: "list the architecture names (the paper's, torchvision's, timm's) and exit",
    },
  },
  async run(args, ctx) {
    if (args.flags['list-archs']) {
      ctx.out.write(`${ARCH_PATTERNS.join('\n')}\n`);
      return 0;
    }
    const arch = args.positional[0];
    if (!arch) throw new UsageError('summary needs an arch, e.g. resnet summary resnet50');
    const f = args.flags;
    const model = await createModel({
      arch,
      seed: 0,
      ...(f['in-channels'] ? { inChannels: f['in-channels'] as number } : {}),
      ...(f['num-classes'] ? { numClasses: f['num-classes'] as number } : {}),
      ...(f.shortcut ? { shortcut: f.shortcut as 'A' } : {}),
      ...(f.stride ? { stride: f.stride as 'conv1x1' } : {}),
    });
    const s = model.summary(f['input-size'] ? { inputSize: f['input-size'] as number } : {});
    ctx.out.write(f.json ? `${JSON.stringify(s, null, 2)}\n` : `${formatSummary(s)}\n`);
    model.dispose();
    return 0;
  },
};
