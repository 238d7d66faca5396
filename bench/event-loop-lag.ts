// While a CPU training runs on its native thread, a 10 ms timer in the same process measures how late it
// fires: the event loop stays free for a backend service's other work.
//   node .test-build/bench/event-loop-lag.js [--seconds 20]
import * as os from 'os';

import { createModel, train } from '../lib';
import { syntheticCifar } from './synthetic';
import { argValue, formatTable, percentile } from './table';
import { describeMachine } from './machine';

async function main() {
  console.log(describeMachine(os.cpus().length));
  const seconds = Number(argValue('seconds', '20'));
  const data = await syntheticCifar(4096);
  const model = await createModel({ arch: 'cifar-resnet20', seed: 0 });
  const controller = new AbortController();
  const lags: number[] = [];
  let iterations = 0;
  const run = train(model, data, {
    epochs: 1000,
    batchSize: 128,
    logEvery: 5,
    signal: controller.signal,
    augment: { padCrop: 4, flip: true },
    onProgress: (e) => (iterations = e.iteration),
  });
  await new Promise((r) => setTimeout(r, 2000)); // past start-up
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - 10));
    last = now;
  }, 10);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(timer);
  controller.abort();
  const result = await run;
  console.log(
    `\nEvent-loop lag of a 10 ms timer while CIFAR ResNet-20 trains (batch 128, CPU, ${os.cpus().length} cores), ${seconds} s, ${lags.length} ticks`,
  );
  console.log(
    formatTable(
      ['p50 lag (ms)', 'p99 lag (ms)', 'max lag (ms)', 'iterations trained', 'training img/s'],
      [[percentile(lags, 50), percentile(lags, 99), Math.max(...lags), iterations, result.imagesPerSecond]],
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
