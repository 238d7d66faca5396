// Predictions from a plain Node http handler (no framework): the model loads from a weights file, requests share
// forwards through a batcher, bad input gets a 4xx, and Ctrl-C drains before exiting. `resnet serve` does all
// of this and more (metrics, replicas, hot reload); this is the part to copy into a service of your own.
//   node examples/serve-http.js model.safetensors [port]
//   curl --data-binary @shoe.png http://127.0.0.1:8080/predict
const http = require('http');
const { ImageError, OverloadedError, createBatcher, loadModel } = require('resnet-torch');

async function main() {
  const [file, port = '8080'] = process.argv.slice(2);
  const model = await loadModel(file); // spec, class names and preprocessing come from the file
  const fast = await model.optimizeForInference(); // BN folded into the convolutions; decodes images to its size
  const batcher = createBatcher(fast, { maxBatch: 16, maxQueue: 256 });

  const server = http.createServer(async (req, res) => {
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/predict') return reply(404, { error: 'POST /predict with image bytes' });
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    try {
      const predictions = await batcher.predictImage(Buffer.concat(chunks), { topK: 3, timeoutMs: 5000 });
      reply(200, { predictions });
    } catch (e) {
      if (e instanceof ImageError) reply(400, { error: e.message });
      else if (e instanceof OverloadedError) reply(503, { error: e.message });
      else reply(500, { error: 'internal error' });
    }
  });
  server.listen(Number(port), '127.0.0.1', () =>
    console.log(`listening on http://127.0.0.1:${server.address().port}/predict`),
  );
  process.once('SIGINT', async () => {
    server.close();
    await batcher.close(); // answers what was accepted
    fast.dispose();
    model.dispose();
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
