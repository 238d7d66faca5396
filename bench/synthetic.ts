// The benchmarks' training data: CIFAR-shaped uint8 images (3x32x32) from a fixed hash, 10 classes in turn.
import { Dataset, fromArrays } from '../lib';

export function syntheticCifar(count: number): Promise<Dataset> {
  return fromArrays({
    images: new Uint8Array(count * 3 * 32 * 32).map((_, i) => (i * 2654435761) >>> 24),
    shape: [count, 3, 32, 32],
    labels: Array.from({ length: count }, (_, i) => i % 10),
  });
}
