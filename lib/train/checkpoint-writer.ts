// The checkpoint policy of a run: periodic, best and final checkpoints written in order, never deleting one
// before its successor is on disk.
import { promises as fsp } from 'fs';
import * as path from 'path';

import { CheckpointError } from '../errors';
import { removeStaleTemps } from '../io/atomic';
import type { NativeTrainState } from '../native';
import { SaveContext, writeCheckpoint } from './checkpoint';
import { CHECKPOINT_DEFAULTS, CheckpointPolicy } from './options/checkpoint';
import type { ProgressEvent } from './options';

export class CheckpointWriter {
  #queue: Promise<void> = Promise.resolve();
  #periodic: string[] = [];
  #best = Infinity;
  #error: unknown;

  constructor(
    private readonly policy: CheckpointPolicy,
    private readonly ctx: SaveContext,
    /** Called once, at the first write (or onSaved callback) that fails: the run stops there rather than train on
     *  without checkpoints. */
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  async prepare(history: ProgressEvent[]): Promise<void> {
    const dir = this.policy.dir;
    await fsp.mkdir(dir, { recursive: true });
    // Temporary files left by a writer that was killed mid-write (the checkpoints themselves are intact).
    await removeStaleTemps(dir);
    this.#periodic = (await fsp.readdir(dir))
      .filter((f) => /^checkpoint-\d+\.safetensors$/.test(f))
      .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]))
      .map((f) => path.join(dir, f));
    // A writer killed between writing a checkpoint and deleting the oldest leaves one too many, and a run of such
    // kills would pile them up: trimmed here, the newest kept (every one of them is complete).
    await this.#trim();
    for (const e of history) this.#improves(e);
  }

  /** A periodic checkpoint (kind 'checkpoint') or an evaluation that may be the best so far. */
  during(state: NativeTrainState, event: ProgressEvent): void {
    if (event.kind === 'checkpoint') this.#write(state, `checkpoint-${state.iteration}.safetensors`, 'periodic');
    else if (this.#improves(event)) this.#write(state, 'best.safetensors', 'best');
  }

  atEnd(state: NativeTrainState, aborted: boolean): void {
    if (
      aborted
        ? (this.policy.onCancel ?? CHECKPOINT_DEFAULTS.onCancel)
        : (this.policy.atEnd ?? CHECKPOINT_DEFAULTS.atEnd)
    )
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
    this.#queue = this.#queue.then(async () => {
      if (this.#error) return; // after a failed write, nothing more is written or deleted
      try {
        await this.#save(file, state);
        if (kind !== 'best') {
          await this.#save(path.join(p.dir, 'last.safetensors'), state);
          if (!this.#periodic.includes(file)) this.#periodic.push(file);
          await this.#trim();
        }
        p.onSaved?.(file, kind);
      } catch (e) {
        this.#error = e;
        this.onError(e);
      }
    });
  }

  async #trim(): Promise<void> {
    while (this.#periodic.length > (this.policy.keepLast ?? CHECKPOINT_DEFAULTS.keepLast))
      await fsp.rm(this.#periodic.shift()!, { force: true });
  }

  /** One file, written atomically: a failure (a full disk, a lost folder) leaves it and the others as they were. */
  async #save(file: string, state: NativeTrainState): Promise<void> {
    try {
      await writeCheckpoint(file, state, this.ctx);
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(
        file,
        `could not be written (${(e as Error).message}); earlier checkpoints are intact`,
        {
          cause: e,
        },
      );
    }
  }

  async flush(): Promise<void> {
    await this.#queue;
    if (this.#error) throw this.#error;
  }
}
