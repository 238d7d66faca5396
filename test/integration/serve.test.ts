/**
 * @jest-environment ./test/support/shared-typed-arrays-environment.js
 */
// onnxruntime-node (the 'auto' engine here) needs the typed arrays of the realm it was loaded in.
// The HTTP server against real requests on 127.0.0.1: answers equal to predictImage, every kind of bad input a
// 4xx (1,000 malformed requests in a row, then /healthz still answers), slow clients, overload, Prometheus
// text checked by Python's prometheus_client parser, hot reload without a failed request, SIGTERM draining.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';

import sharp from 'sharp';

import { Model, ServeOptions, Server, createModel, info, serve } from '../../lib';
import { CLI } from '../helpers/cli';
import { pngBytes } from '../../harness/fixtures';
import { tempDir } from '../../harness/files';
import { rejection } from '../helpers/errors';
import { pseudoRandomBytes } from '../../harness/synthetic';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json?: Record<string, unknown>;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
afterAll(() => agent.destroy());

function request(
  url: string,
  options: { method?: string; body?: Buffer | string; type?: string; headers?: http.OutgoingHttpHeaders } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        agent,
        method: options.method ?? (options.body !== undefined ? 'POST' : 'GET'),
        headers: { ...(options.type ? { 'Content-Type': options.type } : {}), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, body, json });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const predict = (server: { url: string }, png: Buffer, query = '') =>
  request(`${server.url}/v1/predict${query}`, { body: png, type: 'image/png' });

async function savedModel(dir: string, seed: number, names = ['cat', 'dog', 'eel', 'fox']): Promise<Model> {
  const model = await createModel({ arch: 'cifar-resnet20', numClasses: names.length, seed, classNames: names });
  model.preprocessing = {
    normalize: 'per-channel',
    mean: [0.5, 0.4, 0.3],
    meanShape: [3],
    std: [0.25, 0.2, 0.15],
    inputSize: [32, 32],
  };
  await model.saveWeights(path.join(dir, 'model.safetensors'));
  return model;
}

const image = (seed: number) => pngBytes(32, 32, 3, pseudoRandomBytes(32 * 32 * 3, seed));

