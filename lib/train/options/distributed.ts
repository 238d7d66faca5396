// Which process group this process belongs to: the `distributed` option of train(), else the environment a
// launcher sets, as torchrun does (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK, LOCAL_WORLD_SIZE), or
// as Slurm does (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with MASTER_ADDR/MASTER_PORT from the job script).
// The same script runs unchanged under `torchrun --no-python node train.js`, a Kubeflow PyTorchJob or srun.
import { ValidationError } from '../../errors';
import { native } from '../../native';
import type { NativeDistributedConfig, NativeTrainConfig } from '../../native';
import { ObjectSchema, Fields, s } from '../../validate';

/** The collectives' library of a process group. */
export type DistributedBackend = 'gloo' | 'nccl';

/** The process group of a data-parallel run (what torchrun's environment variables say, when not given). */
export interface DistributedOptions {
  /** The collectives' library: Gloo (CPU tensors, and CUDA ones through the host) or NCCL (CUDA, where
   *  info().distributed.nccl says the build has it). Default: NCCL for a model on CUDA where the build has it, else
   *  Gloo, as PyTorch's "cpu:gloo,cuda:nccl". */
  backend?: DistributedBackend;
  /** This process's rank. */
  rank?: number;
  /** Processes in the job. 1, given here, still forms a process group (of one): the whole distributed path
   *  runs, as under init_process_group with a world of 1 (a one-GPU machine trying NCCL, a pipeline's test). */
  worldSize?: number;
  /** Address of rank 0's rendezvous. */
  masterAddr?: string;
  /** Its port (default 29500). */
  masterPort?: number;
  /** How long a collective, or the rendezvous, may wait for a rank before the run fails naming it (default 300). */
  timeoutSeconds?: number;
  /** Progress callbacks on every rank (default: rank 0 only). */
  progressOnAllRanks?: boolean;
}

export interface ProcessGroupInfo {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutSeconds: number;
  progressOnAllRanks: boolean;
  /** Where rank and world came from: the option, torchrun's variables, Slurm's, or neither (one process). */
  source: 'option' | 'torchrun' | 'slurm' | 'single';
  /** Whether this process joins a process group: a world of more than one, or one the option asked for. */
  join: boolean;
}

export const DISTRIBUTED_DEFAULTS = { masterPort: 29500, timeoutSeconds: 300, syncBatchNorm: false };

export const distributedSchema: ObjectSchema<DistributedOptions> = s.object<DistributedOptions>({
  backend: s.optional(s.enum(['gloo', 'nccl'] as const)),
  rank: s.optional(s.integer({ min: 0 })),
  worldSize: s.optional(s.integer({ min: 1, max: 65536 })),
  masterAddr: s.optional(s.string()),
  masterPort: s.optional(s.integer({ min: 1, max: 65535 })),
  timeoutSeconds: s.optional(s.number({ min: 0, minExclusive: true, max: 86_400 })),
  progressOnAllRanks: s.optional(s.boolean()),
});

type Env = Record<string, string | undefined>;

function envInteger(env: Env, name: string, min: number): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new ValidationError(name, text, `an integer ≥ ${min} (environment variable)`);
  return n;
}

/**
 * The process group this process joins: `option` (false: none) over the environment; a single process when
 * neither names a world of more than one.
 */
export function resolveProcessGroup(
  option: DistributedOptions | false | undefined,
  env: Env = process.env,
): ProcessGroupInfo {
  const o = option === false ? undefined : option === undefined ? {} : distributedSchema.parse(option, 'distributed');
  const torchrun = option !== false && env.WORLD_SIZE !== undefined && env.WORLD_SIZE !== '';
  const slurm = option !== false && !torchrun && env.SLURM_NTASKS !== undefined && env.SLURM_PROCID !== undefined;
  const fromEnv = torchrun
    ? {
        rank: envInteger(env, 'RANK', 0),
        worldSize: envInteger(env, 'WORLD_SIZE', 1),
        localRank: envInteger(env, 'LOCAL_RANK', 0),
        localWorldSize: envInteger(env, 'LOCAL_WORLD_SIZE', 1),
      }
    : slurm
      ? {
          rank: envInteger(env, 'SLURM_PROCID', 0),
          worldSize: envInteger(env, 'SLURM_NTASKS', 1),
          localRank: envInteger(env, 'SLURM_LOCALID', 0),
          localWorldSize: envInteger(env, 'SLURM_NTASKS_PER_NODE', 1),
        }
      : {};
  const worldSize = o?.worldSize ?? fromEnv.worldSize ?? 1;
  const rank = o?.rank ?? fromEnv.rank ?? 0;
  const source =
    o?.worldSize !== undefined || o?.rank !== undefined ? 'option' : torchrun ? 'torchrun' : slurm ? 'slurm' : 'single';
  if (rank >= worldSize)
    throw new ValidationError(
      o?.rank !== undefined ? 'distributed.rank' : 'RANK',
      rank,
      `a rank below the world size ${worldSize}`,
      `rank ${rank} is outside a world of ${worldSize} (${source === 'option' ? 'the distributed option' : `${source}'s environment`})`,
    );
  const masterAddr =
    o?.masterAddr ?? (option === false ? undefined : env.MASTER_ADDR) ?? (worldSize > 1 ? undefined : '127.0.0.1');
  if (masterAddr === undefined)
    throw new ValidationError(
      'distributed.masterAddr',
      undefined,
      'the address of rank 0',
      `a world of ${worldSize} needs the address of rank 0: set MASTER_ADDR (torchrun sets it) or distributed.masterAddr`,
    );
  const masterPort =
    o?.masterPort ??
    (option === false ? undefined : envInteger(env, 'MASTER_PORT', 1)) ??
    DISTRIBUTED_DEFAULTS.masterPort;
  return {
    rank,
    worldSize,
    localRank: fromEnv.localRank ?? rank,
    localWorldSize: fromEnv.localWorldSize ?? worldSize,
    masterAddr,
    masterPort,
    timeoutSeconds: o?.timeoutSeconds ?? DISTRIBUTED_DEFAULTS.timeoutSeconds,
    progressOnAllRanks: o?.progressOnAllRanks ?? false,
    source,
    join: worldSize > 1 || o?.worldSize !== undefined,
  };
}

