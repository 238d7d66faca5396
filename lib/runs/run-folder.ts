// One folder per run: the resolved config, metrics.jsonl and metrics.csv, a TensorBoard event file, checkpoints/,
// weights, summary.json, and the error-curve plots (SVG and PNG).
import * as fs from 'fs';
import * as path from 'path';

import { RunConfig } from '../config/schema';
import { configYaml } from '../config/load';
import { writeFileAtomic } from '../io/atomic';
import * as loggers from '../train/loggers';
import type { Logger } from '../train/loggers';
import { readJsonl } from '../train/loggers/metrics-files';
import { Series, colorFor, writeChart } from '../plot/chart';
import type { ProgressEvent } from '../train/options';

export function timestamp(date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

export class RunFolder {
  readonly metricsJsonl: string;
  readonly metricsCsv: string;
  readonly checkpoints: string;
  readonly weights: string;
  readonly summary: string;
  readonly config: string;
  #loggers: Logger[] = [];

  constructor(readonly dir: string) {
    this.metricsJsonl = path.join(dir, 'metrics.jsonl');
    this.metricsCsv = path.join(dir, 'metrics.csv');
    this.checkpoints = path.join(dir, 'checkpoints');
    this.weights = path.join(dir, 'weights.safetensors');
    this.summary = path.join(dir, 'summary.json');
    this.config = path.join(dir, 'config.yaml');
  }

  /** A new run folder's path under `base` (not created yet). */
  static choose(base: string, name: string): RunFolder {
    let dir = path.join(base, `${name}-${timestamp()}`);
    for (let k = 2; fs.existsSync(dir); k++) dir = path.join(base, `${name}-${timestamp()}-${k}`);
    return new RunFolder(dir);
  }

  static async create(base: string, name: string): Promise<RunFolder> {
    const folder = RunFolder.choose(base, name);
    await fs.promises.mkdir(folder.dir, { recursive: true });
    return folder;
  }

  async writeConfig(config: RunConfig): Promise<void> {
    await writeFileAtomic(this.config, [configYaml(config)]);
    await writeFileAtomic(path.join(this.dir, 'config.json'), [`${JSON.stringify(config, null, 2)}\n`]);
  }

  /** Starts the metrics files (metrics.jsonl, metrics.csv, a TensorBoard event file: the loggers' own), or
   *  (resuming) drops what was recorded after `afterIteration`. */
  async startMetrics(afterIteration?: number): Promise<void> {
    this.#loggers = [loggers.jsonl(this.dir), loggers.csv(this.dir), loggers.tensorboard(this.dir)];
    for (const l of this.#loggers) await l.open({ resumedAt: afterIteration });
  }

  record(e: ProgressEvent): void {
    for (const l of this.#loggers) l.write(e);
  }

  async closeMetrics(): Promise<void> {
    for (const l of this.#loggers) await l.close();
    this.#loggers = [];
  }

  events(): ProgressEvent[] {
    return readJsonl(this.metricsJsonl);
  }

  /** Training error (dashed) and validation/test error (solid) against iterations, like the paper's Fig. 6. */
  async plot(title: string): Promise<{ svg: string; png: string }> {
    return writeChart(path.join(this.dir, 'error'), errorSeries(this.events(), '', 0), {
      title,
      xLabel: 'iterations',
      yLabel: 'error',
      yPercent: true,
    });
  }
}

/** The error curves of one run, in one colour: training dashed, test (and validation) solid. */
export function errorSeries(events: ProgressEvent[], label: string, colorIndex: number): Series[] {
  const color = colorFor(colorIndex);
  const name = (s: string) => (label ? `${label} ${s}` : s);
  const train = events
    .filter((e) => e.kind === 'iteration' && e.trainError !== undefined)
    .map((e) => [e.iteration, e.trainError!] as [number, number]);
  const test = events
    .filter((e) => e.evaluations?.test)
    .map((e) => [e.iteration, e.evaluations!.test!.top1Error] as [number, number]);
  const val = events
    .filter((e) => e.evaluations?.val)
    .map((e) => [e.iteration, e.evaluations!.val!.top1Error] as [number, number]);
  const out: Series[] = [{ label: name('train'), points: train, dashed: true, color }];
  if (test.length) out.push({ label: name('test'), points: test, color });
  if (val.length && !test.length) out.push({ label: name('val'), points: val, color });
  return out;
}
