// Logits -> the top-k classes with softmax probabilities (Model and InferenceModel predict the same way).
import type { Tensor } from './tensor';

/** One class of a prediction, with its softmax probability. */
export interface Prediction {
  /** The class's index. */
  index: number;
  /** Its softmax probability. */
  probability: number;
  /** Its name (the index as text without names). */
  label?: string;
}

/** Per row of `logits` [N, K]: the `topK` most probable classes, most probable first. */
export function topK(logits: Tensor, topK: number, classNames?: readonly string[]): Prediction[][] {
  const [n, k] = logits.shape;
  const out: Prediction[][] = [];
  for (let i = 0; i < n; i++) {
    const row = logits.data.subarray(i * k, (i + 1) * k);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    const exps = Array.from(row, (v) => {
      const e = Math.exp(v - max);
      sum += e;
      return e;
    });
    const ranked = exps
      .map((e, index) => ({ index, probability: e / sum }))
      .sort((a, b) => b.probability - a.probability);
    out.push(ranked.slice(0, topK).map((p) => (classNames ? { ...p, label: classNames[p.index] } : p)));
  }
  return out;
}
