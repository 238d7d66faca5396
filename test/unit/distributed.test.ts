// Which process group a process joins: the option, else the environment torchrun or Slurm set.
import { ValidationError } from '../../lib';
import { resolveProcessGroup } from '../../lib/train/distributed';
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
    });
  });
  it("maps Slurm's as torchrun's users expect, with MASTER_ADDR from the job script", () => {
    const slurm = {
      SLURM_PROCID: '5',
      SLURM_NTASKS: '6',
      SLURM_LOCALID: '2',
      SLURM_NTASKS_PER_NODE: '3',
      MASTER_ADDR: 'node01',
    };
    expect(resolveProcessGroup(undefined, slurm)).toMatchObject({
      rank: 5,
      worldSize: 6,
      localRank: 2,
      localWorldSize: 3,
      masterAddr: 'node01',
      masterPort: 29500,
      source: 'slurm',
    });
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
    expect(() => resolveProcessGroup({ backend: 'nccl' as never }, {})).toThrow(
      'distributed.backend: expected "gloo", got "nccl"',
    );
  });
});
