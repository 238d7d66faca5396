// Timing one engine's forward inside an alternating round.
import { median } from './table';

/** The median of `repeats` calls of `run`, after a pause and one untimed call: the engine before may leave
 *  threads spinning (onnxruntime's pool spins after a run), and the untimed call wakes this engine's threads. */
export async function timeOnce(run: () => Promise<unknown>, repeats: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  await run();
  const t: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await run();
    t.push(performance.now() - start);
  }
  return median(t);
}
