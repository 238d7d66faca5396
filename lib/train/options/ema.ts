// An exponential moving average of the weights (timm's ModelEmaV2), kept by the native trainer.
import type { NativeResumeState, NativeTrainConfig } from '../../native';
import { Fields, s } from '../../validate';

export interface EmaOptions {
  /** Keep an exponential moving average of the weights (timm's ModelEmaV2): after each step
   *  ema = decay · ema + (1 − decay) · weights, BN statistics included. Evaluations during the run use it, it
   *  travels in checkpoints, and the result hands it over as a model (`result.ema`). Default: none. */
  ema?: {
    /** The weight of the average so far, in (0, 1): 0.999 averages over about 1,000 steps. */
    decay: number;
  };
}

export const emaFields: Fields = {
  ema: s.optional(s.object({ decay: s.number({ min: 0, max: 1, minExclusive: true, maxExclusive: true }) })),
};

export function emaConfig(
  o: EmaOptions,
  resume: NativeResumeState | undefined,
): Pick<NativeTrainConfig, 'emaDecay' | 'emaState'> {
  return { emaDecay: o.ema?.decay ?? 0, emaState: resume?.ema ?? [] };
}
