import { SERVE_DEFAULTS } from '../../serve/options';
import { serve } from '../../serve/server';
import { UsageError } from '../args';
import { Command, DEVICE_FLAG, EXIT } from '../command';
import { modelFileOf } from './model-source';

export const serveCommand: Command = {
  name: 'serve',
  usage: `resnet serve <checkpoint | weights | run folder> [--port ${SERVE_DEFAULTS.port}] [--host 127.0.0.1] [--workers N] [--watch]`,
  summary:
    'An HTTP server: POST /v1/predict (image bytes or JSON) answers the top-k classes; GET /healthz, /readyz,\n' +
    '/metrics (Prometheus). Concurrent requests share forwards (dynamic batching). SIGTERM drains and exits 0;\n' +
    'SIGHUP (or --watch, when the file is replaced) reloads the model without dropping requests.',
  signalMessage: 'no longer accepting connections, answering the requests in flight',
  flags: {
    port: { type: 'number', description: `port (default ${SERVE_DEFAULTS.port}; 0: any free port, printed)` },
    host: { type: 'string', description: 'address to listen on (default 127.0.0.1; 0.0.0.0 for all)' },
    ...DEVICE_FLAG,
    engine: {
      type: 'string',
      description:
        'auto (default: onnxruntime on the CPU where onnxruntime-node is installed, else native), native, onnxruntime',
    },
    workers: { type: 'number', description: 'model replicas on worker threads (default 0: in the main thread)' },
    threads: { type: 'number', description: 'threads per replica (default: the cores shared among replicas)' },
    'max-batch': { type: 'number', description: 'most images per forward (default 32; 1: no batching)' },
    'max-delay-ms': { type: 'number', description: 'longest an idle server waits to batch a request (default 0)' },
    'max-queue': { type: 'number', description: 'requests in flight per replica before 503 (default 256)' },
    'max-body-mb': { type: 'number', description: 'largest request body in MiB (default 10)' },
    'max-pixels': { type: 'number', description: 'largest image in pixels (default 40000000)' },
    'timeout-ms': { type: 'number', description: 'longest a request may take (default 30000)' },
    'top-k': { type: 'number', description: 'classes per image when the request does not say (default 5)' },
    watch: { type: 'boolean', description: 'reload the model when its file is replaced' },
  },
  async run(args, ctx) {
    const [target, ...extra] = args.positional;
    if (!target) throw new UsageError('name a checkpoint, a weights file or a run folder');
    if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
    const f = args.flags;
    const num = (k: string) => f[k] as number | undefined;
    const log = (line: string) => ctx.err.write(`[${new Date().toISOString()}] ${line}\n`);
    const server = await serve({
      model: modelFileOf(target),
      ...(f.port !== undefined ? { port: num('port') } : {}),
      ...(f.host !== undefined ? { host: f.host as string } : {}),
      ...(f.device !== undefined ? { device: f.device as string } : {}),
      ...(f.engine !== undefined ? { engine: f.engine as 'auto' } : {}),
      ...(f.workers !== undefined ? { workers: num('workers') } : {}),
      ...(f.threads !== undefined ? { threads: num('threads') } : {}),
      ...(f['max-batch'] !== undefined ? { maxBatch: num('max-batch') } : {}),
      ...(f['max-delay-ms'] !== undefined ? { maxDelayMs: num('max-delay-ms') } : {}),
      ...(f['max-queue'] !== undefined ? { maxQueue: num('max-queue') } : {}),
      ...(f['max-body-mb'] !== undefined ? { maxBodyBytes: Math.round(num('max-body-mb')! * 1024 * 1024) } : {}),
      ...(f['max-pixels'] !== undefined ? { maxPixels: num('max-pixels') } : {}),
      ...(f['timeout-ms'] !== undefined ? { timeoutMs: num('timeout-ms') } : {}),
      ...(f['top-k'] !== undefined ? { topK: num('top-k') } : {}),
      watch: f.watch === true,
      onLog: log,
    });
    const onHangup = () => void server.reload().catch(() => {}); // the failure is logged; the old model serves on
    process.on('SIGHUP', onHangup);
    ctx.out.write(
      `listening on ${server.url} (model ${server.settings.model}, engine ${server.engine}: ${server.engineReason})\n`,
    );
    try {
      if (!ctx.signal.aborted)
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      await server.close();
      log('stopped: every accepted request was answered');
      return EXIT.ok;
    } finally {
      process.off('SIGHUP', onHangup);
    }
  },
};
