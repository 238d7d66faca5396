// Dataset files written byte by byte, independently of the readers under test.
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';

export function idxBytes(typeCode: number, dims: number[], payload: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = typeCode;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(payload)]);
}

/** One CIFAR record: label byte(s), then the R, G and B planes of 32x32. */
export function cifarRecord(labels: number[], pixel: (c: number, y: number, x: number) => number): Buffer {
  const out = Buffer.alloc(labels.length + 3072);
  labels.forEach((l, i) => (out[i] = l));
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) out[labels.length + c * 1024 + y * 32 + x] = pixel(c, y, x);
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (ISO 3309, as PNG and zip use it), from its definition: independent of zlib's. */
export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A PNG (8-bit grey or RGB, no filter) from interleaved pixels. */
export function pngBytes(width: number, height: number, channels: 1 | 3, pixels: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 1 ? 0 : 2;
  const rows = Buffer.alloc(height * (1 + width * channels));
  for (let y = 0; y < height; y++)
    Buffer.from(pixels.subarray(y * width * channels, (y + 1) * width * channels)).copy(
      rows,
      y * (1 + width * channels) + 1,
    );
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export async function writeFiles(root: string, files: Record<string, Buffer | string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await fsp.writeFile(path.join(root, name), content);
  }
}

/** A zip archive of stored (uncompressed) entries, laid out as APPNOTE.TXT section 4.3 describes. */
export function zipStored(entries: Record<string, Uint8Array>): Buffer {
  const locals: Buffer[] = [],
    centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(entries)) {
    const n = Buffer.from(name, 'utf8'),
      crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, Buffer.from(data));
    centrals.push(central, n);
    offset += 30 + n.length + data.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

/** An image folder of `n` distinct 8x8 grey PNGs in 3 classes (c0, c1, c2), in a new temporary folder. */
export async function pngFolder(n: number): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'resnet-torch-test-'));
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < n; i++)
    files[`c${i % 3}/img${String(i).padStart(3, '0')}.png`] = pngBytes(
      8,
      8,
      1,
      Uint8Array.from({ length: 64 }, (_, k) => (k * (i + 1) * 7) % 256),
    );
  await writeFiles(dir, files);
  return dir;
}
