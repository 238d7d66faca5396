// A replica worker: loads the model on its own thread, batches the requests the server sends it, and reports
// each batch for the metrics. Closing drains its batcher before the thread ends.
import { parentPort, workerData } from 'worker_threads';

import { createBatcher } from '../inference/batcher';
import { setNumThreads } from '../info';
import { FromWorker, ReplicaSettings, ToWorker, infoOf, loadInference, serializeError } from './replicas';

async function main(port: NonNullable<typeof parentPort>, s: ReplicaSettings): Promise<void> {
  const post = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
  if (s.threads > 0) setNumThreads(s.threads);
  let model;
  try {
    model = await loadInference(s);
  } catch (e) {
    post({ type: 'failed', error: serializeError(e) });
    return;
  }
  const batcher = createBatcher(model, {
    maxBatch: s.maxBatch,
    maxDelayMs: s.maxDelayMs,
    maxQueue: s.maxQueue,
    onBatch: ({ size, ms }) => post({ type: 'batch', size, ms }),
  });
  const aborts = new Map<number, AbortController>();
  port.on('message', (m: ToWorker) => {
    if (m.type === 'abort') aborts.get(m.id)?.abort();
    else if (m.type === 'close')
      void batcher.close().then(() => {
        model.dispose();
        port.close();
      });
    else {
      const controller = new AbortController();
      aborts.set(m.id, controller);
      batcher
        .forward({ data: m.data, shape: m.shape }, { signal: controller.signal, timeoutMs: m.timeoutMs })
        .then(
          (t) => post({ type: 'result', id: m.id, data: t.data, shape: t.shape }, [t.data.buffer as ArrayBuffer]),
          (e) => post({ type: 'error', id: m.id, error: serializeError(e) }),
        )
        .finally(() => aborts.delete(m.id));
    }
  });
  post({ type: 'ready', info: infoOf(model) });
}

if (parentPort) void main(parentPort, workerData as ReplicaSettings);
