// The HTTP server: POST /v1/predict (image bytes or JSON), GET /healthz, /readyz and /metrics, on Node's http.
// Every bad request gets a 4xx with a JSON error; overload gets 503 at once; nothing a client sends can take
// the process down. close() stops accepting, answers what was accepted, then frees the model.
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';

import {
  AbortError,
  DeadlineError,
  DisposedError,
  ImageError,
  OverloadedError,
  ResnetError,
  ShapeError,
  ValidationError,
} from '../errors';
import { RawImage } from '../images';
import { imagesToBatch } from '../inference/image-batch';
import { Prediction, topK } from '../predictions';
import { Counter, Gauge, Histogram, InfoGauge, PROMETHEUS_CONTENT_TYPE, Registry } from './prometheus';
import { ServeOptions, ServeSettings, resolveServeOptions } from './options';
import { ReplicaSettings, Replicas, startReplicas } from './replicas';
import { PredictRequest, RequestError, parsePredictRequest } from './requests';

/** An error with the status code it answers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** The HTTP server serve() starts: predictions, probes, metrics, reload and drain. */
export class Server {
  /** http://host:port of the listening server. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Its validated settings. */
  readonly settings: ServeSettings;
  #http: http.Server;
  #replicas: Replicas;
  #inFlight = 0;
  /** Requests using each model (a replaced one is closed when its count reaches 0). */
  #holders = new Map<Replicas, { count: number; released?: () => void }>();
  #idle: (() => void)[] = [];
  #draining = false;
  #closing: Promise<void> | undefined;
  #reloading: Promise<void> = Promise.resolve();
  #watcher: fs.FSWatcher | undefined;
  #registry = new Registry();
  #requests: Counter;
  #latency: Histogram;
  #batchSize: Histogram;
  #batchSeconds: Histogram;
  #images: Counter;
  #reloads: Counter;

