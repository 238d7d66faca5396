#!/usr/bin/env node
// The `resnet` command: train, resume, eval, predict, export, info, summary, bench, experiment.
// Exit codes: 0 success, 1 failure, 2 wrong usage (or an invalid config), 130 stopped by Ctrl-C / SIGTERM
// after a final checkpoint.
import { ResnetError, ValidationError } from '../errors';
import { UsageError, helpText, parseArgs } from './args';
import { Command, EXIT } from './command';
import { benchCommand } from './commands/bench';
import { evalCommand } from './commands/eval';
import { experimentCommand } from './commands/experiment';
import { exportCommand } from './commands/export';
import { infoCommand } from './commands/info';
import { predictCommand } from './commands/predict';
import { resumeCommand } from './commands/resume';
import { serveCommand } from './commands/serve';
import { summaryCommand } from './commands/summary';
import { trainCommand } from './commands/train';

const COMMANDS: Command[] = [
  trainCommand,
  resumeCommand,
  evalCommand,
  predictCommand,
  serveCommand,
  exportCommand,
  infoCommand,
  summaryCommand,
  benchCommand,
  experimentCommand,
];

function overview(): string {
  return [
    'Usage: resnet <command> [options]   (resnet <command> --help for its options)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(11)} ${c.summary.split('\n')[0]}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${overview()}\n`);
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${require('../info').packageVersion()}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`resnet: unknown command "${name}"\n\n${overview()}\n`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${helpText(command.usage, command.summary, command.flags)}\n`);
    return EXIT.ok;
  }
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      const what = command.signalMessage ?? 'stopping after the current iteration and writing a checkpoint';
      process.stderr.write(`\n${sig}: ${what} (again to quit at once)\n`);
      controller.abort();
    } else {
      process.stderr.write(`${sig}: quitting now\n`);
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const args = parseArgs(rest, command.flags);
    const code = await command.run(args, { signal: controller.signal, out: process.stdout, err: process.stderr });
    return controller.signal.aborted && code === EXIT.ok && command.signalMessage === undefined
      ? EXIT.interrupted
      : code;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(
        `resnet ${command.name}: ${e.message}\n\n${helpText(command.usage, command.summary, command.flags)}\n`,
      );
      return EXIT.usage;
    }
    if (e instanceof ValidationError) {
      process.stderr.write(`resnet ${command.name}: ${e.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(
      `resnet ${command.name}: ${e instanceof ResnetError ? `${e.message}` : ((e as Error).stack ?? String(e))}\n`,
    );
    return EXIT.failure;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
