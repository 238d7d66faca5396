// The safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header length,
// a JSON header { name: { dtype, shape, data_offsets }, __metadata__: { string: string } }, then the data.
// Every file is untrusted: the header length, every offset and size are checked against the file before
// anything is read, and nothing in it is executed.

import { CheckpointError } from '../errors';
import { writeFileAtomic } from './atomic';
import { MAX_MODEL_FILE, readBounded } from './read-bounded';

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_SIZE: Record<DType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Our dtype names (as the native side reports them) and safetensors' ones. */
export const TO_SAFETENSORS: Record<string, DType> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};

export type TypedData =
  Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int16Array | Int8Array | Uint16Array;

export interface StoredTensor {
  dtype: DType;
  shape: number[];
  /** The raw little-endian bytes. */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

export interface ReadLimits {
  /** Largest header accepted (default 100 MiB, the reference implementation's limit). */
  maxHeaderBytes?: number;
  /** Largest file accepted (default 16 GiB). */
  maxFileBytes?: number;
}

const DEFAULT_MAX_HEADER = 100 * 2 ** 20;

/** Parses a safetensors image held in memory; `file` names it in errors. */
export function parseSafetensors(buffer: Uint8Array, file: string, limits: ReadLimits = {}): SafetensorsFile {
  const fail = (problem: string): never => {
    throw new CheckpointError(file, problem);
  };
  if (buffer.length < 8)
    fail(`truncated: ${buffer.length} bytes, a safetensors file starts with an 8-byte header length`);
  // torch.save writes a zip (PK\x03\x04), or a bare pickle (\x80) before PyTorch 1.6: say so rather than "bad header".
  if (buffer[0] === 0x50 && buffer[1] === 0x4b && buffer[2] === 0x03 && buffer[3] === 0x04)
    fail('is a PyTorch file (torch.save, zip format), not safetensors: load it with model.loadPytorch(file)');
  if (buffer[0] === 0x80 && buffer[1] >= 2 && buffer[1] <= 5)
    fail('is a pickle (torch.save before PyTorch 1.6?), not safetensors');
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = view.getBigUint64(0, true);
  const maxHeader = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER;
  if (headerLength > BigInt(maxHeader))
    fail(`header length ${headerLength} exceeds the limit of ${maxHeader} bytes (not a safetensors file, or corrupt)`);
  const n = Number(headerLength);
  if (8 + n > buffer.length)
    fail(`truncated: the header claims ${n} bytes, the file has ${buffer.length - 8} after the length`);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buffer.buffer, buffer.byteOffset + 8, n).toString('utf8'));
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const dataStart = 8 + n;
  const dataLength = buffer.length - dataStart;
  const tensors = new Map<string, StoredTensor>();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>))
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') fail(`tensor "${name}": entry is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_SIZE))
      fail(`tensor "${name}": unknown dtype ${JSON.stringify(e.dtype)}`);
    const dtype = e.dtype as DType;
    if (!Array.isArray(e.shape) || e.shape.length > 16 || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    const shape = e.shape as number[];
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`tensor "${name}": data_offsets ${JSON.stringify(offsets)} are not two non-negative integers`);
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`tensor "${name}": data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength)
      fail(
        `tensor "${name}": data [${begin}, ${end}) runs past the end of the file (truncated? ${dataLength} data bytes)`,
      );
    const numel = shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(numel * DTYPE_SIZE[dtype]) || numel * DTYPE_SIZE[dtype] !== end - begin)
      fail(
        `tensor "${name}": shape [${shape.join(', ')}] of ${dtype} needs ${numel * DTYPE_SIZE[dtype]} bytes, data_offsets give ${end - begin}`,
      );
    spans.push([begin, end, name]);
    tensors.set(name, { dtype, shape, bytes: buffer.subarray(dataStart + begin, dataStart + end) });
  }
  spans.sort((a, b) => a[0] - b[0]);
  let cursor = 0;
  for (const [begin, end, name] of spans) {
    if (begin < cursor) fail(`tensor "${name}": its data overlaps the previous tensor's`);
    if (begin > cursor) fail(`tensor "${name}": a hole of ${begin - cursor} bytes before its data`);
    cursor = end;
  }
  if (cursor !== dataLength)
    fail(`${dataLength - cursor} bytes after the last tensor (corrupt or not a safetensors file)`);
  return { tensors, metadata };
}

export async function readSafetensors(file: string, limits: ReadLimits = {}): Promise<SafetensorsFile> {
  const buffer = await readBounded(file, limits.maxFileBytes ?? MAX_MODEL_FILE);
  return parseSafetensors(buffer, file, limits);
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  data: ArrayBufferView;
}

/** Serialises tensors in the given order; the header is padded with spaces to 8-byte alignment. */
export function encodeSafetensors(tensors: TensorToWrite[], metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data.byteLength;
    const want = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype];
    if (bytes !== want)
      throw new Error(`tensor ${t.name}: ${bytes} bytes for shape [${t.shape}] of ${t.dtype} (${want} expected)`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return [
    prefix,
    Buffer.from(json),
    ...tensors.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ];
}

export async function writeSafetensors(
  file: string,
  tensors: TensorToWrite[],
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** A typed array over (a copy of, when unaligned) the stored bytes, for the dtypes the model holds. */
export function typedArrayOf(t: StoredTensor): TypedData {
  const size = DTYPE_SIZE[t.dtype];
  const aligned = t.bytes.byteOffset % size === 0 ? t.bytes : new Uint8Array(t.bytes);
  const n = aligned.byteLength / size;
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, n);
    case 'F64':
      return new Float64Array(aligned.buffer, aligned.byteOffset, n);
    case 'I64':
      return new BigInt64Array(aligned.buffer, aligned.byteOffset, n);
    case 'I32':
      return new Int32Array(aligned.buffer, aligned.byteOffset, n);
    case 'I16':
      return new Int16Array(aligned.buffer, aligned.byteOffset, n);
    case 'I8':
      return new Int8Array(aligned.buffer, aligned.byteOffset, n);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(aligned.buffer, aligned.byteOffset, n);
    case 'F16':
    case 'BF16':
      return new Uint16Array(aligned.buffer, aligned.byteOffset, n);
  }
}

/** A floating-point tensor's values for a model: float64 as they are (a float64 model keeps every digit; a float32
 *  one converts them itself), the others as float32. */
export function toFloatValues(t: StoredTensor): Float32Array | Float64Array {
  return t.dtype === 'F64' ? (typedArrayOf(t) as Float64Array) : toFloat32(t);
}

/** float16 / bfloat16 / float64 values as float32 (the model's dtype). */
export function toFloat32(t: StoredTensor): Float32Array {
  const src = typedArrayOf(t);
  if (t.dtype === 'F32') return src as Float32Array;
  const out = new Float32Array(src.length);
  if (t.dtype === 'F64') out.set(src as Float64Array);
  else if (t.dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    (src as Uint16Array).forEach((v, i) => {
      bits[i] = v << 16;
    });
  } else if (t.dtype === 'F16') {
    (src as Uint16Array).forEach((h, i) => {
      out[i] = halfToFloat(h);
    });
  } else {
    throw new Error(`${t.dtype} is not a floating-point dtype`);
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}