  /** @internal use serve() */
  constructor(settings: ServeSettings, replicas: Replicas, server: http.Server) {
    this.settings = settings;
    this.#replicas = replicas;
    this.#http = server;
    const address = server.address() as { port: number; address: string; family: string };
    this.port = address.port;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${host}:${this.port}`;
    const r = this.#registry;
    this.#requests = r.add(
      new Counter('resnet_http_requests_total', 'HTTP requests answered, by path and status code'),
    );
    this.#latency = r.add(
      new Histogram('resnet_request_duration_seconds', 'Time to answer POST /v1/predict', LATENCY_BUCKETS),
    );
    this.#batchSize = r.add(new Histogram('resnet_batch_size', 'Images per forward', BATCH_BUCKETS));
    this.#batchSeconds = r.add(new Histogram('resnet_batch_duration_seconds', 'Time per forward', LATENCY_BUCKETS));
    this.#images = r.add(new Counter('resnet_images_total', 'Images classified'));
    r.add(new Gauge('resnet_queue_depth', 'Images waiting for a forward', () => this.#replicas.queued()));
    r.add(new Gauge('resnet_requests_in_flight', 'Predict requests being answered', () => this.#inFlight));
    r.add(new Gauge('resnet_replicas_alive', 'Model replicas able to take work', () => this.#replicas.alive()));
    r.add(
      new InfoGauge('resnet_engine_info', 'The engine serving the model, what runs its operators, and why', () => ({
        engine: this.#replicas.info.engine,
        kernels: this.#replicas.info.kernels,
        reason: this.#replicas.info.engineReason,
      })),
    );
    this.#reloads = r.add(new Counter('resnet_model_reloads_total', 'Model reloads, by result'));
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => void this.#handle(req, res));
  }

  /** @internal a forward finished on some replica */
  recordBatch(size: number, ms: number): void {
    this.#batchSize.observe(size);
    this.#batchSeconds.observe(ms / 1000);
  }

  /** Prometheus text of the server's metrics (what GET /metrics answers). */
  metrics(): string {
    return this.#registry.text();
  }

  /** The engine the model runs on ('auto' resolved). */
  get engine(): 'native' | 'onnxruntime' {
    return this.#replicas.info.engine;
  }

  /** Why it runs on that engine (for 'auto', what was measured), as /metrics' resnet_engine_info says. */
  get engineReason(): string {
    return this.#replicas.info.engineReason;
  }

  /** What /readyz answers: a model is loaded and the server is not draining. */
  get ready(): boolean {
    return !this.#draining && this.#replicas.alive() > 0;
  }

  /** Loads the model file again and swaps it in: requests already accepted finish on the old model, new ones
   *  go to the new one, none is dropped. A file that does not load leaves the old model serving (and throws). */
  reload(): Promise<void> {
    const run = this.#reloading.then(async () => {
      if (this.#draining) throw new DisposedError('the server');
      let next: Replicas;
      try {
        next = await startReplicas(replicaSettings(this.settings), (e) => this.recordBatch(e.size, e.ms));
      } catch (e) {
        this.#reloads.inc({ result: 'error' });
        this.settings.onLog?.(`reload failed, still serving the previous model: ${(e as Error).message}`);
        throw e;
      }
      const previous = this.#replicas;
      this.#replicas = next;
      this.#reloads.inc({ result: 'ok' });
      this.settings.onLog?.(`reloaded ${this.settings.model}`);
      await this.#retire(previous);
    });
    this.#reloading = run.catch(() => {});
    return run;
  }

  #acquire(): Replicas {
    const replicas = this.#replicas;
    const holder = this.#holders.get(replicas) ?? { count: 0 };
    holder.count++;
    this.#holders.set(replicas, holder);
    return replicas;
  }

  #release(replicas: Replicas): void {
    const holder = this.#holders.get(replicas)!;
    if (--holder.count > 0) return;
    this.#holders.delete(replicas);
    holder.released?.();
  }

  /** Closes a replaced model once the requests that started on it have their answers. */
  async #retire(replicas: Replicas): Promise<void> {
    const holder = this.#holders.get(replicas);
    if (holder) await new Promise<void>((resolve) => (holder.released = resolve));
    await replicas.close();
  }

  /** Stops accepting connections, answers every request already accepted, frees the model. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#draining = true;
      this.#watcher?.close();
      const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
      this.#http.closeIdleConnections();
      // Requests get their answers, up to their deadline: a client stalled mid-body (Node stops timing out
      // requests once the server closes) is cut off then rather than holding the shutdown forever.
      if (this.#inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          this.#idle.push(resolve);
          timer = setTimeout(resolve, this.settings.timeoutMs);
        });
        clearTimeout(timer);
        this.#http.closeAllConnections();
      }
      await this.#reloading;
      await this.#replicas.close();
      this.#http.closeAllConnections();
      await closed;
    })();
    return this.#closing;
  }

  /** @internal */
  watch(): void {
    const file = path.resolve(this.settings.model);
    let timer: NodeJS.Timeout | undefined;
    // The directory, not the file: an atomic replace (write a temporary file, rename it over) is a new inode.
    this.#watcher = fs.watch(path.dirname(file), (_event, name) => {
      if (name !== path.basename(file)) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (fs.existsSync(file)) this.reload().catch(() => {});
      }, 200);
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    const count = (status: number) =>
      this.#requests.inc({ path: ROUTES.has(route) ? route : 'other', code: String(status) });
    try {
      if (route === '/v1/predict') {
        if (req.method !== 'POST') throw methodNotAllowed('POST');
        return await this.#predict(req, res, url, count);
      }
      if (route === '/healthz' || route === '/readyz' || route === '/metrics') {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed('GET');
        req.resume();
        if (route === '/metrics') {
          count(200); // counted before the text is made, so the answer includes itself
          return send(res, 200, this.metrics(), PROMETHEUS_CONTENT_TYPE);
        }
        const ok = route === '/healthz' || this.ready;
        count(ok ? 200 : 503);
        return sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : this.#draining ? 'draining' : 'not ready' });
      }
      throw new HttpError(404, 'not_found', `no route ${route}: POST /v1/predict, GET /healthz, /readyz, /metrics`);
    } catch (e) {
      const error = toHttpError(e);
      if (error.status >= 500 && !(e instanceof HttpError)) this.settings.onLog?.(`500: ${(e as Error).stack ?? e}`);
      count(error.status);
      // Answering before the body is read would race the client reusing the connection: read (and drop) what is
      // left of it first, up to the body limit; past that, answer and close the connection.
      const drained = await discardBody(req, this.settings.maxBodyBytes);
      if (!res.headersSent)
        sendJson(
          res,
          error.status,
          { error: { code: error.code, message: error.message } },
          {
            ...error.headers,
            ...(drained ? {} : { Connection: 'close' }),
          },
        );
    }
  }

  async #predict(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    count: (status: number) => void,
  ): Promise<void> {
    const started = performance.now();
    if (this.#draining) throw new HttpError(503, 'draining', 'the server is shutting down');
    // Admission: past the bound, refuse before reading or decoding anything. Queueing more would only add latency
    // (on a busy CPU the decoding, not the batcher, is where unbounded requests would pile up).
    const limit = this.settings.maxQueue * Math.max(1, this.settings.workers);
    if (this.#inFlight >= limit)
      throw new HttpError(503, 'overloaded', `${this.#inFlight} requests in flight, the limit is ${limit}`, {
        'Retry-After': '1',
      });
    this.#inFlight++;
    let request: PredictRequest;
    const aborted = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) aborted.abort(); // the client went away: drop its work
      if (--this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    };
    res.once('close', onClose);
    // A reload swaps the model: this request finishes on the one it started with, which stays open until then.
    const replicas = this.#acquire();
    let logits;
    try {
      const info = replicas.info;
      const body = await readBody(req, this.settings.maxBodyBytes);
      request = parsePredictRequest(req.headers['content-type'], body, url, {
        numClasses: info.numClasses,
        defaultTopK: this.settings.topK,
        maxImages: this.settings.maxBatch,
      });
      const single = request.single;
      const x = await imagesToBatch(
        request.images as (Uint8Array | RawImage)[],
        info,
        { maxPixels: this.settings.maxPixels },
        (i) => (single ? 'image' : `images[${i}]`),
      );
      const remaining = Math.max(1, this.settings.timeoutMs - (performance.now() - started));
      logits = await replicas.forward(x, { signal: aborted.signal, timeoutMs: remaining });
    } finally {
      this.#release(replicas);
    }
    const predictions: Prediction[][] = topK(logits, request.topK, replicas.info.classNames);
    this.#images.inc({}, predictions.length);
    count(200);
    this.#latency.observe((performance.now() - started) / 1000);
    sendJson(
      res,
      200,
      request.single ? { predictions: predictions[0] } : { results: predictions.map((p) => ({ predictions: p })) },
    );
  }
}

