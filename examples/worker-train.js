// Train inside a worker thread, so that the main thread (a server, a UI) never waits on it: progress comes back as
// messages, the weights as a file. The addon works in any number of workers; each trains on its own model.
//   node examples/worker-train.js [out.safetensors]
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

const quick = process.env.EXAMPLES_QUICK === '1';

if (isMainThread) {
  const out = process.argv[2] ?? 'worker-trained.safetensors';
  const worker = new Worker(__filename, { workerData: { out, quick } });
  worker.on('message', (m) => {
    if (m.kind === 'progress') console.log(`worker: iteration ${m.iteration}/${m.total}, loss ${m.loss.toFixed(4)}`);
    else console.log(`worker: done, test error ${(m.testError * 100).toFixed(2)}%, weights in ${m.out}`);
  });
  worker.on('error', (e) => {
    console.error(e);
    process.exitCode = 1;
  });
  // The main thread stays free meanwhile: this timer keeps ticking through the training.
  const ticker = setInterval(() => {}, 100);
  worker.on('exit', () => clearInterval(ticker));
} else {
  const { createModel, datasets, train } = require('resnet-torch');
  (async () => {
    const { out, quick: q } = workerData;
    const trainSet = q ? await (await datasets.fashionMnist()).take(512, 0) : await datasets.fashionMnist();
    const test = await (await datasets.fashionMnist({ split: 'test' })).take(q ? 256 : 10000, 0);
    const model = await createModel({ arch: 'cifar-resnet20', inChannels: 1, numClasses: 10, seed: 0 });
    const result = await train(model, trainSet, {
      iterations: q ? 10 : 1000,
      batchSize: 64,
      logEvery: q ? 5 : 50,
      test,
      onProgress: (e) =>
        e.kind === 'iteration' &&
        parentPort.postMessage({ kind: 'progress', iteration: e.iteration, total: e.totalIterations, loss: e.loss }),
    });
    await model.saveWeights(out);
    parentPort.postMessage({ kind: 'done', testError: result.evaluations.test.top1Error, out });
  })();
}
