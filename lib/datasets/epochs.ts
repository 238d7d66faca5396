// How a dataset of `length` images splits into batches, the same for every reader, the trainer and the CLI.

/** Iterations in one epoch: every full batch, and the last partial one unless `dropLast`. */
export function iterationsPerEpoch(length: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(length / batchSize) : Math.ceil(length / batchSize);
}