const ROUTES = new Set(['/v1/predict', '/healthz', '/readyz', '/metrics']);

function methodNotAllowed(allow: string): HttpError {
  return new HttpError(405, 'method_not_allowed', `use ${allow}`, { Allow: allow });
}

/** The status code and JSON error a failure answers with. */
function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof RequestError) return new HttpError(e.status, e.code, e.message);
  if (e instanceof ImageError)
    return new HttpError(e.reason === 'too-large' ? 413 : 400, `image_${e.reason.replace('-', '_')}`, e.message);
  if (e instanceof ValidationError || e instanceof ShapeError) return new HttpError(400, 'bad_request', e.message);
  if (e instanceof OverloadedError) return new HttpError(503, 'overloaded', e.message, { 'Retry-After': '1' });
  if (e instanceof DisposedError) return new HttpError(503, 'draining', 'the server is shutting down');
  if (e instanceof DeadlineError) return new HttpError(504, 'deadline', e.message);
  if (e instanceof AbortError) return new HttpError(499, 'client_closed', 'the client closed the connection');
  const code = e instanceof ResnetError ? e.code : 'internal';
  return new HttpError(500, code.toLowerCase(), 'internal error (see the server log)');
}

/** The body, refused with 413 past `limit` bytes (by Content-Length at once, or as it streams in). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit)
    return Promise.reject(new HttpError(413, 'body_too_large', `the body is ${declared} bytes, the limit is ${limit}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(new HttpError(413, 'body_too_large', `the body is over the limit of ${limit} bytes`));
      } else chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
    req.once('aborted', () => reject(new AbortError('the client closed the connection')));
  });
}

/** Reads and drops the rest of a request body; false when more than `limit` bytes remain or the client left. */
function discardBody(req: http.IncomingMessage, limit: number): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  if (Number(req.headers['content-length']) > limit) return Promise.resolve(false);
  return new Promise((resolve) => {
    let size = 0;
    const done = (ok: boolean) => {
      req.off('data', onData);
      resolve(ok);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) done(false);
    };
    req.on('data', onData);
    req.once('end', () => done(true));
    req.once('close', () => done(req.complete));
    req.resume();
  });
}

function send(res: http.ServerResponse, status: number, body: string, type: string, headers = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown, headers = {}): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8', headers);
}

// Only plain values: a worker receives these as its workerData.
function replicaSettings(s: ServeSettings): ReplicaSettings {
  const { model: file, device, engine, workers, threads, maxBatch, maxDelayMs, maxQueue } = s;
  return { file, device, engine, workers, threads, maxBatch, maxDelayMs, maxQueue };
}

/** Loads the model (on `workers` threads, or this one), then listens. Resolves once requests can be served. */
export async function serve(options: ServeOptions): Promise<Server> {
  const settings = resolveServeOptions(options);
  if (!fs.existsSync(settings.model))
    throw new ValidationError('model', settings.model, 'an existing weights or checkpoint file');
  const created: { server?: Server } = {}; // batches may finish before the Server exists: not before it listens
  const replicas = await startReplicas(replicaSettings(settings), (e) => created.server?.recordBatch(e.size, e.ms));
  const httpServer = http.createServer({
    requestTimeout: settings.timeoutMs,
    headersTimeout: Math.min(settings.timeoutMs, 60_000),
    keepAliveTimeout: 5_000,
    // How often Node checks those timeouts (its default, 30 s, would let a slow client hold on that long).
    connectionsCheckingInterval: Math.min(30_000, Math.max(250, settings.timeoutMs / 4)),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(settings.port, settings.host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await replicas.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL')
      throw new ValidationError(
        'port',
        settings.port,
        'a free port on an address of this machine',
        `cannot listen on ${settings.host}:${settings.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`,
      );
    throw e;
  }
  const server = (created.server = new Server(settings, replicas, httpServer));
  if (settings.watch) server.watch();
  return server;
}