/**
 * The backend a run on `device` uses: the option, else NCCL on CUDA where the build has it, else Gloo. NCCL needs
 * the model on CUDA, on the GPU of its local rank when several ranks share a machine (as torchrun's users call
 * torch.cuda.set_device(LOCAL_RANK)): two ranks on one GPU would deadlock inside NCCL.
 */
export function resolveBackend(
  group: ProcessGroupInfo,
  option: DistributedBackend | undefined,
  device: string,
  ncclBuilt: boolean,
): DistributedBackend {
  const cuda = device.startsWith('cuda');
  const backend = option ?? (cuda && ncclBuilt ? 'nccl' : 'gloo');
  if (backend !== 'nccl') return backend;
  if (!ncclBuilt)
    throw new ValidationError(
      'distributed.backend',
      'nccl',
      'a backend this build has',
      "distributed.backend: this build has no NCCL (info().distributed.nccl is false): build against a CUDA libtorch 2.x, such as pip's torch, or use 'gloo'",
    );
  if (!cuda)
    throw new ValidationError(
      'distributed.backend',
      'nccl',
      "'gloo' for a model on the CPU",
      `distributed.backend: NCCL reduces CUDA tensors, and the model is on ${device}; use 'gloo' or move the model to cuda:${group.localRank}`,
    );
  const index = Number(/^cuda:(\d+)$/.exec(device)?.[1] ?? 0);
  if (group.localWorldSize > 1 && index !== group.localRank)
    throw new ValidationError(
      'distributed.backend',
      'nccl',
      `the model on cuda:${group.localRank}`,
      `distributed.backend: with NCCL each rank of a machine trains on its own GPU, and local rank ${group.localRank} has the model on ${device}: create it with device: \`cuda:\${processGroup().localRank}\``,
    );
  return backend;
}

/**
 * The device a rank of the CLI trains on: a bare `cuda` becomes the local rank's GPU when several ranks share
 * the machine (what torchrun's users do with torch.cuda.set_device(LOCAL_RANK)); anything else stays as given.
 */
export function rankDevice(device: string | undefined, env: Env = process.env): string | undefined {
  if (device !== 'cuda') return device;
  const g = resolveProcessGroup(undefined, env);
  return g.localWorldSize > 1 ? `cuda:${g.localRank}` : device;
}

/** This process's rank and world size, as train() will see them (from the environment). */
export function processGroup(): {
  /** This process's rank. */
  rank: number;
  /** Processes in the job. */
  worldSize: number;
  /** Its rank on this machine. */
  localRank: number;
} {
  const g = resolveProcessGroup(undefined);
  return { rank: g.rank, worldSize: g.worldSize, localRank: g.localRank };
}

/** train()'s options of a data-parallel run. */
export interface DistributedGroupOptions {
  /** Data-parallel training with other processes (default: from the environment, as torchrun sets it; false:
   *  one process whatever the environment says). `batchSize` is per rank. */
  distributed?: DistributedOptions | false;
  /** With several ranks: BatchNorm's batch statistics over every rank's batch, as torch.nn.SyncBatchNorm
   *  (default: each rank's own, as DistributedDataParallel). No effect in one process. */
  syncBatchNorm?: boolean;
}

export const distributedFields: Fields = { syncBatchNorm: s.optional(s.boolean()) };
export const distributedCallbacks: Fields = { distributed: s.optional(s.union(s.literal(false), distributedSchema)) };

/** The process group's piece of the native config; the fingerprint is filled by the caller. */
export function distributedConfig(
  o: DistributedGroupOptions,
  group: ProcessGroupInfo,
  device: string,
): Pick<NativeTrainConfig, 'syncBatchNorm'> & { distributed: NativeDistributedConfig } {
  return {
    syncBatchNorm: o.syncBatchNorm ?? DISTRIBUTED_DEFAULTS.syncBatchNorm,
    distributed: {
      join: group.join,
      backend: group.join
        ? resolveBackend(
            group,
            o.distributed ? o.distributed.backend : undefined,
            device,
            native().info().distributedNccl,
          )
        : 'gloo',
      rank: group.rank,
      worldSize: group.worldSize,
      masterAddr: group.masterAddr,
      masterPort: group.masterPort,
      timeoutMs: Math.round(group.timeoutSeconds * 1000),
      fingerprint: [],
    },
  };
}