describe('serve(): POST /v1/predict and the probes', () => {
  let dir: string;
  let model: Model;
  let server: Server;
  beforeAll(async () => {
    dir = await tempDir();
    model = await savedModel(dir, 3);
    server = await serve({
      model: path.join(dir, 'model.safetensors'),
      port: 0,
      maxPixels: 1_000_000,
      maxBodyBytes: 200_000,
    });
  });
  afterAll(() => server?.close());
  // A server of its own for one test, on our engine (the shared one above runs 'auto').
  const serveHere = (options: Partial<ServeOptions>) =>
    serve({ model: path.join(dir, 'model.safetensors'), port: 0, engine: 'native', ...options });

  it('image bytes and JSON (base64, a list, raw pixels) answer what predictImage answers', async () => {
    const png = image(1);
    const expected = await model.predictImage(png, { topK: 2 });
    const bytes = await predict(server, png, '?topK=2');
    expect(bytes.status).toBe(200);
    const got = (bytes.json as { predictions: { label: string; probability: number }[] }).predictions;
    expect(got.map((p) => p.label)).toEqual(expected.map((p) => p.label));
    for (let i = 0; i < 2; i++) expect(got[i].probability).toBeCloseTo(expected[i].probability, 4);
    // 'auto' on the CPU with onnxruntime-node installed: the faster of the two here, measured at load (or cached).
    expect(server.engineReason).toMatch(
      /^auto: (native|onnxruntime) measured faster on this machine \(batches of 1 \+ 8: native [\d.]+ ms, onnxruntime [\d.]+ ms(, cached from [-\dT:.Z]+)?\)$/,
    );
    const [, chosen, nativeMs, ortMs] = /auto: (\w+) .*native ([\d.]+) ms, onnxruntime ([\d.]+) ms/.exec(
      server.engineReason,
    )!;
    expect(server.engine).toBe(chosen);
    expect(chosen).toBe(Number(nativeMs) <= Number(ortMs) ? 'native' : 'onnxruntime');
    const json = await request(`${server.url}/v1/predict`, {
      body: JSON.stringify({ images: [png.toString('base64'), image(2).toString('base64')], topK: 4 }),
      type: 'application/json',
    });
    expect(json.status).toBe(200);
    const results = (json.json as { results: { predictions: { label: string }[] }[] }).results;
    expect(results).toHaveLength(2);
    expect(results[1].predictions.map((p) => p.label)).toEqual(
      (await model.predictImage(image(2), { topK: 4 })).map((p) => p.label),
    );
    const pixels = pseudoRandomBytes(32 * 32 * 3, 1); // the pixels image(1) encodes
    const raw = await request(`${server.url}/v1/predict`, {
      body: JSON.stringify({
        raw: { data: Buffer.from(pixels).toString('base64'), width: 32, height: 32, channels: 3 },
      }),
      type: 'application/json; charset=utf-8',
    });
    expect((raw.json as { predictions: { label: string }[] }).predictions[0].label).toBe(expected[0].label);
    expect((await request(`${server.url}/healthz`)).json).toEqual({ status: 'ok' });
    expect((await request(`${server.url}/readyz`)).status).toBe(200);
  });

  it('bad input gets the 4xx that names it: not an image, too large, wrong shape, wrong type, wrong route', async () => {
    const url = `${server.url}/v1/predict`;
    const png = image(3);
    const jpeg = await sharp(Buffer.from(pseudoRandomBytes(64 * 64 * 3, 3)), {
      raw: { width: 64, height: 64, channels: 3 },
    })
      .jpeg()
      .toBuffer();
    expect((await request(url, { body: jpeg, type: 'image/jpeg' })).status).toBe(200); // whole, it is fine
    const cases: [string, Promise<Reply>, number, RegExp][] = [
      ['corrupted image', predict(server, png.subarray(0, png.length - 40)), 400, /image: cannot decode/],
      [
        'truncated JPEG',
        request(url, { body: jpeg.subarray(0, Math.floor(jpeg.length / 2)), type: 'image/jpeg' }),
        400,
        /image: cannot decode/,
      ],
      [
        'random bytes',
        request(url, { body: Buffer.from(pseudoRandomBytes(500, 1)), type: 'image/jpeg' }),
        400,
        /cannot decode/,
      ],
      ['empty body', request(url, { body: '', type: 'image/png' }), 400, /empty/],
      ['huge dimensions', predict(server, hugeHeader()), 413, /pixels/],
      ['body too large', request(url, { body: Buffer.alloc(300_000), type: 'image/png' }), 413, /limit is 200000/],
      ['wrong content type', request(url, { body: 'hello', type: 'text/plain' }), 415, /text\/plain/],
      ['no content type', request(url, { body: 'hello' }), 415, /\(none\)/],
      ['bad JSON', request(url, { body: '{"image":', type: 'application/json' }), 400, /not valid JSON/],
      ['JSON without an image', request(url, { body: '{"img":"x"}', type: 'application/json' }), 400, /exactly one of/],
      ['bad base64', request(url, { body: '{"image":"%%%"}', type: 'application/json' }), 400, /not valid base64/],
      [
        'raw pixels of the wrong length',
        request(url, {
          body: JSON.stringify({ raw: { data: 'AAAA', width: 2, height: 2, channels: 3 } }),
          type: 'application/json',
        }),
        400,
        /holds 3 bytes, but 2x2x3 raw pixels need 12/,
      ],
      ['topK out of range', predict(server, png, '?topK=9'), 400, /topK must be an integer from 1 to 4/],
      [
        'too many images',
        request(url, {
          body: JSON.stringify({ images: Array(33).fill(png.toString('base64')) }),
          type: 'application/json',
        }),
        400,
        /at most 32/,
      ],
      ['wrong method', request(url), 405, /use POST/],
      ['unknown route', request(`${server.url}/v2/predict`), 404, /no route/],
    ];
    for (const [name, reply, status, message] of cases) {
      const r = await reply;
      expect([name, r.status]).toEqual([name, status]);
      expect(r.headers['content-type']).toMatch(/application\/json/);
      expect((r.json as { error: { message: string } }).error.message).toMatch(message);
    }
  });

  it('1,000 malformed requests in a row: each a 4xx, and the server still answers /healthz and predicts', async () => {
    const url = `${server.url}/v1/predict`;
    const png = image(4);
    const statuses = new Map<number, number>();
    for (let start = 0; start < 1000; start += 50) {
      const batch = Array.from({ length: 50 }, (_, k) => {
        const i = start + k;
        const noise = Buffer.from(pseudoRandomBytes(1 + (i % 97) * 13, i));
        const damaged = Buffer.from(png);
        damaged[8 + (i % (png.length - 8))] ^= 1 + (i % 255);
        const kinds = [
          () => request(url, { body: noise, type: 'image/png' }),
          () => request(url, { body: png.subarray(0, 8 + (i % 60)), type: 'image/png' }),
          () => request(url, { body: noise.toString('latin1'), type: 'application/json' }),
          () => request(url, { body: JSON.stringify({ image: noise.toString('hex') }), type: 'application/json' }),
          () => request(url, { body: JSON.stringify({ images: i }), type: 'application/json' }),
          () => request(url, { body: noise, type: `application/x-${i}` }),
          () => request(`${url}?topK=${-i}`, { body: png, type: 'image/png' }),
          () => request(url, { method: ['PUT', 'DELETE', 'PATCH'][i % 3], body: noise }),
          () => request(url, { body: damaged, type: 'image/png' }), // a flipped byte: a CRC or zlib error
        ];
        return kinds[i % kinds.length]();
      });
      for (const r of await Promise.all(batch)) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(1000);
    for (const status of statuses.keys()) expect(status >= 400 && status < 500).toBe(true);
    expect((await request(`${server.url}/healthz`)).status).toBe(200);
    expect((await predict(server, png)).status).toBe(200);
  }, 120_000);

  it('a slow client gets 408 when its body does not arrive in time, and others are served meanwhile', async () => {
    const slow = await serveHere({ timeoutMs: 1500 });
    try {
      const socket = net.connect(slow.port, '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => (answer += d));
      const ended = new Promise((resolve) => socket.on('close', resolve));
      socket.write('POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n');
      socket.write(image(5).subarray(0, 100)); // then nothing more
      expect((await predict(slow, image(5))).status).toBe(200);
      expect((await request(`${slow.url}/healthz`)).status).toBe(200);
      await ended;
      expect(answer).toMatch(/^HTTP\/1.1 408/);
    } finally {
      await slow.close();
    }
  });

  it('close() does not wait forever on a client stalled mid-body: it is cut off at the request deadline', async () => {
    const stalled = await serveHere({ timeoutMs: 1000 });
    const socket = net.connect(stalled.port, '127.0.0.1');
    const ended = new Promise((resolve) => socket.on('close', resolve));
    socket.on('error', () => {});
    socket.write('POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\nabc');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await stalled.close();
    expect(Date.now() - started).toBeLessThan(5000);
    await ended;
  });

  it('overload is refused at once with 503 and Retry-After; the queue never holds more than its bound', async () => {
    const small = await serveHere({ maxBatch: 1, maxQueue: 2 });
    try {
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => predict(small, image(i))));
      const refused = replies.filter((r) => r.status === 503);
      expect(refused.length).toBeGreaterThan(0);
      expect(replies.filter((r) => r.status === 200).length + refused.length).toBe(40);
      expect(refused[0].headers['retry-after']).toBe('1');
      expect((refused[0].json as { error: { code: string } }).error.code).toBe('overloaded');
    } finally {
      await small.close();
    }
  });

  it('GET /metrics is Prometheus text that prometheus_client parses, with the counts of what was sent', async () => {
    const fresh = await serveHere({ maxDelayMs: 20 });
    try {
      await Promise.all(Array.from({ length: 6 }, (_, i) => predict(fresh, image(i))));
      await request(`${fresh.url}/v1/predict`, { body: 'x', type: 'image/png' });
      const text = (await request(`${fresh.url}/metrics`)).body;
      const parsed = JSON.parse(await runParser(text)) as Record<
        string,
        { type: string; samples: [string, Record<string, string>, number][] }
      >;
      const sample = (family: string, name: string, labels: Record<string, string> = {}) =>
        parsed[family].samples.find(
          (s) => s[0] === name && Object.entries(labels).every(([k, v]) => s[1][k] === v),
        )?.[2];
      expect(parsed.resnet_http_requests.type).toBe('counter');
      expect(sample('resnet_http_requests', 'resnet_http_requests_total', { path: '/v1/predict', code: '200' })).toBe(
        6,
      );
      expect(sample('resnet_http_requests', 'resnet_http_requests_total', { path: '/v1/predict', code: '400' })).toBe(
        1,
      );
      expect(parsed.resnet_request_duration_seconds.type).toBe('histogram');
      expect(sample('resnet_request_duration_seconds', 'resnet_request_duration_seconds_count')).toBe(6);
      expect(sample('resnet_batch_size', 'resnet_batch_size_sum')).toBe(6);
      expect(sample('resnet_batch_size', 'resnet_batch_size_count')).toBeLessThan(6); // batched
      expect(sample('resnet_images', 'resnet_images_total')).toBe(6);
      expect(sample('resnet_queue_depth', 'resnet_queue_depth')).toBe(0);
      const kernels = info().training.onednn && info().mkldnn ? 'onednn' : 'aten';
      expect(
        sample('resnet_engine_info', 'resnet_engine_info', { engine: 'native', kernels, reason: 'asked for native' }),
      ).toBe(1);
    } finally {
      await fresh.close();
    }
  });

  it('hot reload: replacing the file swaps the model with no failed request; a bad file leaves the old one serving', async () => {
    const own = await tempDir();
    const first = await savedModel(own, 11);
    const file = path.join(own, 'model.safetensors');
    const watched = await serve({ model: file, port: 0, watch: true, maxDelayMs: 1, engine: 'native' });
    try {
      const png = image(6);
      let stop = false;
      const failures: number[] = [];
      const stream = (async () => {
        let n = 0;
        while (!stop) {
          const r = await predict(watched, png);
          if (r.status !== 200) failures.push(r.status);
          n++;
        }
        return n;
      })();
      const before = (await predict(watched, png, '?topK=4')).json as { predictions: { label: string }[] };
      expect(before.predictions[0].label).toBe((await first.predictImage(png))[0].label);
      const second = await savedModel(own, 12, ['one', 'two']); // atomic replace: new classes, new weights
      const expected = await second.predictImage(png, { topK: 2 });
      await waitFor(async () => {
        const r = await predict(watched, png);
        return (r.json as { predictions: { label: string }[] }).predictions[0].label === expected[0].label;
      });
      fs.writeFileSync(file, 'not safetensors'); // a broken replacement: refused, the second model serves on
      await waitFor(async () =>
        /resnet_model_reloads_total\{result="error"\} 1/.test((await request(`${watched.url}/metrics`)).body),
      );
      stop = true;
      expect(await stream).toBeGreaterThan(5);
      expect(failures).toEqual([]);
      const after = (await predict(watched, png)).json as { predictions: { label: string; probability: number }[] };
      expect(after.predictions.map((p) => p.label)).toEqual(expected.map((p) => p.label));
      expect(after.predictions[0].probability).toBeCloseTo(expected[0].probability, 5);
      expect(await rejection(watched.reload())).toMatchObject({ name: 'CheckpointError' });
    } finally {
      await watched.close();
    }
  }, 60_000);

  it('refuses bad options and a port in use with errors naming them', async () => {
    expect(await rejection(serve({ model: path.join(dir, 'nope.safetensors') }))).toMatchObject({ field: 'model' });
    expect(await rejection(serve({ model: path.join(dir, 'model.safetensors'), maxBatch: 0 }))).toMatchObject({
      field: 'options.maxBatch',
    });
    const taken = await rejection(serve({ model: path.join(dir, 'model.safetensors'), port: server.port }));
    expect(taken.message).toMatch(/the port is in use/);
  });
});

