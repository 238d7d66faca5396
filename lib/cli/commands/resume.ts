import { UsageError } from '../args';
import { Command, DEVICE_FLAG, OUTPUT_FLAGS } from '../command';
import { reporterFor } from '../../runs/progress';
import { resumeFolder } from '../../runs/session';
import { reportRun } from './train';

export const resumeCommand: Command = {
  name: 'resume',
  usage: 'resnet resume <run folder | checkpoint.safetensors> [--device cpu|cuda] [--quiet|--json]',
  summary: 'Continues a stopped run exactly where its last checkpoint left it.',
  flags: { ...DEVICE_FLAG, ...OUTPUT_FLAGS },
  async run(args, ctx) {
    const target = args.positional[0];
    if (!target) throw new UsageError('resume needs a run folder or a checkpoint file');
    const reporter = reporterFor(args.flags, ctx.out);
    const summary = await resumeFolder(target, {
      reporter,
      signal: ctx.signal,
      device: args.flags.device as string | undefined,
    });
    return reportRun(summary, reporter);
  },
};
