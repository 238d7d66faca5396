// `resnet train --nproc-per-node N ...`: starts N ranks of the same command on this machine, as torchrun does
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), shows rank 0's output, forwards
// Ctrl-C / SIGTERM to every rank, stops the others when one fails, and exits with the first failure's code.
import { ChildProcess, spawn } from 'child_process';

import { FlagSpec, UsageError } from './args';
import { EXIT } from './command';

export const LAUNCH_FLAGS: Record<string, FlagSpec> = {
  'nproc-per-node': {
    type: 'number',
    description: 'ranks to start on this machine (distributed training; batchSize is per rank)',
  },
  nnodes: { type: 'number', description: 'machines in the job (default 1)' },
  'node-rank': { type: 'number', description: "this machine's index among them (default 0)" },
  'master-addr': { type: 'string', description: 'address of the machine of rank 0 (default 127.0.0.1)' },
  'master-port': { type: 'number', description: 'its rendezvous port (default 29500)' },
};

export interface LaunchPlan {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
}

/** The launch the flags ask for, or undefined when this process is to train itself. */
export function launchPlan(flags: Record<string, unknown>): LaunchPlan | undefined {
  const n = flags['nproc-per-node'] as number | undefined;
  if (n === undefined) {
    for (const f of ['nnodes', 'node-rank', 'master-addr', 'master-port'])
      if (flags[f] !== undefined) throw new UsageError(`--${f} goes with --nproc-per-node`);
    return undefined;
  }
  const plan = {
    nprocPerNode: n,
    nnodes: (flags.nnodes as number | undefined) ?? 1,
    nodeRank: (flags['node-rank'] as number | undefined) ?? 0,
    masterAddr: (flags['master-addr'] as string | undefined) ?? '127.0.0.1',
    masterPort: (flags['master-port'] as number | undefined) ?? 29500,
  };
  for (const [name, v, min] of [
    ['nproc-per-node', plan.nprocPerNode, 1],
    ['nnodes', plan.nnodes, 1],
    ['node-rank', plan.nodeRank, 0],
    ['master-port', plan.masterPort, 1],
  ] as const)
    if (!Number.isInteger(v) || v < min) throw new UsageError(`--${name} needs an integer ≥ ${min}, got ${v}`);
  if (plan.nodeRank >= plan.nnodes)
    throw new UsageError(`--node-rank ${plan.nodeRank} is outside --nnodes ${plan.nnodes}`);
  return plan;
}

/** `argv` without the launcher's own flags: what every rank runs. */
export function rankArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '').split('=')[0];
    if (argv[i].startsWith('--') && name in LAUNCH_FLAGS) {
      if (!argv[i].includes('=')) i++;
      continue;
    }
    out.push(argv[i]);
  }
  return out;
}

/** Runs the ranks of this node; resolves with the exit code the launcher should give. */
export function launch(
  plan: LaunchPlan,
  argv: string[],
  out: NodeJS.WriteStream,
  err: NodeJS.WriteStream,
): Promise<number> {
  const world = plan.nprocPerNode * plan.nnodes;
  const children: ChildProcess[] = [];
  const codes: (number | null)[] = new Array(plan.nprocPerNode).fill(null);
  let firstFailure: number | undefined;
  return new Promise((resolve) => {
    let running = plan.nprocPerNode;
    const forward = (sig: NodeJS.Signals) => {
      for (const c of children) if (c.exitCode === null) c.kill(sig);
    };
    const onSignal = (sig: NodeJS.Signals) => forward(sig);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    for (let local = 0; local < plan.nprocPerNode; local++) {
      const rank = plan.nodeRank * plan.nprocPerNode + local;
      const env = {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(world),
        LOCAL_RANK: String(local),
        LOCAL_WORLD_SIZE: String(plan.nprocPerNode),
        MASTER_ADDR: plan.masterAddr,
        MASTER_PORT: String(plan.masterPort),
      };
      // Rank 0 speaks for the run; the others' output is kept and shown only if they fail.
      // Its own process group: a Ctrl-C on the terminal reaches the launcher alone, which forwards it once.
      const child = spawn(process.execPath, [process.argv[1], ...argv], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let kept = '';
      child.stdout!.on('data', (d) => (rank === 0 ? out.write(d) : undefined));
      child.stderr!.on('data', (d) => (rank === 0 ? err.write(d) : (kept += d)));
      child.on('close', (code, signal) => {
        codes[local] = code ?? (signal ? EXIT.failure : EXIT.ok);
        if (codes[local] !== EXIT.ok && firstFailure === undefined) {
          firstFailure = codes[local]!;
          if (rank !== 0 && kept && firstFailure !== EXIT.interrupted)
            err.write(kept.replace(/^(?=.)/gm, `[rank ${rank}] `));
          // The others would wait for this rank in their next all-reduce: stop them now.
          if (firstFailure !== EXIT.interrupted) forward('SIGTERM');
        }
        if (--running === 0) {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve(firstFailure ?? EXIT.ok);
        }
      });
      children.push(child);
    }
  });
}