describe('resnet serve (the CLI)', () => {
  it('--workers 2 answers as one thread does; SIGTERM finishes the requests in flight and exits 0', async () => {
    const dir = await tempDir();
    const model = await savedModel(dir, 21);
    const { child, url } = await startCli([
      path.join(dir, 'model.safetensors'),
      '--port',
      '0',
      '--workers',
      '2',
      '--max-delay-ms',
      '300',
    ]);
    const png = image(7);
    const expected = await model.predictImage(png, { topK: 4 });
    const first = (await predict({ url }, png, '?topK=4')).json as {
      predictions: { label: string; probability: number }[];
    };
    expect(first.predictions.map((p) => p.label)).toEqual(expected.map((p) => p.label));
    expect(first.predictions[0].probability).toBeCloseTo(expected[0].probability, 4);
    // Requests wait up to 300 ms for a batch: SIGTERM arrives while they are in flight.
    const inFlight = Array.from({ length: 6 }, (_, i) => predict({ url }, image(i + 30)));
    await new Promise((r) => setTimeout(r, 100));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    const replies = await Promise.all(inFlight);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(await exited).toBe(0);
    agent.destroy(); // the server is gone: no kept-alive socket may be reused
    await expect(request(`${url}/healthz`, { headers: { Connection: 'close' } })).rejects.toThrow(/ECONNREFUSED/);
  }, 60_000);

  it('SIGHUP reloads the model in place', async () => {
    const dir = await tempDir();
    await savedModel(dir, 31);
    const { child, url } = await startCli([path.join(dir, 'model.safetensors'), '--port', '0']);
    try {
      const next = await savedModel(dir, 32, ['x', 'y', 'z']);
      child.kill('SIGHUP');
      const png = image(8);
      const want = (await next.predictImage(png))[0].label;
      await waitFor(async () => {
        const r = await request(`${url}/v1/predict`, {
          body: png,
          type: 'image/png',
          headers: { Connection: 'close' },
        });
        if (r.status !== 200) throw new Error(`${r.status}: ${r.body}`);
        return (r.json as { predictions: { label: string }[] }).predictions[0].label === want;
      });
    } finally {
      child.kill('SIGTERM');
    }
  }, 60_000);
});

function hugeHeader(): Buffer {
  // A real PNG header that claims 100000 x 100000 pixels (its CRC left wrong: refused before it is read).
  const png = pngBytes(1, 1, 1, new Uint8Array(1));
  png.writeUInt32BE(100000, 16);
  png.writeUInt32BE(100000, 20);
  return png;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('the condition did not come true in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startCli(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', ...args]);
    let out = '',
      err = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => reject(new Error(`resnet serve exited (${code}) before listening: ${err}`)));
  });
}

async function runParser(text: string): Promise<string> {
  // Prometheus' own Python client parses the exposition text: the independent reference for the format.
  const script = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
`;
  return new Promise((resolve, reject) => {
    const py = spawn('/usr/bin/python3', ['-c', script]);
    let out = '',
      err = '';
    py.stdout.on('data', (d) => (out += d));
    py.stderr.on('data', (d) => (err += d));
    py.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`prometheus_client: ${err}`))));
    py.stdin.end(text);
  });
}
