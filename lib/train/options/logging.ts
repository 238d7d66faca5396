// What a run reports as it goes: progress events (how often, with diagnostics), callbacks and loggers.
import type { NativeTrainConfig } from '../../native';
import { Fields, s } from '../../validate';
import type { ProgressEvent } from '../events';
import { Logger, isLogger } from '../loggers';

export interface LoggingOptions {
  /** Progress event every this many iterations (default 50). */
  logEvery?: number;
  /** Gradient norm at each block's input and each block's response std, in iteration events (default false). */
  diagnostics?: boolean;
  /** Each progress event, on the main thread (progressBar() is one); a throw stops the run with that error. */
  onProgress?: (event: ProgressEvent) => void;
  /** Receive every progress event (rank 0's): loggers.csv(dir), loggers.jsonl(dir), loggers.tensorboard(dir). */
  loggers?: Logger[];
}

export const LOGGING_DEFAULTS = { logEvery: 50, diagnostics: false };

export const loggingFields: Fields = {
  logEvery: s.optional(s.integer({ min: 1 })),
  diagnostics: s.optional(s.boolean()),
};

/** The options only code can pass. */
export const loggingCallbacks: Fields = {
  onProgress: s.optional(s.func()),
  loggers: s.optional(
    s.array(
      s.refine(s.any(), (v) =>
        isLogger(v)
          ? undefined
          : 'a logger: loggers.csv(dir), loggers.jsonl(dir), loggers.tensorboard(dir), or an object with open, write and close',
      ),
    ),
  ),
};

export function loggingConfig(o: LoggingOptions): Pick<NativeTrainConfig, 'logEvery' | 'diagnostics'> {
  return {
    logEvery: o.logEvery ?? LOGGING_DEFAULTS.logEvery,
    diagnostics: o.diagnostics ?? LOGGING_DEFAULTS.diagnostics,
  };
}
