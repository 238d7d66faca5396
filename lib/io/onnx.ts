// ONNX export from the network's own operator trace (the same walk that gives summary()): BatchNormalization
// in inference form, weights as initializers, the batch dimension dynamic. Verified with onnxruntime.
import type { Model } from '../model';
import { ValidationError, fromNative } from '../errors';
import { packageVersion } from '../info';
import { s } from '../validate';
import { writeFileAtomic } from './atomic';
import { ProtoWriter } from './protobuf';

export interface OnnxOptions {
  /** Operator set, 13 or later (default 17). */
  opset?: number;
  /** Input height and width (default: the training crop, else 224 for the ImageNet family and 32 for CIFAR nets). */
  inputSize?: number | [number, number];
}

const ONNX_TYPE: Record<string, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, float64: 11 };

// The IR version that goes with each operator set (onnx/onnx docs/Versioning.md).
function irVersion(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function tensorProto(w: ProtoWriter, name: string, dtype: string, shape: number[], data: ArrayBufferView) {
  w.ints(1, shape).int(2, ONNX_TYPE[dtype]).string(8, name).bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

function valueInfo(w: ProtoWriter, name: string, dims: (number | string)[]) {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, 1).message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      })));
}

/** Encodes the model (eval-mode semantics) as an ONNX ModelProto. */
export async function encodeOnnx(model: Model, options: OnnxOptions = {}): Promise<Buffer> {
  const opset = s.integer({ min: 13, max: 21 }).parse(options.opset ?? 17, 'opset');
  const size = options.inputSize ?? model.preprocessing?.size ?? (model.spec.stem === 'imagenet' ? 224 : 32);
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  for (const v of [h, w]) s.integer({ min: model.minInputSize, max: 16384 }).parse(v, 'inputSize');
  let graph, state;
  try {
    graph = model.handle().trace(h, w);
    state = new Map((await model.handle().exportState()).map((t) => [t.name, t]));
  } catch (e) {
    throw fromNative(e);
  }
  const finalOutput = graph.output;
  const rename = (v: string) => (v === finalOutput ? 'logits' : v);
  const body = new ProtoWriter();
  body.int(1, irVersion(opset)).string(2, 'resnet-torch').string(3, packageVersion())
    .message(8, (o) => o.string(1, '').int(2, opset))
    .message(7, (g) => {
      for (const n of graph.nodes) {
        g.message(1, (node) => {
          node.strings(1, n.inputs.map(rename)).string(2, rename(n.output)).string(3, n.name).string(4, n.op);
          for (const [name, ints] of Object.entries(n.intAttrs))
            node.message(5, (a) => (ints.length === 1 && (name === 'group' || name === 'axis' || name === 'transB') ? a.string(1, name).int(3, ints[0]).int(20, 2) : a.string(1, name).ints(8, ints).int(20, 7)));
          for (const [name, f] of Object.entries(n.floatAttrs)) node.message(5, (a) => a.string(1, name).float(2, f).int(20, 1));
        });
      }
      g.string(2, model.spec.arch ?? 'resnet');
      for (const name of graph.weights) {
        const t = state.get(name);
        if (!t) throw new ValidationError('model', name, 'a traced weight', `the trace names ${name}, which the model lacks`);
        g.message(5, (init) => tensorProto(init, name, t.dtype, t.shape, t.data));
      }
      for (const c of graph.constants) g.message(5, (init) => tensorProto(init, c.name, c.dtype, c.shape, c.data));
      g.message(11, (v) => valueInfo(v, 'input', ['batch', model.inChannels, h, w]));
      g.message(12, (v) => valueInfo(v, 'logits', ['batch', model.numClasses]));
    });
  return body.finish();
}

export async function exportOnnx(model: Model, file: string, options: OnnxOptions = {}): Promise<void> {
  s.string().parse(file, 'path');
  s.object({ opset: s.optional(s.integer()), inputSize: s.optional(s.union(s.integer(), s.array(s.integer(), { minLength: 2, maxLength: 2 }))) })
    .parse(options, 'options');
  await writeFileAtomic(file, [await encodeOnnx(model, options)]);
}
