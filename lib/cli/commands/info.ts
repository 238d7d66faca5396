import { formatInfo, info } from '../../info';
import { Command } from '../command';

export const infoCommand: Command = {
  name: 'info',
  usage: 'resnet info [--json]',
  summary: 'Package and libtorch versions, CUDA devices (name, compute capability), cuDNN, threads, the C++ ABI.',
  flags: { json: { type: 'boolean', description: 'print as JSON' } },
  async run(args, ctx) {
    const i = info();
    ctx.out.write(args.flags.json ? `${JSON.stringify(i, null, 2)}\n` : `${formatInfo(i)}\n`);
    return 0;
  },
};
