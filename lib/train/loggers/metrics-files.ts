// metrics.jsonl and metrics.csv: one line per progress event, the format the CLI's run folders hold.
import * as fs from 'fs';

import type { ProgressEvent } from '../events';

export const CSV_COLUMNS = [
  'kind',
  'iteration',
  'epoch',
  'lr',
  'loss',
  'train_error',
  'images_per_second',
  'val_loss',
  'val_error',
  'val_top5_error',
  'test_loss',
  'test_error',
  'test_top5_error',
  'elapsed_seconds',
];

export function csvRow(e: ProgressEvent): string {
  const v = e.evaluations?.val,
    t = e.evaluations?.test;
  const cells = [
    e.kind,
    e.iteration,
    e.epoch,
    e.lr,
    e.loss,
    e.trainError,
    e.imagesPerSecond,
    v?.loss,
    v?.top1Error,
    v?.top5Error,
    t?.loss,
    t?.top1Error,
    t?.top5Error,
    e.elapsedSeconds,
  ];
  return cells
    .map((c) => (c === undefined ? '' : typeof c === 'number' ? String(Number(c.toPrecision(8))) : c))
    .join(',');
}

/** The events of a metrics.jsonl, skipping a last line cut short by a killed process. */
export function readJsonl(file: string): ProgressEvent[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as ProgressEvent];
      } catch {
        return [];
      }
    });
}

/** The lines of a metrics.csv up to `afterIteration` (its second column), header first; a fresh one without. */
export function csvLinesUpTo(file: string, afterIteration?: number): string[] {
  const header = `${CSV_COLUMNS.join(',')}\n`;
  if (afterIteration === undefined) return [header];
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [header];
  }
  const rows = text
    .split('\n')
    .slice(1)
    .filter((l) => {
      const cells = l.split(',');
      return cells.length === CSV_COLUMNS.length && Number(cells[1]) <= afterIteration;
    });
  return [header, ...rows.map((l) => `${l}\n`)];
}
