// The engines an InferenceModel runs on: our folded graph (oneDNN's primitives or ATen's ops), or onnxruntime-node
// on our ONNX export; openEngine makes the one asked for, or for 'auto' the faster one by measurement.
import { DisposedError, ShapeError, ValidationError } from '../errors';
import { getNumThreads, info } from '../info';
import { ONNX_OPSET, encodeOnnx } from '../io/onnx';
import { NativeFused, NativeModel, native } from '../native';
import { Tensor, checkImageBatch } from '../tensor';
import { cachedVerdict, describeVerdict, measureEngines } from './engine-choice';
import { InferenceBackend, InferencePrecision } from './inference-model';

/** What runs the native engine's operators: 'auto' oneDNN's primitives where this build, the CPU and the net allow
 *  (native/infer/onednn_program.h), else ATen; 'onednn' those primitives or an error saying why not; 'aten' ATen. */
export const NATIVE_KERNELS = ['auto', 'onednn', 'aten'] as const;
export type NativeKernels = (typeof NATIVE_KERNELS)[number];

/** int8's calibration images, checked: a batch at the inference size as the net takes them (normalised), with
 *  finite values; given only with precision 'int8'. */
export function checkCalibration(
  precision: InferencePrecision,
  calibration: unknown,
  size: [number, number],
  channels: number,
): Tensor | undefined {
  if (precision !== 'int8') {
    if (calibration !== undefined)
      throw new ValidationError('calibration', '(images)', 'no calibration unless precision is "int8"');
    return undefined;
  }
  if (calibration === undefined)
    throw new ValidationError(
      'calibration',
      undefined,
      'images (N×C×H×W, as the model takes them) to calibrate int8 on',
      'precision: "int8" needs `calibration`: a batch of your images at the inference size, normalised as the ' +
        'model takes them (a few hundred give the activations their ranges)',
    );
  const x = checkImageBatch(calibration, 'calibration', { channels, minSize: 1 });
  const [, , h, w] = x.shape;
  if (h !== size[0] || w !== size[1])
    throw new ShapeError(`calibration is ${h}x${w}; the inference size is ${size[0]}x${size[1]} (inputSize)`);
  const bad = x.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0)
    throw new ValidationError(
      'calibration',
      x.data[bad],
      'finite values',
      `calibration.data[${bad}] is ${x.data[bad]}`,
    );
  return x;
}

export async function nativeBackend(
  handle: NativeModel,
  [h, w]: [number, number],
  channelsLast: boolean,
  kernels: NativeKernels,
  precision: InferencePrecision = 'float32',
  calibration?: Tensor,
): Promise<InferenceBackend> {
  const reduced = precision !== 'float32';
  if (reduced && kernels === 'aten')
    throw new ValidationError(
      'precision',
      precision,
      '"float32" with kernels "aten"',
      `precision: "${precision}" runs on the oneDNN program; kernels "aten" is float32`,
    );
  let fused: NativeFused | undefined = await native().fuse(
    handle,
    h,
    w,
    channelsLast,
    kernels !== 'aten',
    precision,
    calibration?.data,
    calibration?.shape,
  );
  const ran = fused.kernels();
  if (reduced && ran.kernels !== 'onednn')
    throw new ValidationError(
      'precision',
      precision,
      '"float32" for this model here',
      `precision: "${precision}" is not available for this model here: ${ran.reason}`,
    );
  if (kernels === 'onednn' && ran.kernels !== 'onednn')
    throw new ValidationError(
      'kernels',
      'onednn',
      '"auto" or "aten" for this model here',
      `kernels: "onednn" is not available for this model here: ${ran.reason}`,
    );
  return {
    engine: 'native',
    engineReason: '',
    precision,
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

/** What openEngine needs to make either engine. */
export interface EngineRequest {
  engine: 'native' | 'onnxruntime' | 'auto';
  kernels: NativeKernels;
  precision: InferencePrecision;
  /** int8's calibration images (checkCalibration). */
  calibration?: Tensor;
  channelsLast: boolean;
  device: string;
  head: { arch?: string; inChannels: number; numClasses: number };
  size: [number, number];
  /** What makes two models the same to time: the network's structure (its spec). */
  structure: unknown;
}

/** The engine asked for, or for 'auto' the faster here by measurement (engine-choice.ts): our engine where the
 *  model is on CUDA or onnxruntime-node is not installed. `engineReason` says which and why. */
export async function openEngine(handle: NativeModel, r: EngineRequest): Promise<InferenceBackend> {
  const native = () => nativeBackend(handle, r.size, r.channelsLast, r.kernels, r.precision, r.calibration);
  const ort = () => onnxRuntimeBackend(handle, r.head, r.size);
  const because = async (b: Promise<InferenceBackend>, reason: string) => ({ ...(await b), engineReason: reason });
  if (r.precision !== 'float32') {
    if (r.engine === 'onnxruntime')
      throw new ValidationError(
        'engine',
        'onnxruntime',
        `"native" or "auto" with precision "${r.precision}"`,
        `engine: "onnxruntime" runs our float32 export; precision "${r.precision}" runs on the native engine`,
      );
    return because(
      native(),
      r.engine === 'native' ? 'asked for native' : `auto: ${r.precision} runs on the native engine`,
    );
  }
  if (r.engine === 'native') return because(native(), 'asked for native');
  if (r.engine === 'onnxruntime') return because(ort(), 'asked for onnxruntime');
  if (r.device !== 'cpu') return because(native(), `auto: the model is on ${r.device} (onnxruntime runs on the CPU)`);
  try {
    await loadOnnxRuntime();
  } catch {
    return because(native(), 'auto: onnxruntime-node is not installed');
  }
  const i = info();
  const key = JSON.stringify({
    structure: r.structure,
    size: r.size,
    kernels: r.kernels,
    channelsLast: r.channelsLast,
    cpu: i.cpu,
    onednnMaxIsa: process.env.ONEDNN_MAX_CPU_ISA ?? null,
    threads: getNumThreads(),
    ours: [i.version, i.libtorchLibrary],
    onnxruntime: await onnxRuntimeVersion(),
  });
  const cached = await cachedVerdict(key);
  if (cached) return because(cached.engine === 'native' ? native() : ort(), describeVerdict(cached, true));
  const mine = await native();
  let theirs: InferenceBackend;
  try {
    theirs = await ort();
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    return { ...mine, engineReason: `auto: onnxruntime-node could not run this model (${why})` };
  }
  const both = { native: mine, onnxruntime: theirs };
  try {
    const verdict = await measureEngines(key, both, [r.head.inChannels, ...r.size]);
    both[verdict.engine === 'native' ? 'onnxruntime' : 'native'].dispose();
    return { ...both[verdict.engine], engineReason: describeVerdict(verdict, false) };
  } catch (e) {
    both.native.dispose();
    both.onnxruntime.dispose();
    throw e;
  }
}

async function onnxRuntimeVersion(): Promise<string> {
  try {
    const ort = (await loadOnnxRuntime()) as Ort & { env?: { versions?: { common?: string } } };
    return ort.env?.versions?.common ?? 'unknown';
  } catch {
    return 'absent';
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
    engineReason: '',
    precision: 'float32',
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
