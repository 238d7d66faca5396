// ONNX export from the network's own operator trace (the same walk that gives summary()): BatchNormalization
// in inference form, weights as initializers, the batch dimension dynamic. Verified with onnxruntime.
import { ValidationError } from '../errors';
import { packageVersion } from '../info';
import type { NativeModel } from '../native';
import { writeFileAtomic } from './atomic';
import { ProtoWriter } from './protobuf';

/** exportOnnx()'s options. */
export interface OnnxOptions {
  /** Operator set, 13 to 21 (default 17). */
  opset?: number;
  /** Input height and width (default: the training crop, else 224 for the ImageNet family and 32 for CIFAR nets). */
  inputSize?: number | [number, number];
}

/** The operator sets the export writes: the default, and the range it accepts (13: BatchNormalization's inference
 *  form as we write it; 21: the newest whose IR version below we know). */
export const ONNX_OPSET = { default: 17, min: 13, max: 21 };

const ONNX_TYPE: Record<string, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, float64: 11 };

// The IR version that goes with each operator set (onnx/onnx docs/Versioning.md).
function irVersion(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function tensorProto(w: ProtoWriter, name: string, dtype: string, shape: number[], data: ArrayBufferView) {
  w.ints(1, shape)
    .int(2, ONNX_TYPE[dtype])
    .string(8, name)
    .bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

function valueInfo(w: ProtoWriter, name: string, dims: (number | string)[]) {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, 1).message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
}

/** The trace's integer attributes that ONNX defines as one INT (the rest are INTS). */
const SCALAR_INT_ATTRIBUTES = new Set(['group', 'axis', 'transB', 'ceil_mode', 'count_include_pad']);

/** What the file says of the network besides its trace. */
export interface OnnxHead {
  arch?: string;
  inChannels: number;
  numClasses: number;
}

/** Encodes the network (eval-mode semantics) for inputs of `size` as an ONNX ModelProto. */
export async function encodeOnnx(
  handle: NativeModel,
  head: OnnxHead,
  opset: number,
  [h, w]: [number, number],
): Promise<Buffer> {
  const graph = handle.trace(h, w);
  const state = new Map((await handle.exportState()).map((t) => [t.name, t]));
  const finalOutput = graph.output;
  const rename = (v: string) => (v === finalOutput ? 'logits' : v);
  const body = new ProtoWriter();
  body
    .int(1, irVersion(opset))
    .string(2, 'resnet-torch')
    .string(3, packageVersion())
    .message(8, (o) => o.string(1, '').int(2, opset))
    .message(7, (g) => {
      for (const n of graph.nodes) {
        g.message(1, (node) => {
          node.strings(1, n.inputs.map(rename)).string(2, rename(n.output)).string(3, n.name).string(4, n.op);
          for (const [name, ints] of Object.entries(n.intAttrs))
            node.message(5, (a) =>
              ints.length === 1 && SCALAR_INT_ATTRIBUTES.has(name)
                ? a.string(1, name).int(3, ints[0]).int(20, 2)
                : a.string(1, name).ints(8, ints).int(20, 7),
            );
          for (const [name, f] of Object.entries(n.floatAttrs))
            node.message(5, (a) => a.string(1, name).float(2, f).int(20, 1));
        });
      }
      g.string(2, head.arch ?? 'resnet');
      for (const name of graph.weights) {
        const t = state.get(name);
        if (!t)
          throw new ValidationError('model', name, 'a traced weight', `the trace names ${name}, which the model lacks`);
        // The graph computes in float32 (its input's type): a float64 model's weights are exported as float32.
        if (t.dtype === 'float64')
          g.message(5, (init) =>
            tensorProto(init, name, 'float32', t.shape, Float32Array.from(t.data as Float64Array)),
          );
        else g.message(5, (init) => tensorProto(init, name, t.dtype, t.shape, t.data));
      }
      for (const c of graph.constants) g.message(5, (init) => tensorProto(init, c.name, c.dtype, c.shape, c.data));
      g.message(11, (v) => valueInfo(v, 'input', ['batch', head.inChannels, h, w]));
      g.message(12, (v) => valueInfo(v, 'logits', ['batch', head.numClasses]));
    });
  return body.finish();
}

/** Writes the file atomically; `model` resolved the options (lib/model/model.ts). */
export async function exportOnnx(
  handle: NativeModel,
  head: OnnxHead,
  file: string,
  o: { opset: number; size: [number, number] },
): Promise<void> {
  await writeFileAtomic(file, [await encodeOnnx(handle, head, o.opset, o.size)]);
}
