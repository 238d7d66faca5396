import { UsageError } from '../args';
import { Command, DEVICE_FLAG, OUTPUT_FLAGS } from '../command';
import { LAUNCH_FLAGS, launch, launchPlan, rankArgv } from '../launch';
import { reporterFor } from '../../runs/progress';
import { resumeFolder } from '../../runs/session';
import { reportRun } from './train';

export const resumeCommand: Command = {
  name: 'resume',
  usage:
    'resnet resume <run folder | checkpoint.safetensors> [--device cpu|cuda] [--quiet|--json]' +
    ' [--nproc-per-node N [--nnodes M --node-rank K --master-addr HOST --master-port P]]',
  summary: 'Continues a stopped run exactly where its last checkpoint left it.',
  flags: { ...DEVICE_FLAG, ...LAUNCH_FLAGS, ...OUTPUT_FLAGS },
  async run(args, ctx) {
    const plan = launchPlan(args.flags);
    if (plan) return launch(plan, rankArgv(process.argv.slice(2)), ctx.out, ctx.err);
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
