// What every CLI command declares: its usage, flags and the function that runs it (returns the exit code).
import { FlagSpec, Parsed } from './args';

export interface CommandContext {
  /** Aborted on the first Ctrl-C / SIGTERM: long work stops after the current iteration. */
  signal: AbortSignal;
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
}

export interface Command {
  name: string;
  usage: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /** What the first Ctrl-C / SIGTERM does, told on stderr. A command that sets it stops cleanly on a signal and
   *  its exit code stands (a server that drained exits 0); otherwise a run stopped by a signal exits 130. */
  signalMessage?: string;
  run(args: Parsed, ctx: CommandContext): Promise<number>;
}

export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

export const DEVICE_FLAG: Record<string, FlagSpec> = {
  device: { type: 'string', description: 'cpu, cuda or cuda:N' },
};

export const OUTPUT_FLAGS: Record<string, FlagSpec> = {
  quiet: { type: 'boolean', description: 'print only the result', alias: 'q' },
  json: { type: 'boolean', description: 'machine-readable JSON lines on stdout' },
};
