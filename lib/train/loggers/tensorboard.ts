// TensorBoard event files: TFRecord framing (length, masked CRC-32C of the length, the record, its masked CRC-32C)
// around tensorflow.Event protos. Written by hand from event.proto and summary.proto: scalars (simple_value) and a
// session log, which is all a training curve needs; TensorBoard reads the file as it grows.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { maskedCrc32c } from '../../io/crc32c';
import { ProtoWriter } from '../../io/protobuf';

// Field numbers, from tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto.
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5, sessionLog: 6 };
const SUMMARY_VALUE = 1;
const VALUE = { tag: 1, simpleValue: 2 };
const SESSION_LOG = { status: 1, msg: 3 };
const SESSION_START = 1;

/** One TFRecord record around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([header, data, footer]);
}

export class EventFileWriter {
  readonly file: string;
  #fd: number;

  /** A new file in `dir`, named as TensorBoard looks for them (events.out.tfevents.<seconds>.<host>). */
  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    const seconds = Math.floor(Date.now() / 1000);
    let file = path.join(dir, `events.out.tfevents.${seconds}.${os.hostname()}`);
    for (let k = 2; fs.existsSync(file); k++)
      file = path.join(dir, `events.out.tfevents.${seconds}.${os.hostname()}.${k}`);
    this.file = file;
    this.#fd = fs.openSync(file, 'wx');
    this.#event((e) => e.string(EVENT.fileVersion, 'brain.Event:2'));
  }

  /** Scalars at `step`, one Summary. */
  scalars(step: number, values: [tag: string, value: number][]): void {
    const finite = values.filter(([, v]) => Number.isFinite(v));
    if (finite.length === 0) return;
    this.#event((e) =>
      e.int(EVENT.step, step).message(EVENT.summary, (s) => {
        for (const [tag, v] of finite)
          s.message(SUMMARY_VALUE, (value) => value.string(VALUE.tag, tag).float(VALUE.simpleValue, v));
      }),
    );
  }

  /** A session (re)start at `step`: TensorBoard then drops what an earlier session logged after it. */
  sessionStart(step: number, message: string): void {
    this.#event((e) =>
      e
        .int(EVENT.step, step)
        .message(EVENT.sessionLog, (l) => l.int(SESSION_LOG.status, SESSION_START).string(SESSION_LOG.msg, message)),
    );
  }

  close(): void {
    fs.closeSync(this.#fd);
  }

  #event(fill: (e: ProtoWriter) => void): void {
    const e = new ProtoWriter().double(EVENT.wallTime, Date.now() / 1000);
    fill(e);
    fs.writeSync(this.#fd, tfRecord(e.finish()));
  }
}
