// The checkpoint policy of a run: periodic, best and final checkpoints written in order, never deleting one
// before its successor is on disk.
import { promises as fsp } from 'fs';
import * as path from 'path';

import type { NativeTrainState } from '../native';
import { CheckpointPolicy, SaveContext, writeCheckpoint } from './checkpoint';
import type { ProgressEvent } from './options';

export class CheckpointWriter {
  #queue: Promise<void> = Promise.resolve();
  #periodic: string[] = [];
  #best = Infinity;
  #error: unknown;

  constructor(
    private readonly policy: CheckpointPolicy,
    private readonly ctx: SaveContext,
  ) {}

  async prepare(history: ProgressEvent[]): Promise<void> {
    const dir = this.policy.dir;
    await fsp.mkdir(dir, { recursive: true });
    // Temporary files left by a writer that was killed mid-write (the checkpoints themselves are intact).
    for (const f of await fsp.readdir(dir))
      if (/^\..+\.safetensors\.\d+\.[0-9a-f]+\.tmp$/.test(f)) await fsp.rm(path.join(dir, f), { force: true });
    this.#periodic = (await fsp.readdir(dir))
      .filter((f) => /^checkpoint-\d+\.safetensors$/.test(f))
      .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]))
      .map((f) => path.join(dir, f));
    for (const e of history) this.#improves(e);
  }

  /** A periodic checkpoint (kind 'checkpoint') or an evaluation that may be the best so far. */
  during(state: NativeTrainState, event: ProgressEvent): void {
    if (event.kind === 'checkpoint') this.#write(state, `checkpoint-${state.iteration}.safetensors`, 'periodic');
    else if (this.#improves(event)) this.#write(state, 'best.safetensors', 'best');
  }

  atEnd(state: NativeTrainState, aborted: boolean): void {
    if (aborted ? (this.policy.onCancel ?? true) : (this.policy.atEnd ?? true))
      this.#write(state, `checkpoint-${state.iteration}.safetensors`, aborted ? 'cancel' : 'final');
  }

  #improves(event: ProgressEvent): boolean {
    if (!this.policy.keepBest || !event.evaluations) return false;
    const [split, metric] = this.policy.keepBest.split('_') as ['val' | 'test', 'error' | 'loss'];
    const m = event.evaluations[split];
    const value = m ? (metric === 'error' ? m.top1Error : m.loss) : undefined;
    if (value === undefined || !(value < this.#best)) return false;
    this.#best = value;
    return true;
  }

  #write(state: NativeTrainState, name: string, kind: 'periodic' | 'best' | 'final' | 'cancel'): void {
    const p = this.policy;
    const file = path.join(p.dir, name);
    this.#queue = this.#queue
      .then(async () => {
        await writeCheckpoint(file, state, this.ctx);
        if (kind !== 'best') {
          await writeCheckpoint(path.join(p.dir, 'last.safetensors'), state, this.ctx);
          if (!this.#periodic.includes(file)) this.#periodic.push(file);
          while (this.#periodic.length > (p.keepLast ?? 3)) await fsp.rm(this.#periodic.shift()!, { force: true });
        }
        p.onSaved?.(file, kind);
      })
      .catch((e) => {
        this.#error ??= e;
      });
  }

  async flush(): Promise<void> {
    await this.#queue;
    if (this.#error) throw this.#error;
  }
}
