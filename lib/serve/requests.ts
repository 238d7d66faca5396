// What a POST /v1/predict body may be, parsed and checked: image bytes (any image/* or octet-stream), or JSON
// with base64 images or raw pixels. Anything else is a 4xx naming the problem.
import type { RawImage } from '../images';

export interface PredictRequest {
  images: (Uint8Array | RawImage)[];
  /** One image sent (answered as { predictions }), rather than a list (answered as { results }). */
  single: boolean;
  topK: number;
}

interface Limits {
  numClasses: number;
  defaultTopK: number;
  maxImages: number;
}

/** A 4xx the server answers as it is (thrown before any work is done). */
export class RequestError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const bad = (message: string) => new RequestError(400, 'bad_request', message);

export const PREDICT_FORMATS =
  'image bytes (Content-Type image/jpeg, image/png, image/webp or application/octet-stream), or JSON ' +
  '{"image": base64} | {"images": [base64, ...]} | {"raw": {"data": base64, "width", "height", "channels"}}';

export function parsePredictRequest(
  contentType: string | undefined,
  body: Buffer,
  url: URL,
  limits: Limits,
): PredictRequest {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  let images: (Uint8Array | RawImage)[];
  let single = true;
  let topK: unknown = url.searchParams.get('topK') ?? undefined;
  if (type.startsWith('image/') || type === 'application/octet-stream') {
    if (body.length === 0) throw bad('the body is empty: send the bytes of an image');
    images = [body];
  } else if (type === 'application/json') {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw bad(`the body is not valid JSON (${(e as Error).message})`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw bad(`the JSON body must be an object: ${PREDICT_FORMATS}`);
    const o = json as Record<string, unknown>;
    const given = ['image', 'images', 'raw'].filter((k) => o[k] !== undefined);
    if (given.length !== 1) throw bad(`the JSON body needs exactly one of "image", "images" or "raw"`);
    const unknown = Object.keys(o).filter((k) => !['image', 'images', 'raw', 'topK'].includes(k));
    if (unknown.length > 0)
      throw bad(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`);
    if (o.topK !== undefined) topK = o.topK;
    if (o.image !== undefined) images = [base64(o.image, 'image')];
    else if (o.images !== undefined) {
      if (!Array.isArray(o.images) || o.images.length === 0)
        throw bad('"images" must be a non-empty array of base64 strings');
      if (o.images.length > limits.maxImages)
        throw bad(`"images" holds ${o.images.length} images, at most ${limits.maxImages} per request`);
      images = o.images.map((v, i) => base64(v, `images[${i}]`));
      single = false;
    } else images = [raw(o.raw)];
  } else
    throw new RequestError(
      415,
      'unsupported_media_type',
      `Content-Type ${type ? `"${type}"` : '(none)'} is not accepted: send ${PREDICT_FORMATS}`,
    );
  const k = topK === undefined ? Math.min(limits.defaultTopK, limits.numClasses) : Number(topK);
  if (!Number.isInteger(k) || k < 1 || k > limits.numClasses)
    throw bad(`topK must be an integer from 1 to ${limits.numClasses}, got ${JSON.stringify(topK)}`);
  return { images, single, topK: k };
}

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

function base64(value: unknown, field: string): Uint8Array {
  if (typeof value !== 'string') throw bad(`"${field}" must be a base64 string`);
  const text = value.replace(/^data:[^,]*;base64,/, '').replace(/\s+/g, '');
  if (!BASE64.test(text)) throw bad(`"${field}" is not valid base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0) throw bad(`"${field}" is empty`);
  return bytes;
}

function raw(value: unknown): RawImage {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw bad('"raw" must be an object {"data": base64, "width", "height", "channels"}');
  const r = value as Record<string, unknown>;
  for (const k of ['width', 'height'] as const)
    if (!Number.isInteger(r[k]) || (r[k] as number) < 1 || (r[k] as number) > 65535)
      throw bad(`"raw.${k}" must be an integer from 1 to 65535`);
  if (r.channels !== 1 && r.channels !== 3 && r.channels !== 4) throw bad('"raw.channels" must be 1, 3 or 4');
  return {
    data: base64(r.data, 'raw.data'),
    width: r.width as number,
    height: r.height as number,
    channels: r.channels,
  };
}
