// The plain tensor shape the facade speaks: a typed array and its shape, row-major (N, C, H, W).
import { ShapeError, ValidationError, formatValue } from './errors';

/** A dense float32 batch: data in N×C×H×W order and its shape. */
export interface Tensor {
  /** The values, in N×C×H×W order. */
  data: Float32Array;
  /** [N, C, H, W]. */
  shape: number[];
}

export const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

type TypedArrayName = 'Float32Array' | 'Float64Array' | 'Uint8Array' | 'Int32Array' | 'BigInt64Array';
type TypedArrayOf<N extends TypedArrayName> = N extends 'Float32Array'
  ? Float32Array
  : N extends 'Uint8Array'
    ? Uint8Array
    : N extends 'Float64Array'
      ? Float64Array
      : N extends 'Int32Array'
        ? Int32Array
        : BigInt64Array;

/**
 * `value` is a typed array of this kind, from any realm: `instanceof` fails for arrays made in another realm
 * (a jest test file, a vm context) or handed over by the addon, and for Node's Buffers read by fs under jest.
 */
export function isTypedArray<N extends TypedArrayName>(value: unknown, name: N): value is TypedArrayOf<N> {
  return ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === `[object ${name}]`;
}

/** Checks an image batch {data: Float32Array, shape: [N, C, H, W]} against a model's channels and minimum size. */
export function checkImageBatch(
  x: unknown,
  field: string,
  expect: { channels: number; minSize: number; arch?: string },
): Tensor {
  if (x === null || typeof x !== 'object')
    throw new ValidationError(field, x, 'an object { data: Float32Array, shape: [N, C, H, W] }');
  const { data, shape } = x as Partial<Tensor>;
  if (!isTypedArray(data, 'Float32Array')) throw new ValidationError(`${field}.data`, data, 'a Float32Array');
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0))
    throw new ShapeError(`${field}.shape must be [N, C, H, W] with positive integers, got ${formatValue(shape)}`);
  if (data.length !== product(shape))
    throw new ShapeError(
      `${field}.data holds ${data.length} values, but shape [${shape.join(', ')}] needs ${product(shape)}`,
    );
  const [, c, h, w] = shape;
  if (c !== expect.channels)
    throw new ShapeError(
      `${field} has ${c} channels, the model takes ${expect.channels} (shape [${shape.join(', ')}])`,
    );
  if (h < expect.minSize || w < expect.minSize)
    throw new ShapeError(
      `${field} ${h}x${w} is too small${expect.arch ? ` for ${expect.arch}` : ''}: ` +
        `the minimum is ${expect.minSize}x${expect.minSize}`,
    );
  return { data, shape: [...shape] };
}
