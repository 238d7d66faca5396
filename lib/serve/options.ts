// serve()'s options: validated once, defaults in one place (the CLI's flags map onto these).
import * as os from 'os';

import { s } from '../validate';

/** serve()'s options (the CLI's flags map onto these). */
export interface ServeOptions {
  /** The weights file or checkpoint to serve (what saveWeights, train and the CLI write). */
  model: string;
  /** Port to listen on (default 8080; 0 picks a free one, see Server.port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1; '0.0.0.0' for every interface). */
  host?: string;
  /** Where the model runs: 'cpu' (default) or 'cuda:N'. */
  device?: string;
  /** 'auto' (default): onnxruntime-node on the CPU where it is installed (the faster there), else 'native';
   *  or either one by name. */
  engine?: 'native' | 'onnxruntime' | 'auto';
  /** Model replicas on worker threads (default 0: the model runs in the server's thread). */
  workers?: number;
  /** Intra-op threads per replica (default: the cores divided among the replicas). */
  threads?: number;
  /** Dynamic batching: most images per forward (default 32; 1 turns batching off). */
  maxBatch?: number;
  /** Longest a request waits for others to share its forward when no forward is running (default 0: it goes at
   *  once, and the requests that arrive during its forward form the next batch; waiting 2 ms only delayed lone requests, bench/RESULTS.md). */
  maxDelayMs?: number;
  /** Requests accepted per replica and not yet answered (being read, decoded, or waiting for a forward) before
   *  new ones get 503 at once (default 256). This bounds the latency under overload. */
  maxQueue?: number;
  /** Largest request body (default 10 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Largest image in pixels, checked before decoding (default 40 million); larger ones get 413. */
  maxPixels?: number;
  /** Longest a request may take from its first byte to its answer (default 30 s): 408 while the body is still
   *  arriving (slow clients), 504 once it waits for the model. */
  timeoutMs?: number;
  /** Classes per image when the request does not say (default 5). */
  topK?: number;
  /** Reload the model when its file is replaced (default false; Server.reload() and SIGHUP in the CLI do it too). */
  watch?: boolean;
  /** Receives one line per event worth logging (reloads, internal errors). Default: none. */
  onLog?: (line: string) => void;
}

export type ServeSettings = Required<Omit<ServeOptions, 'onLog'>> & Pick<ServeOptions, 'onLog'>;

export const serveOptionsSchema = s.object<ServeOptions>({
  model: s.string(),
  port: s.optional(s.integer({ min: 0, max: 65535 })),
  host: s.optional(s.string()),
  device: s.optional(s.string()),
  engine: s.optional(s.enum(['native', 'onnxruntime', 'auto'] as const)),
  workers: s.optional(s.integer({ min: 0, max: 256 })),
  threads: s.optional(s.integer({ min: 0, max: 1024 })),
  maxBatch: s.optional(s.integer({ min: 1, max: 4096 })),
  maxDelayMs: s.optional(s.number({ min: 0, max: 10_000 })),
  maxQueue: s.optional(s.integer({ min: 1, max: 1 << 20 })),
  maxBodyBytes: s.optional(s.integer({ min: 1, max: 2 ** 31 })),
  maxPixels: s.optional(s.integer({ min: 1, max: 2 ** 40 })),
  timeoutMs: s.optional(s.integer({ min: 1, max: 3_600_000 })),
  topK: s.optional(s.integer({ min: 1, max: 1_000_000 })),
  watch: s.optional(s.boolean()),
  onLog: s.optional(s.func()),
});

/** The defaults the CLI's help names too. */
export const SERVE_DEFAULTS = { port: 8080 };

export function resolveServeOptions(options: ServeOptions): ServeSettings {
  const o = serveOptionsSchema.parse(options, 'options');
  const workers = o.workers ?? 0;
  const maxBatch = o.maxBatch ?? 32;
  return {
    model: o.model,
    port: o.port ?? SERVE_DEFAULTS.port,
    host: o.host ?? '127.0.0.1',
    device: o.device ?? 'cpu',
    engine: o.engine ?? 'auto',
    workers,
    threads: o.threads ?? (workers > 0 ? Math.max(1, Math.floor(os.cpus().length / workers)) : 0),
    maxBatch,
    maxDelayMs: o.maxDelayMs ?? 0,
    maxQueue: o.maxQueue ?? 256,
    maxBodyBytes: o.maxBodyBytes ?? 10 * 1024 * 1024,
    maxPixels: o.maxPixels ?? 40_000_000,
    timeoutMs: o.timeoutMs ?? 30_000,
    topK: o.topK ?? 5,
    watch: o.watch ?? false,
    onLog: o.onLog,
  };
}
