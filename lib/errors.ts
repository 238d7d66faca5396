// Every error the package throws is one of these, with a stable `code` and the offending field or file.

/** The base of every error this package throws; `code` tells them apart without instanceof. */
export class ResnetError extends Error {
  /** A stable code for the kind of failure ('ERR_VALIDATION', 'ERR_CHECKPOINT', ...). */
  readonly code: string;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A value the caller passed (option, spec, config key) is not allowed. */
export class ValidationError extends ResnetError {
  /** Path of the offending field, e.g. `optimizer.momentum` or `numClasses`. */
  readonly field: string;
  /** The value that was refused. */
  readonly value: unknown;
  /** What the field accepts, in words. */
  readonly allowed: string;
  constructor(field: string, value: unknown, allowed: string, message?: string) {
    super(message ?? `${field || 'value'}: expected ${allowed}, got ${formatValue(value)}`, 'ERR_VALIDATION');
    this.field = field;
    this.value = value;
    this.allowed = allowed;
  }
}

/** An input tensor does not fit the model (channels, size, data length). */
export class ShapeError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_SHAPE');
  }
}

/** A dataset file or folder is missing, truncated or malformed. */
export class DatasetError extends ResnetError {
  /** The file (or dataset) the problem is in. */
  readonly file: string;
  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, 'ERR_DATASET', options);
    this.file = file;
  }
}

/** A checkpoint, weights or model file cannot be read or does not fit. */
export class CheckpointError extends ResnetError {
  /** The file the problem is in. */
  readonly file: string;
  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, 'ERR_CHECKPOINT', options);
    this.file = file;
  }
}

/** The requested device does not exist or CUDA is not available. */
export class DeviceError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_DEVICE');
  }
}

/** The model is in use by a training run. */
export class BusyError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_BUSY');
  }
}

/** An image (bytes, raw pixels or a file given for prediction) cannot be used: not an image, too large, or
 *  raw pixels whose length does not fit their shape. `reason` says which, for a server's status code. */
export class ImageError extends ResnetError {
  /** The input's name: a path, or what the caller called it ("image", "images[3]"). */
  readonly source: string;
  /** Why the image was refused. */
  readonly reason: 'undecodable' | 'too-large' | 'wrong-shape';
  constructor(source: string, problem: string, reason: ImageError['reason'] = 'undecodable') {
    super(`${source}: ${problem}`, 'ERR_IMAGE');
    this.source = source;
    this.reason = reason;
  }
}

/** A queue is full: the caller should retry later (a server answers 503). */
export class OverloadedError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_OVERLOADED');
  }
}

/** A request's deadline passed before its result was ready (a server answers 504). */
export class DeadlineError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_DEADLINE');
  }
}

/** The device ran out of memory; the process survives and the model is unchanged. */
export class OutOfMemoryError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_OUT_OF_MEMORY');
  }
}

/** Distributed training failed: a rank that did not join or differs, an unreachable rendezvous, a build without c10d. */
export class DistributedError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_DISTRIBUTED');
  }
}

/** Training stopped because the loss or a gradient became NaN or infinite; the weights are those before that
 *  step (except inside a CUDA graph, as the message says). */
export class DivergedError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_DIVERGED');
  }
}

/** The object was disposed and can no longer be used. */
export class DisposedError extends ResnetError {
  constructor(what: string) {
    super(`${what} was disposed`, 'ERR_DISPOSED');
  }
}

/** Work was stopped by an AbortSignal. */
export class AbortError extends ResnetError {
  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super(message, 'ABORT_ERR', options);
    this.name = 'AbortError';
  }
}

/** libtorch reported an error that none of the checks above caught. */
export class NativeError extends ResnetError {
  constructor(message: string) {
    super(message, 'ERR_NATIVE');
  }
}

/** Turns an error thrown by the addon (a plain Error with `code`) into the matching typed error, which keeps
 *  the addon's error as its `cause`. lib/native.ts applies it to every call. */
export function fromNative(error: unknown, context?: string): Error {
  if (error instanceof ResnetError || !isError(error)) return error as Error;
  const code = (error as { code?: string }).code;
  const message = context ? `${context}: ${error.message}` : error.message;
  let typed: ResnetError;
  switch (code) {
    case 'ERR_SHAPE':
      typed = new ShapeError(message);
      break;
    case 'ERR_DEVICE':
      typed = new DeviceError(message);
      break;
    case 'ERR_BUSY':
      typed = new BusyError(message);
      break;
    case 'ERR_OUT_OF_MEMORY':
      typed = new OutOfMemoryError(message);
      break;
    case 'ERR_DISTRIBUTED':
      typed = new DistributedError(message);
      break;
    case 'ERR_DIVERGED':
      typed = new DivergedError(message);
      break;
    case 'ERR_DISPOSED':
      typed = new DisposedError(context ?? 'the object');
      break;
    case 'ERR_ABORTED':
      typed = new AbortError(message);
      break;
    case 'ERR_DATASET':
      typed = new DatasetError(context ?? 'dataset', error.message);
      break;
    case 'ERR_STATE':
    case 'ERR_CHECKPOINT':
      typed = new CheckpointError(context ?? 'state', error.message);
      break;
    default:
      if (error.name === 'TypeError') return error;
      typed = new NativeError(message);
  }
  Object.defineProperty(typed, 'cause', { value: error, enumerable: false, configurable: true, writable: true });
  if (error.stack) typed.stack = `${typed.name}: ${typed.message}\n${error.stack.split('\n').slice(1).join('\n')}`;
  return typed;
}

/** The same native failure, told with `context` (the file or dataset it concerns), where `error` came from the
 *  addon untold; any other error as it is. */
export function inContext(error: unknown, context: string): unknown {
  const cause = error instanceof ResnetError ? error.cause : undefined;
  return isError(cause) && typeof (cause as { code?: unknown }).code === 'string' ? fromNative(cause, context) : error;
}

// Errors from the addon and from jest's test realm are not `instanceof` this realm's Error.
function isError(value: unknown): value is Error {
  return value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';
}

export function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return value.length > 8 ? `an array of ${value.length} items` : safeJson(value);
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of ${(value as Uint8Array).length} items`;
  if (value !== null && typeof value === 'object') return `an object ${safeJson(value).slice(0, 80)}`;
  return String(value);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
