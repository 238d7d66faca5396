// IDX files (MNIST, Fashion-MNIST, KMNIST, ...), raw or gzipped: a big-endian header
// (0, 0, dtype, rank, then rank sizes) and the values. Everything is checked against the file.
import { promises as fsp } from 'fs';
import { promisify } from 'util';
import * as zlib from 'zlib';

import { DatasetError } from '../errors';

const gunzip = promisify(zlib.gunzip);

const IDX_TYPES: Record<number, { name: string; size: number }> = {
  0x08: { name: 'uint8', size: 1 },
  0x09: { name: 'int8', size: 1 },
  0x0b: { name: 'int16', size: 2 },
  0x0c: { name: 'int32', size: 4 },
  0x0d: { name: 'float32', size: 4 },
  0x0e: { name: 'float64', size: 8 },
};

export interface IdxArray {
  dtype: string;
  dims: number[];
  /** The values as stored (big-endian for multi-byte types); uint8 data is used as it is. */
  data: Uint8Array;
}

/** Largest decompressed file accepted (4 GiB, zlib's own limit). */
const MAX_BYTES = 2 ** 32;

export async function readFileMaybeGzip(file: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(
      file,
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a file' : (e as Error).message,
    );
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return await gunzip(raw, { maxOutputLength: MAX_BYTES });
    } catch (e) {
      throw new DatasetError(file, `gzip data is corrupt or truncated (${(e as Error).message})`);
    }
  }
  return raw;
}

/** An IDX array (MNIST's format) from its bytes; `file` names it in errors. */
export function parseIdx(buffer: Uint8Array, file: string): IdxArray {
  if (buffer.length < 4)
    throw new DatasetError(file, `truncated: ${buffer.length} bytes, an IDX file starts with a 4-byte magic number`);
  if (buffer[0] !== 0 || buffer[1] !== 0 || !(buffer[2] in IDX_TYPES))
    throw new DatasetError(
      file,
      `wrong magic number 0x${Buffer.from(buffer.subarray(0, 4)).toString('hex')}: not an IDX file (expected 0x0000 then a type byte 08-0E)`,
    );
  const type = IDX_TYPES[buffer[2]];
  const rank = buffer[3];
  if (rank < 1 || rank > 4) throw new DatasetError(file, `IDX rank ${rank}: expected 1 to 4 dimensions`);
  const headerLength = 4 + 4 * rank;
  if (buffer.length < headerLength)
    throw new DatasetError(file, `truncated inside the header (${buffer.length} of ${headerLength} bytes)`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1) * type.size;
  const actual = buffer.length - headerLength;
  if (actual < expected)
    throw new DatasetError(
      file,
      `truncated: dimensions [${dims.join(', ')}] need ${expected} bytes of data, the file has ${actual}`,
    );
  if (actual > expected)
    throw new DatasetError(
      file,
      `${actual - expected} bytes after the data that dimensions [${dims.join(', ')}] describe (corrupt file?)`,
    );
  return { dtype: type.name, dims, data: buffer.subarray(headerLength) };
}

/** An IDX file, raw or gzipped, checked against its header. */
export async function readIdx(file: string): Promise<IdxArray> {
  return parseIdx(await readFileMaybeGzip(file), file);
}

/** Images: uint8 IDX of rank 3 (N, H, W; one channel) or rank 4 (N, H, W, C; channels last). */
export async function readIdxImages(file: string): Promise<{
  /** The pixels. */
  images: Uint8Array;
  /** [N, 1, H, W]. */
  shape: [number, number, number, number];
}> {
  const a = await readIdx(file);
  if (a.dtype !== 'uint8') throw new DatasetError(file, `images must be uint8 (type 0x08), this file holds ${a.dtype}`);
  if (a.dims.length === 3) {
    const [n, h, w] = a.dims;
    return { images: a.data, shape: [n, 1, h, w] };
  }
  if (a.dims.length === 4) {
    const [n, h, w, c] = a.dims;
    const out = new Uint8Array(a.data.length);
    for (let i = 0; i < n; i++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let k = 0; k < c; k++) out[((i * c + k) * h + y) * w + x] = a.data[((i * h + y) * w + x) * c + k];
    return { images: out, shape: [n, c, h, w] };
  }
  throw new DatasetError(
    file,
    `images must have 3 dimensions (N, H, W) or 4 (N, H, W, C), this file has ${a.dims.length}: [${a.dims.join(', ')}]`,
  );
}

/** Labels: uint8 (or int32) IDX of rank 1. */
export async function readIdxLabels(file: string): Promise<Int32Array> {
  const a = await readIdx(file);
  if (a.dims.length !== 1)
    throw new DatasetError(
      file,
      `labels must have 1 dimension, this file has ${a.dims.length}: [${a.dims.join(', ')}]`,
    );
  if (a.dtype === 'uint8') return Int32Array.from(a.data);
  if (a.dtype === 'int32') {
    const view = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    return Int32Array.from({ length: a.dims[0] }, (_, i) => view.getInt32(4 * i, false));
  }
  throw new DatasetError(file, `labels must be uint8 or int32, this file holds ${a.dtype}`);
}
