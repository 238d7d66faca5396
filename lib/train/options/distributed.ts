// Which process group this process belongs to: the `distributed` option of train(), else the environment a
// launcher sets, as torchrun does (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK, LOCAL_WORLD_SIZE), or
// as Slurm does (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with MASTER_ADDR/MASTER_PORT from the job script).
// The same script runs unchanged under `torchrun --no-python node train.js`, a Kubeflow PyTorchJob or srun.
import { DistributedError, ValidationError } from '../../errors';
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
  /** torchrun's elastic agent already serves the rendezvous store at masterAddr:masterPort
   *  (TORCHELASTIC_USE_AGENT_STORE=True, and that address is the agent's own): every rank joins it as a client. */
  agentStore: boolean;
  /** The keys of this run in the store: torchrun's restart attempt ("/worker/attempt_N", as PyTorch's own workers
   *  name them), empty otherwise. */
  storePrefix: string;
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
 * The hosts of a Slurm node list in its compressed form ("node[01-03,07],gpu-a1"), in order, as
 * `scontrol show hostnames` expands it. Throws on a list it cannot read.
 */
export function slurmHostnames(list: string): string[] {
  const entries: string[] = [];
  let depth = 0,
    from = 0;
  for (let i = 0; i <= list.length; i++) {
    const c = list[i];
    if (c === '[') depth++;
    else if (c === ']') depth--;
    if (depth < 0 || depth > 1) throw new Error(`unbalanced brackets in "${list}"`);
    if (i === list.length || (c === ',' && depth === 0)) {
      entries.push(list.slice(from, i));
      from = i + 1;
    }
  }
  if (depth !== 0) throw new Error(`unbalanced brackets in "${list}"`);
  const hosts = entries.flatMap(expandHost);
  if (hosts.length === 0) throw new Error('it names no host');
  return hosts;
}

// One entry: its first bracket's numbers (zero-padded as written), each followed by the rest expanded.
function expandHost(entry: string): string[] {
  const open = entry.indexOf('[');
  if (open < 0) {
    if (!/^[A-Za-z0-9._-]+$/.test(entry)) throw new Error(`cannot read the host "${entry}"`);
    return [entry];
  }
  const close = entry.indexOf(']', open);
  const prefix = entry.slice(0, open);
  const rest = entry.slice(close + 1);
  const rests = rest === '' ? [''] : expandHost(rest);
  const out: string[] = [];
  for (const range of entry.slice(open + 1, close).split(',')) {
    const r = /^(\d+)(?:-(\d+))?$/.exec(range);
    const [first, last] = r ? [Number(r[1]), Number(r[2] ?? r[1])] : [NaN, NaN];
    if (!r || last < first || last - first > 100_000) throw new Error(`cannot read the range "${range}" of "${entry}"`);
    for (let n = first; n <= last; n++)
      for (const rest of rests) out.push(`${prefix}${String(n).padStart(r[1].length, '0')}${rest}`);
  }
  if (prefix && !/^[A-Za-z0-9._-]+$/.test(prefix)) throw new Error(`cannot read the host "${entry}"`);
  return out;
}

// MASTER_ADDR as Slurm users derive it: the first host of the job's node list.
function slurmFirstHost(env: Env): string | undefined {
  const name = env.SLURM_JOB_NODELIST !== undefined ? 'SLURM_JOB_NODELIST' : 'SLURM_NODELIST';
  const list = env[name];
  if (!list) return undefined;
  try {
    return slurmHostnames(list)[0];
  } catch (e) {
    throw new ValidationError(name, list, 'a Slurm node list ("node[01-04],gpu7")', `${name}: ${(e as Error).message}`);
  }
}

// SLURM_NTASKS_PER_NODE: "4", or per node group as "2(x3),1" (this node's count is not told apart: the first).
function slurmTasksPerNode(env: Env): number | undefined {
  const text = env.SLURM_NTASKS_PER_NODE;
  if (text === undefined || text === '') return undefined;
  const m = /^(\d+)(\(x\d+\))?(,|$)/.exec(text);
  if (!m || Number(m[1]) < 1)
    throw new ValidationError(
      'SLURM_NTASKS_PER_NODE',
      text,
      'a task count such as "4" or "2(x3)" (environment variable)',
    );
  return Number(m[1]);
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
          localWorldSize: slurmTasksPerNode(env),
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
    o?.masterAddr ??
    (option === false ? undefined : env.MASTER_ADDR) ??
    (slurm ? slurmFirstHost(env) : undefined) ??
    (worldSize > 1 ? undefined : '127.0.0.1');
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
  // As torch.distributed's env:// rendezvous (_create_c10d_store): the agent's store only where the address is the
  // agent's own MASTER_ADDR:MASTER_PORT.
  const agentStore =
    option !== false &&
    env.TORCHELASTIC_USE_AGENT_STORE === 'True' &&
    env.MASTER_ADDR === masterAddr &&
    env.MASTER_PORT === String(masterPort);
  return {
    rank,
    worldSize,
    // A launcher that names no local rank (Kubeflow's PyTorchJob: one process per pod) runs one process per machine;
    // ranks given by the option alone share this machine.
    localRank: fromEnv.localRank ?? (source === 'option' ? rank : 0),
    localWorldSize: fromEnv.localWorldSize ?? (source === 'option' ? worldSize : 1),
    masterAddr,
    masterPort,
    timeoutSeconds: o?.timeoutSeconds ?? DISTRIBUTED_DEFAULTS.timeoutSeconds,
    progressOnAllRanks: o?.progressOnAllRanks ?? false,
    source,
    join: worldSize > 1 || o?.worldSize !== undefined,
    agentStore,
    storePrefix: agentStore ? `/worker/attempt_${envInteger(env, 'TORCHELASTIC_RESTART_COUNT', 0) ?? 0}` : '',
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

/** torchrun's job this process is a worker of (TORCHELASTIC_RUN_ID: its --rdzv-id, a fresh uuid under --standalone,
 *  "none" by default with a static rendezvous; the same for every restart of the job), or undefined. */
export function torchrunJob(env: NodeJS.ProcessEnv = process.env): { runId: string; restart: number } | undefined {
  const runId = env.TORCHELASTIC_RUN_ID;
  if (!runId) return undefined;
  return { runId, restart: envInteger(env, 'TORCHELASTIC_RESTART_COUNT', 0) ?? 0 };
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
  const libtorch = native().info().torchVersion;
  // libtorch 1.x's TCPStore client predates the handshake PyTorch 2.x's store servers ask of every connection:
  // against torchrun's agent store it is cut off or never answered. Said here rather than left to hang.
  if (group.join && group.agentStore && Number(libtorch.split('.')[0]) < 2)
    throw new DistributedError(
      `torchrun's agent serves the rendezvous at ${group.masterAddr}:${group.masterPort} (TORCHELASTIC_USE_AGENT_STORE=True), ` +
        `and this build's libtorch ${libtorch} cannot speak to PyTorch 2.x's store: build resnet-torch against PyTorch 2.x ` +
        "(pip's torch for python3), or start the ranks with `resnet train --nproc-per-node N` or by setting RANK, " +
        'WORLD_SIZE, MASTER_ADDR and MASTER_PORT yourself',
    );
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
      agentStore: group.agentStore,
      storePrefix: group.storePrefix,
      fingerprint: [],
    },
  };
}
