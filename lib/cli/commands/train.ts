import { listPresets, readConfigFile, readPreset, resolveConfig } from '../../config/load';
import { configToYaml } from '../../config/load';
import { UsageError } from '../args';
import { Command, DEVICE_FLAG, EXIT, OUTPUT_FLAGS } from '../command';
import { LAUNCH_FLAGS, launch, launchPlan, rankArgv } from '../launch';
import { Reporter, reporterFor } from '../../runs/progress';
import { RunSummary, trainConfig } from '../../runs/session';

export function printResult(summary: RunSummary, reporter: Reporter): void {
  const test = summary.final.test ?? summary.final.val;
  const which = summary.final.test ? 'test' : 'validation';
  if (test)
    reporter.result(
      `${which} accuracy: ${(test.accuracy * 100).toFixed(2)}% (error ${(test.error * 100).toFixed(2)}%, top-5 error ${(test.top5Error * 100).toFixed(2)}%)`,
    );
  reporter.result(
    `iterations: ${summary.iteration}/${summary.totalIterations} in ${(summary.elapsedSeconds / 60).toFixed(1)} min, ${Math.round(summary.imagesPerSecond)} images/s`,
  );
  const early = summary.earlyStopped;
  if (early)
    reporter.result(
      `stopped early at iteration ${early.iteration}: the best was ${early.best.toPrecision(4)} at iteration ` +
        `${early.bestIteration}${early.restored ? ', whose weights the model now holds' : ''}`,
    );
  reporter.result(`plot:    ${summary.files.plotPng} (and .svg)`);
  reporter.result(`weights: ${summary.files.weights}`);
  reporter.result(`run:     ${summary.dir}`);
}

/** The end of a training command (train, resume): the result, or where the stopped run can resume; the exit code. */
export function reportRun(summary: RunSummary, reporter: Reporter): number {
  if (summary.aborted) {
    printInterrupted(summary, reporter);
    return EXIT.interrupted;
  }
  printResult(summary, reporter);
  return EXIT.ok;
}

function printInterrupted(summary: RunSummary, reporter: Reporter): void {
  reporter.result(
    `stopped at iteration ${summary.iteration} of ${summary.totalIterations}; a checkpoint is in ${summary.files.checkpoints}`,
  );
  reporter.result(`resume with: resnet resume ${summary.dir}`);
}

export const trainCommand: Command = {
  name: 'train',
  usage:
    'resnet train [config.yaml|config.json] [--preset NAME] [--set key=value ...] [--out DIR] [--device cpu|cuda] [--quiet|--json]' +
    ' [--nproc-per-node N [--nnodes M --node-rank K --master-addr HOST --master-port P]]',
  summary: 'Trains the network a config file (or a preset from configs/) describes, into a run folder.',
  flags: {
    preset: { type: 'string', description: 'a preset from configs/ (see --list-presets)' },
    set: { type: 'list', description: 'override a config value: --set train.optimizer.lr=0.05 (repeatable)' },
    out: { type: 'string', description: 'the run folder (default runs/<name>-<time>)' },
    device: { ...DEVICE_FLAG.device, description: `${DEVICE_FLAG.device.description} (overrides model.device)` },
    'list-presets': { type: 'boolean', description: 'list the presets and exit' },
    ...LAUNCH_FLAGS,
    ...OUTPUT_FLAGS,
  },
  async run(args, ctx) {
    const plan = launchPlan(args.flags);
    if (plan) return launch(plan, rankArgv(process.argv.slice(2)), ctx.out, ctx.err);
    if (args.flags['list-presets']) {
      ctx.out.write(`${(await listPresets()).join('\n')}\n`);
      return EXIT.ok;
    }
    const file = args.positional[0];
    if (file && args.flags.preset) throw new UsageError('give a config file or --preset, not both');
    if (!file && !args.flags.preset)
      throw new UsageError('train needs a config file or --preset NAME (resnet train --list-presets)');
    const raw = file ? await readConfigFile(file) : await readPreset(args.flags.preset as string);
    const config = resolveConfig(raw, (args.flags.set as string[] | undefined) ?? []);
    const reporter = reporterFor(args.flags, ctx.out);
    reporter.line(`# resolved configuration\n${configToYaml(config).trimEnd()}`);
    reporter.json({ type: 'config', config });
    const summary = await trainConfig(config, {
      reporter,
      signal: ctx.signal,
      dir: args.flags.out as string | undefined,
      device: args.flags.device as string | undefined,
    });
    return reportRun(summary, reporter);
  },
};
