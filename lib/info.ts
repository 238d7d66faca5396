// What this installation can do: versions, devices, threads, the build's ABI.
import * as fs from 'fs';
import * as path from 'path';

import { addonPath, native } from './native';
import { packageRoot } from './paths';
import { s } from './validate';

export interface CudaDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
}

export interface RuntimeInfo {
  version: string;
  libtorchVersion: string;
  cuda: { available: boolean; builtWithCuda: boolean; devices: CudaDeviceInfo[]; cudnnVersion: number | null };
  threads: { intraOp: number; interOp: number };
  cxx11Abi: boolean;
  mkldnn: boolean;
  /** Process groups this build can train in: Gloo (CPU tensors, c10d) where libgloo-dev was there at build time. */
  distributed: { gloo: boolean; nccl: boolean };
  addon: string;
}

export function packageVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

export function info(): RuntimeInfo {
  const n = native().info();
  return {
    version: packageVersion(),
    libtorchVersion: n.torchVersion,
    cuda: {
      available: n.cudaAvailable,
      builtWithCuda: n.builtWithCuda,
      devices: n.cudaDevices,
      cudnnVersion: n.cudnnVersion || null,
    },
    threads: { intraOp: n.intraOpThreads, interOp: n.interOpThreads },
    cxx11Abi: n.cxx11Abi,
    mkldnn: n.mkldnn,
    distributed: { gloo: n.distributedGloo, nccl: false },
    addon: addonPath(),
  };
}

/** Intra-op threads libtorch uses for every later operation (default: the number of cores). */
export function setNumThreads(n: number): void {
  s.integer({ min: 1, max: 1024 }).parse(n, 'threads');
  native().setNumThreads(n);
}

export function getNumThreads(): number {
  return native().getNumThreads();
}

export function formatInfo(i: RuntimeInfo): string {
  const lines = [
    `resnet-torch   ${i.version}`,
    `libtorch       ${i.libtorchVersion} (C++11 ABI: ${i.cxx11Abi ? 'yes' : 'no'}, oneDNN: ${i.mkldnn ? 'yes' : 'no'})`,
    `threads        ${i.threads.intraOp} intra-op, ${i.threads.interOp} inter-op`,
    `CUDA           ${i.cuda.available ? `available, ${i.cuda.devices.length} device(s)` : i.cuda.builtWithCuda ? 'built in, no device found' : 'not in this build'}`,
  ];
  for (const d of i.cuda.devices)
    lines.push(
      `  cuda:${d.index}       ${d.name || '(name unknown)'}, compute ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB`,
    );
  lines.push(`distributed    ${i.distributed.gloo ? 'Gloo (c10d)' : 'not in this build (needs libgloo-dev)'}`);
  lines.push(`cuDNN          ${i.cuda.cudnnVersion ?? 'none'}`);
  lines.push(`addon          ${i.addon}`);
  return lines.join('\n');
}
