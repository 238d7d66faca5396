// The model's input normalisation applied in JS, for predictions from decoded image files (training and
// evaluation apply the same in C++).
import type { Preprocessing } from './train';

/** uint8 pixels N×C×H×W -> the float input the model was trained on. */
export function normalizeImages(images: Uint8Array | Float32Array, shape: number[], p: Preprocessing | undefined): Float32Array {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const out = new Float32Array(images.length);
  const scale = images instanceof Uint8Array ? 1 / 255 : 1;
  for (let i = 0; i < images.length; i++) out[i] = images[i] * scale;
  if (!p || p.normalize === 'none') return out;
  const mean = p.mean ?? [];
  for (let k = 0; k < n; k++)
    for (let ch = 0; ch < c; ch++) {
      const base = (k * c + ch) * plane;
      if (p.normalize === 'per-pixel') {
        for (let i = 0; i < plane; i++) out[base + i] -= mean[ch * plane + i];
      } else {
        const m = mean[ch], s = p.std?.[ch] ?? 1;
        for (let i = 0; i < plane; i++) out[base + i] = (out[base + i] - m) / s;
      }
    }
  return out;
}
