// Timing one engine's forward inside an alternating round.
import { median } from './table';

/** The median of `repeats` calls of `run`, after `pauseMs` and `warmups` untimed calls: the engine before may leave
 *  threads spinning (onnxruntime's pool spins after a run), and an untimed call wakes this engine's threads. */
export async function timeOnce(
  run: () => Promise<unknown>,
  repeats: number,
  { pauseMs = 100, warmups = 1 }: { pauseMs?: number; warmups?: number } = {},
): Promise<number> {
  if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  for (let i = 0; i < warmups; i++) await run();
  const t: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await run();
    t.push(performance.now() - start);
  }
  return median(t);
}
