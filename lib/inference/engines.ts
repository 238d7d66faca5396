// The engines an InferenceModel runs on: our folded libtorch graph, or onnxruntime-node on our ONNX export.
import { DisposedError, ValidationError } from '../errors';
import { getNumThreads } from '../info';
import { ONNX_OPSET, encodeOnnx } from '../io/onnx';
import { NativeFused, NativeModel, native } from '../native';
import { Tensor } from '../tensor';
import { InferenceBackend } from './inference-model';

/** What runs the native engine's operators: 'auto' oneDNN's primitives where this build, the CPU and the net allow
 *  (native/infer/onednn_program.h), else ATen; 'onednn' those primitives or an error saying why not; 'aten' ATen. */
export const NATIVE_KERNELS = ['auto', 'onednn', 'aten'] as const;
export type NativeKernels = (typeof NATIVE_KERNELS)[number];

export async function nativeBackend(
  handle: NativeModel,
  [h, w]: [number, number],
  channelsLast: boolean,
  kernels: NativeKernels,
): Promise<InferenceBackend> {
  let fused: NativeFused | undefined = await native().fuse(handle, h, w, channelsLast, kernels !== 'aten');
  const ran = fused.kernels();
  if (kernels === 'onednn' && ran.kernels !== 'onednn')
    throw new ValidationError(
      'kernels',
      'onednn',
      '"auto" or "aten" for this model here',
      `kernels: "onednn" is not available for this model here: ${ran.reason}`,
    );
  return {
    engine: 'native',
    kernels: ran.kernels,
    kernelsReason: ran.reason,
    folded: fused.folded(),
    async run(x: Tensor) {
      if (!fused) throw new DisposedError('the inference model');
      return fused.forward(x.data, x.shape);
    },
    async profile(x: Tensor) {
      if (!fused) throw new DisposedError('the inference model');
      return fused.profile(x.data, x.shape);
    },
    dispose() {
      fused = undefined; // the native graph is freed when its handle is collected
    },
  };
}

// The parts of onnxruntime-node's API we use: typed here so the package needs it only when the engine is chosen.
interface OrtTensor {
  data: unknown;
  dims: readonly number[];
}
interface OrtSession {
  outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  InferenceSession: { create(model: Uint8Array, options: object): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

/** 'auto' picks onnxruntime-node on the CPU where it is installed (faster there at every size bench/infer-engines.ts
 *  measured), and our engine otherwise (CUDA, or no onnxruntime-node). */
export async function chooseEngine(
  requested: 'native' | 'onnxruntime' | 'auto',
  device: string,
): Promise<'native' | 'onnxruntime'> {
  if (requested !== 'auto') return requested;
  if (device !== 'cpu') return 'native';
  try {
    await loadOnnxRuntime();
    return 'onnxruntime';
  } catch {
    return 'native';
  }
}

async function loadOnnxRuntime(): Promise<Ort> {
  const name = 'onnxruntime-node';
  try {
    const mod = (await import(name)) as Ort & { default?: Ort };
    return mod.InferenceSession ? mod : mod.default!;
  } catch (e) {
    throw new ValidationError(
      'engine',
      'onnxruntime',
      'an engine whose package is installed',
      `engine: "onnxruntime" needs the onnxruntime-node package (npm install onnxruntime-node): ${(e as Error).message.split('\n')[0]}`,
    );
  }
}

export async function onnxRuntimeBackend(
  handle: NativeModel,
  head: { arch?: string; inChannels: number; numClasses: number },
  size: [number, number],
): Promise<InferenceBackend> {
  if (handle.device() !== 'cpu')
    throw new ValidationError(
      'engine',
      'onnxruntime',
      '"native" for a model on a CUDA device',
      `engine: "onnxruntime" runs on the CPU; this model is on ${handle.device()}`,
    );
  const ort = await loadOnnxRuntime();
  const bytes = await encodeOnnx(handle, head, ONNX_OPSET.default, size);
  let session: OrtSession | undefined = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: getNumThreads(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  return {
    engine: 'onnxruntime',
    kernels: 'onnxruntime',
    kernelsReason: '',
    folded: 0,
    async run(x: Tensor) {
      if (!session) throw new DisposedError('the inference model');
      const out = await session.run({ input: new ort.Tensor('float32', x.data, x.shape) });
      const logits = out[session.outputNames[0]];
      // ONNX Runtime's output lives in its own realm's Float32Array: copy into ours.
      return { data: Float32Array.from(logits.data as ArrayLike<number>), shape: logits.dims.map(Number) };
    },
    dispose() {
      void session?.release();
      session = undefined;
    },
  };
}
