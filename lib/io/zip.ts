// A careful reader for the zip archives torch.save writes (stored entries, optionally zip64). The file is
// untrusted: every offset and size is checked against the file, names and counts are bounded, and every
// entry's CRC-32 is verified before its bytes are used.
import * as zlib from 'zlib';

import { CheckpointError } from '../errors';

const EOCD = 0x06054b50,
  EOCD64 = 0x06064b50,
  EOCD64_LOCATOR = 0x07064b50,
  CENTRAL = 0x02014b50,
  LOCAL = 0x04034b50;
const MAX_ENTRIES = 200_000;
const MAX_NAME = 4096;

export interface ZipLimits {
  /** Largest total of uncompressed entry sizes (default 16 GiB). */
  maxTotalBytes?: number;
}

interface Reader {
  fail(problem: string): never;
  u16(at: number): number;
  u32(at: number): number;
  u64(at: number): number;
}

function reader(buffer: Uint8Array, file: string): Reader {
  const fail = (problem: string): never => {
    throw new CheckpointError(file, problem);
  };
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return {
    fail,
    u16: (at) => view.getUint16(at, true),
    u32: (at) => view.getUint32(at, true),
    u64: (at) => {
      const v = view.getBigUint64(at, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('a zip64 size or offset is implausibly large');
      return Number(v);
    },
  };
}

/** Where the central directory is and how many entries it holds (from the end record, zip64's when present). */
function centralDirectory(r: Reader, buffer: Uint8Array): { count: number; dirSize: number; dirOffset: number } {
  const { fail, u16, u32, u64 } = r;
  if (buffer.length < 22) fail(`truncated: ${buffer.length} bytes is too short for a zip archive`);
  let eocd = -1;
  for (let at = buffer.length - 22; at >= Math.max(0, buffer.length - 22 - 65535); at--) {
    if (u32(at) === EOCD && at + 22 + u16(at + 20) === buffer.length) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0)
    fail(
      'not a zip archive (no end-of-central-directory record): truncated, or the legacy torch.save format, which is not supported',
    );
  let count = u16(eocd + 10);
  let dirSize = u32(eocd + 12);
  let dirOffset = u32(eocd + 16);
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== EOCD64_LOCATOR) fail('zip64 fields without a zip64 locator');
    const at64 = u64(loc + 8);
    if (at64 + 56 > buffer.length || u32(at64) !== EOCD64) fail('zip64 end record out of bounds or corrupt');
    count = u64(at64 + 32);
    dirSize = u64(at64 + 40);
    dirOffset = u64(at64 + 48);
  }
  if (count > MAX_ENTRIES) fail(`${count} entries exceed the limit of ${MAX_ENTRIES}`);
  if (dirOffset + dirSize > buffer.length) fail('the central directory lies outside the file (truncated?)');
  return { count, dirSize, dirOffset };
}

/** An entry's bytes: stored as they are, or inflated; checked against the directory's size and CRC-32. */
function entryData(r: Reader, name: string, raw: Uint8Array, method: number, size: number, crc: number): Uint8Array {
  let data: Uint8Array;
  if (method === 0) {
    if (raw.length !== size) r.fail(`entry ${name}: stored with ${raw.length} bytes but a size of ${size}`);
    data = raw;
  } else if (method === 8) {
    try {
      data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, size) });
    } catch (e) {
      r.fail(`entry ${name}: corrupt deflate data (${(e as Error).message})`);
    }
    if (data!.length !== size) r.fail(`entry ${name}: inflated to ${data!.length} bytes, the directory says ${size}`);
  } else {
    r.fail(`entry ${name}: compression method ${method} is not supported`);
  }
  if (zlib.crc32(data!) !== crc) r.fail(`entry ${name}: CRC-32 mismatch (the file is corrupt)`);
  return data!;
}

/** Entries by name: views into `buffer` for stored entries, inflated copies for deflated ones. */
export function readZip(buffer: Uint8Array, file: string, limits: ZipLimits = {}): Map<string, Uint8Array> {
  const r = reader(buffer, file);
  const { fail, u16, u32, u64 } = r;
  const { count, dirSize, dirOffset } = centralDirectory(r, buffer);
  const maxTotal = limits.maxTotalBytes ?? 16 * 2 ** 30;
  const out = new Map<string, Uint8Array>();
  let total = 0;
  let at = dirOffset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > dirOffset + dirSize || u32(at) !== CENTRAL) fail(`central directory entry ${i} is corrupt`);
    const method = u16(at + 10);
    const crc = u32(at + 16);
    let compressed = u32(at + 20);
    let size = u32(at + 24);
    const nameLength = u16(at + 28),
      extraLength = u16(at + 30),
      commentLength = u16(at + 32);
    let localOffset = u32(at + 42);
    if (nameLength === 0 || nameLength > MAX_NAME) fail(`entry ${i} has a name of ${nameLength} bytes`);
    if (at + 46 + nameLength + extraLength + commentLength > dirOffset + dirSize)
      fail(`central directory entry ${i} runs past the directory`);
    const name = Buffer.from(buffer.subarray(at + 46, at + 46 + nameLength)).toString('utf8');
    // zip64 extra field: the 0xFFFFFFFF fields, in order.
    for (let e = at + 46 + nameLength; e + 4 <= at + 46 + nameLength + extraLength;) {
      const id = u16(e),
        len = u16(e + 2);
      if (e + 4 + len > at + 46 + nameLength + extraLength) fail(`entry ${name}: extra field runs past its header`);
      if (id === 0x0001) {
        let p = e + 4;
        const take = () => {
          if (p + 8 > e + 4 + len) fail(`entry ${name}: zip64 extra field too short`);
          const v = u64(p);
          p += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compressed === 0xffffffff) compressed = take();
        if (localOffset === 0xffffffff) localOffset = take();
      }
      e += 4 + len;
    }
    at += 46 + nameLength + extraLength + commentLength;
    if (out.has(name)) fail(`entry ${name} appears twice`);
    if (localOffset + 30 > buffer.length || u32(localOffset) !== LOCAL)
      fail(`entry ${name}: local header missing or corrupt`);
    const dataStart = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
    if (dataStart + compressed > buffer.length)
      fail(`entry ${name}: its data runs past the end of the file (truncated?)`);
    total += size;
    if (total > maxTotal) fail(`uncompressed contents exceed the limit of ${maxTotal} bytes`);
    const raw = buffer.subarray(dataStart, dataStart + compressed);
    out.set(name, entryData(r, name, raw, method, size, crc));
  }
  return out;
}
