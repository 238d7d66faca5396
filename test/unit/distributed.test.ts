// Which process group a process joins: the option, else the environment torchrun or Slurm set.
import { ValidationError } from '../../lib';
import { rankDevice, resolveBackend, resolveProcessGroup, slurmHostnames } from '../../lib/train/options/distributed';
import { thrown } from '../helpers/errors';

const torchrun = {
  RANK: '3',
  WORLD_SIZE: '8',
  LOCAL_RANK: '1',
  LOCAL_WORLD_SIZE: '2',
  MASTER_ADDR: '10.0.0.1',
  MASTER_PORT: '29400',
};

describe('process group from the environment and the option', () => {
  it('one process when nothing names a world', () => {
    expect(resolveProcessGroup(undefined, {})).toMatchObject({
      rank: 0,
      worldSize: 1,
      source: 'single',
      join: false,
      masterAddr: '127.0.0.1',
    });
  });
  it("reads torchrun's variables", () => {
    expect(resolveProcessGroup(undefined, torchrun)).toEqual({
      rank: 3,
      worldSize: 8,
      localRank: 1,
      localWorldSize: 2,
      masterAddr: '10.0.0.1',
      masterPort: 29400,
      timeoutSeconds: 300,
      progressOnAllRanks: false,
      source: 'torchrun',
      join: true,
      agentStore: false,
      storePrefix: '',
    });
  });
  it("joins torchrun's agent store as a client, under the restart attempt's prefix, only at the agent's own address", () => {
    const elastic = { ...torchrun, TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2' };
    expect(resolveProcessGroup(undefined, elastic)).toMatchObject({
      agentStore: true,
      storePrefix: '/worker/attempt_2',
    });
    // Another address given by the option: that store is not the agent's (PyTorch's _agent_store_serves).
    expect(resolveProcessGroup({ masterPort: 29401 }, elastic)).toMatchObject({ agentStore: false, storePrefix: '' });
    expect(resolveProcessGroup(false, elastic)).toMatchObject({ agentStore: false });
    expect(resolveProcessGroup(undefined, { ...elastic, TORCHELASTIC_USE_AGENT_STORE: 'False' })).toMatchObject({
      agentStore: false,
    });
    expect(() => resolveProcessGroup(undefined, { ...elastic, TORCHELASTIC_RESTART_COUNT: 'x' })).toThrow(
      /TORCHELASTIC_RESTART_COUNT/,
    );
  });
  it("srun's environment exactly as Slurm writes it: MASTER_ADDR from the first host of the compressed node list", () => {
    const srun = {
      SLURM_PROCID: '3',
      SLURM_NTASKS: '8',
      SLURM_LOCALID: '1',
      SLURM_NTASKS_PER_NODE: '2(x4)',
      SLURM_JOB_NODELIST: 'gpu[07-09,12]',
      SLURM_NODELIST: 'gpu[07-09,12]',
    };
    expect(resolveProcessGroup(undefined, srun)).toMatchObject({
      rank: 3,
      worldSize: 8,
      localRank: 1,
      localWorldSize: 2,
      masterAddr: 'gpu07',
      masterPort: 29500,
      source: 'slurm',
    });
    // The job script's MASTER_ADDR / MASTER_PORT win; a list that cannot be read names the variable.
    expect(resolveProcessGroup(undefined, { ...srun, MASTER_ADDR: 'login1', MASTER_PORT: '29600' })).toMatchObject({
      masterAddr: 'login1',
      masterPort: 29600,
    });
    expect(() => resolveProcessGroup(undefined, { ...srun, SLURM_JOB_NODELIST: 'gpu[9-7]' })).toThrow(
      /SLURM_JOB_NODELIST: cannot read the range "9-7" of "gpu\[9-7\]"/,
    );
    expect(() => resolveProcessGroup(undefined, { ...srun, SLURM_NTASKS_PER_NODE: 'x' })).toThrow(
      /SLURM_NTASKS_PER_NODE: expected a task count/,
    );
  });
  it("Kubeflow's PyTorchJob (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK per pod): one process per machine", () => {
    const pod = { MASTER_ADDR: 'job-master-0', MASTER_PORT: '23456', WORLD_SIZE: '4', RANK: '2' };
    expect(resolveProcessGroup(undefined, pod)).toMatchObject({
      rank: 2,
      worldSize: 4,
      localRank: 0,
      localWorldSize: 1,
      masterAddr: 'job-master-0',
      masterPort: 23456,
    });
    expect(rankDevice('cuda', pod)).toBe('cuda');
  });
  it('the option wins over the environment; false ignores the environment', () => {
    expect(
      resolveProcessGroup({ rank: 0, worldSize: 2, masterAddr: 'h', masterPort: 1234, timeoutSeconds: 5 }, torchrun),
    ).toMatchObject({ rank: 0, worldSize: 2, masterAddr: 'h', masterPort: 1234, timeoutSeconds: 5, source: 'option' });
    expect(resolveProcessGroup(false, torchrun)).toMatchObject({ rank: 0, worldSize: 1, source: 'single' });
  });
  it('refuses a rank outside the world, a world without a master address, and malformed variables', () => {
    expect(() => resolveProcessGroup(undefined, { ...torchrun, RANK: '8' })).toThrow(
      "rank 8 is outside a world of 8 (torchrun's environment)",
    );
    const e = thrown(() => resolveProcessGroup(undefined, { RANK: '0', WORLD_SIZE: '2' }));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toMatch(/a world of 2 needs the address of rank 0: set MASTER_ADDR/);
    expect(() => resolveProcessGroup(undefined, { ...torchrun, WORLD_SIZE: 'two' })).toThrow(
      'WORLD_SIZE: expected an integer ≥ 1 (environment variable), got "two"',
    );
    expect(() => resolveProcessGroup({ backend: 'mpi' as never }, {})).toThrow(
      'distributed.backend: expected one of "gloo", "nccl", got "mpi"',
    );
  });
});

describe("Slurm's compressed node lists, expanded as scontrol show hostnames does", () => {
  it.each([
    ['node01', ['node01']],
    ['node[01-03,07],login', ['node01', 'node02', 'node03', 'node07', 'login']],
    ['gpu[8-10]', ['gpu8', 'gpu9', 'gpu10']],
    ['rack[1-2]-n[08-09]', ['rack1-n08', 'rack1-n09', 'rack2-n08', 'rack2-n09']],
    ['a[1],b', ['a1', 'b']],
  ])('%s', (list, hosts) => expect(slurmHostnames(list)).toEqual(hosts));
  it.each([['node[01'], ['node]'], ['node[a-b]'], ['node[3-1]'], ['bad host'], ['']])('refuses %p', (list) =>
    expect(() => slurmHostnames(list)).toThrow(),
  );
});

describe('the backend: NCCL for CUDA where built, else Gloo, as init_process_group("cpu:gloo,cuda:nccl")', () => {
  const group = resolveProcessGroup(undefined, torchrun); // local rank 1 of 2
  it('defaults by device and build', () => {
    expect(resolveBackend(group, undefined, 'cpu', true)).toBe('gloo');
    expect(resolveBackend(group, undefined, 'cuda:1', true)).toBe('nccl');
    expect(resolveBackend(group, undefined, 'cuda:1', false)).toBe('gloo');
    expect(resolveBackend(group, 'gloo', 'cuda:0', true)).toBe('gloo'); // Gloo has no one-GPU-per-rank rule
  });
  it('refuses NCCL without it in the build, for a CPU model, and on another GPU than the local rank', () => {
    const none = thrown(() => resolveBackend(group, 'nccl', 'cuda:1', false));
    expect([none.constructor, none.field, none.message]).toEqual([
      ValidationError,
      'distributed.backend',
      expect.stringMatching(/this build has no NCCL \(info\(\)\.distributed\.nccl is false\)/),
    ]);
    expect(() => resolveBackend(group, 'nccl', 'cpu', true)).toThrow(
      "NCCL reduces CUDA tensors, and the model is on cpu; use 'gloo' or move the model to cuda:1",
    );
    expect(() => resolveBackend(group, 'nccl', 'cuda:0', true)).toThrow(
      'local rank 1 has the model on cuda:0: create it with device: `cuda:${processGroup().localRank}`',
    );
    const alone = resolveProcessGroup({ rank: 0, worldSize: 2, masterAddr: 'h' }, {}); // one rank per machine
    expect(resolveBackend({ ...alone, localWorldSize: 1 }, 'nccl', 'cuda:3', true)).toBe('nccl');
  });
});

describe("the CLI's device per rank", () => {
  it("a bare cuda is the local rank's GPU when ranks share the machine; anything else stays", () => {
    expect(rankDevice('cuda', torchrun)).toBe('cuda:1');
    expect(rankDevice('cuda', { ...torchrun, LOCAL_WORLD_SIZE: '1' })).toBe('cuda');
    expect(rankDevice('cuda:0', torchrun)).toBe('cuda:0');
    expect(rankDevice('cpu', torchrun)).toBe('cpu');
    expect(rankDevice(undefined, torchrun)).toBeUndefined();
    expect(rankDevice('cuda', {})).toBe('cuda');
  });
});
