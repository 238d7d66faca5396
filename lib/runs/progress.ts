// Progress on the terminal: a redrawn bar on a TTY, one plain line per interval otherwise, nothing but the
// result with --quiet, JSON lines with --json.
import type { ProgressEvent } from '../train/events';

export type ReportMode = 'tty' | 'plain' | 'quiet' | 'json';

export function reportMode(
  flags: { quiet?: boolean; json?: boolean },
  stream: NodeJS.WriteStream = process.stdout,
): ReportMode {
  if (flags.json) return 'json';
  if (flags.quiet) return 'quiet';
  return stream.isTTY ? 'tty' : 'plain';
}

/** The reporter the --quiet / --json flags ask for, writing to `out`. */
export function reporterFor(flags: { quiet?: unknown; json?: unknown }, out: NodeJS.WriteStream): Reporter {
  return new Reporter(reportMode({ quiet: Boolean(flags.quiet), json: Boolean(flags.json) }, out), out);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const pct = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(2)}%`);

export class Reporter {
  #drawn = false;

  constructor(
    readonly mode: ReportMode,
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly label = '',
  ) {}

  /** A line that stays (messages, the config, the result). */
  line(text: string): void {
    if (this.mode === 'json' || this.mode === 'quiet') return;
    this.#clear();
    this.out.write(`${text}\n`);
  }

  /** Printed in every mode but JSON (the final result). */
  result(text: string): void {
    if (this.mode === 'json') return;
    this.#clear();
    this.out.write(`${text}\n`);
  }

  json(value: object): void {
    if (this.mode === 'json') this.out.write(`${JSON.stringify(value)}\n`);
  }

  event(e: ProgressEvent, perEpoch = e.iterationsPerEpoch): void {
    if (this.mode === 'json') {
      this.json({ type: 'progress', ...e });
      return;
    }
    if (this.mode === 'quiet') return;
    const prefix = this.label ? `${this.label} ` : '';
    const epochs = Math.ceil(e.totalIterations / perEpoch);
    if (e.kind === 'iteration') {
      const text =
        `${prefix}epoch ${Math.min(epochs, Math.floor((e.iteration - 1) / perEpoch) + 1)}/${epochs} it ${e.iteration}/${e.totalIterations} ` +
        `loss ${e.loss!.toFixed(4)} err ${pct(e.trainError)} lr ${e.lr.toPrecision(3)} ${Math.round(e.imagesPerSecond!)} img/s ETA ${formatDuration(e.etaSeconds)}`;
      if (this.mode === 'tty') {
        const width = 20,
          done = Math.round((e.iteration / e.totalIterations) * width);
        const bar = `[${'#'.repeat(done)}${'-'.repeat(width - done)}]`;
        this.out.write(`\r\x1b[2K${bar} ${text}`.slice(0, (this.out.columns ?? 160) + 8));
        this.#drawn = true;
      } else {
        this.out.write(`${text}\n`);
      }
      return;
    }
    const evals = e.evaluations
      ? Object.entries(e.evaluations)
          .map(([k, m]) => `${k} err ${pct(m!.top1Error)} loss ${m!.loss.toFixed(4)}`)
          .join(', ')
      : '';
    if (e.kind === 'epoch')
      this.line(
        `${prefix}epoch ${e.epoch + 1}/${epochs} done: train loss ${e.loss!.toFixed(4)} err ${pct(e.trainError)}${evals ? `; ${evals}` : ''} (${formatDuration(e.elapsedSeconds)})`,
      );
    else if (e.kind === 'evaluation') this.line(`${prefix}iteration ${e.iteration}: ${evals}`);
  }

  /** Leaves a drawn bar on the screen, and starts a new line after it. */
  finish(): void {
    if (this.#drawn) this.out.write('\n');
    this.#drawn = false;
  }

  #clear(): void {
    if (this.#drawn) {
      this.out.write('\r\x1b[2K');
      this.#drawn = false;
    }
  }
}

/**
 * An `onProgress` for scripts, printing what `resnet train` prints: on a TTY a bar redrawn in place (epoch,
 * iteration, loss, error, lr, images/s, ETA) with a line per epoch and evaluation; elsewhere (a pipe, a log file)
 * one plain line per event. Writes to stderr unless told otherwise, so that stdout stays the script's.
 */
export function progressBar(options: { stream?: NodeJS.WriteStream; label?: string } = {}): (e: ProgressEvent) => void {
  const out = options.stream ?? process.stderr;
  const reporter = new Reporter(out.isTTY ? 'tty' : 'plain', out, options.label ?? '');
  return (e) => {
    reporter.event(e);
    if (e.kind === 'iteration' && e.iteration === e.totalIterations) reporter.finish();
  };
}
