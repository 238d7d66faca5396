// What this installation can do: versions, devices, threads, the build's ABI.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { addonPath, native } from './native';
import { packageRoot } from './paths';
import { s } from './validate';

/** One CUDA device as libtorch reports it. */
export interface CudaDeviceInfo {
  /** The device's index (cuda:N). */
  index: number;
  name: string;
  /** Its compute capability ('9.0'). */
  computeCapability: string;
  /** Its memory, in bytes. */
  totalMemory: number;
}

/** info(): versions, devices, threads and build facts of the running addon. */
export interface RuntimeInfo {
  /** resnet-torch's version. */
  version: string;
  /** The libtorch headers the addon was compiled against. */
  libtorchVersion: string;
  /** The libtorch library this process runs with (its file name carries the version). */
  libtorchLibrary: string;
  /** CUDA as the addon sees it. */
  cuda: {
    /** A usable device is present. */
    available: boolean;
    /** The libtorch it uses has CUDA. */
    builtWithCuda: boolean;
    devices: CudaDeviceInfo[];
    /** cuDNN as libtorch was built with it. */
    cudnnVersion: number | null;
    /** "12.4": the CUDA runtime of the build's headers, the one loaded now, and what the driver supports. */
    compiledVersion: string | null;
    /** The CUDA runtime's version. */
    runtimeVersion: string | null;
    /** The driver's CUDA version. */
    driverVersion: string | null;
  };
  /** libtorch's thread pools. */
  threads: {
    /** Threads within an operation. */
    intraOp: number;
    /** Threads across operations. */
    interOp: number;
  };
  /** libtorch's C++ ABI. */
  cxx11Abi: boolean;
  /** oneDNN runs the CPU convolutions (false: built without it, or turned off; `mkldnnOffReason` says why). */
  mkldnn: boolean;
  /** Why oneDNN is off, when it is. */
  mkldnnOffReason: string | null;
  /** The CPU and what it runs: its model, the vector extensions it has, and the ones oneDNN's kernels use. */
  cpu: {
    /** The CPU's model name. */
    model: string;
    /** Its vector extensions of note, from /proc/cpuinfo: 'AVX2', 'AVX-512', 'AVX-512 BF16', 'AMX'. */
    isa: string[];
    /** The instruction set oneDNN runs here (at most ONEDNN_MAX_CPU_ISA), null where its symbols are hidden. */
    onednnIsa: string | null;
    /** The oneDNN version libtorch runs, null where its symbols are hidden. */
    onednnVersion: string | null;
  };
  /** How train() runs the passes on the CPU: oneDNN directly, in its blocked layout (README, "Performance"), or
   *  libtorch's path. */
  training: {
    /** This build has the oneDNN training path. */
    onednn: boolean;
    /** Channels per block of its layout (16 with AVX-512, 8 otherwise); 0 without it. */
    block: number;
    /** Why it is not built, when it is not. */
    why: string | null;
    /** The oneDNN it runs (libtorch's, or the system's beside a pip torch whose own is hidden), null without it. */
    onednnVersion: string | null;
    /** The instruction set that oneDNN's kernels use here, null without it. */
    onednnIsa: string | null;
  };
  /** Process groups this build can train in (c10d): Gloo where its headers were there at build time (libgloo-dev,
   *  or a pip PyTorch's own), NCCL where the libtorch is a CUDA 2.x one built with it. */
  distributed: {
    /** Gloo (CPU) process groups are available. */
    gloo: boolean;
    /** NCCL (CUDA) process groups are available. */
    nccl: boolean;
  };
  /** The addon file loaded. */
  addon: string;
}

export function packageVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/** 12040 -> "12.4" (CUDA's own encoding: 1000 x major + 10 x minor); 0 -> null. */
export function cudaVersionText(v: number): string | null {
  return v > 0 ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : null;
}

/** The CPU's model and its vector extensions of note (/proc/cpuinfo's flags; os.cpus() where there is none). */
export function cpuModelAndIsa(cpuinfo?: string): { model: string; isa: string[] } {
  let text = cpuinfo ?? '';
  if (cpuinfo === undefined)
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = '';
    }
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1].trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(text)?.[1] ?? '').split(/\s+/));
  const isa = [
    ['avx2', 'AVX2'],
    ['avx512f', 'AVX-512'],
    ['avx512_vnni', 'AVX-512 VNNI'],
    ['avx512_bf16', 'AVX-512 BF16'],
    ['amx_tile', 'AMX'],
  ]
    .filter(([flag]) => flags.has(flag))
    .map(([, name]) => name);
  return { model, isa };
}

/** Versions, devices, threads and build facts of the running addon. */
export function info(): RuntimeInfo {
  const n = native().info();
  return {
    version: packageVersion(),
    libtorchVersion: n.torchVersion,
    libtorchLibrary: n.torchLibrary,
    cuda: {
      available: n.cudaAvailable,
      builtWithCuda: n.builtWithCuda,
      devices: n.cudaDevices,
      cudnnVersion: n.cudnnVersion || null,
      compiledVersion: cudaVersionText(n.cudaCompiled),
      runtimeVersion: cudaVersionText(n.cudaRuntime),
      driverVersion: cudaVersionText(n.cudaDriver),
    },
    threads: { intraOp: n.intraOpThreads, interOp: n.interOpThreads },
    cxx11Abi: n.cxx11Abi,
    mkldnn: n.mkldnn,
    mkldnnOffReason: n.onednnOffReason || null,
    cpu: { ...cpuModelAndIsa(), onednnIsa: n.onednnIsa || null, onednnVersion: n.onednnVersion || null },
    training: {
      onednn: !n.onednnTraining,
      block: n.onednnTrainingBlock,
      why: n.onednnTraining || null,
      onednnVersion: n.onednnTrainingVersion || null,
      onednnIsa: n.onednnTrainingIsa || null,
    },
    distributed: { gloo: n.distributedGloo, nccl: n.distributedNccl },
    addon: addonPath(),
  };
}

/** Intra-op threads libtorch uses for every later operation (default: the number of cores). */
export function setNumThreads(n: number): void {
  s.integer({ min: 1, max: 1024 }).parse(n, 'threads');
  native().setNumThreads(n);
}

/** libtorch's intra-op threads. */
export function getNumThreads(): number {
  return native().getNumThreads();
}

/** info() as the lines `resnet info` prints. */
export function formatInfo(i: RuntimeInfo): string {
  const lines = [
    `resnet-torch   ${i.version}`,
    `libtorch       ${i.libtorchVersion} (C++11 ABI: ${i.cxx11Abi ? 'yes' : 'no'}, oneDNN: ${i.mkldnn ? 'yes' : 'no'})`,
    `  runs with    ${i.libtorchLibrary || 'unknown'}`,
    `threads        ${i.threads.intraOp} intra-op, ${i.threads.interOp} inter-op`,
    `CUDA           ${i.cuda.available ? `available, ${i.cuda.devices.length} device(s)` : i.cuda.builtWithCuda ? 'built in, no device found' : 'not in this build'}`,
  ];
  if (i.mkldnnOffReason) lines.push(`  oneDNN off:  ${i.mkldnnOffReason}`);
  lines.push(
    `CPU            ${i.cpu.model}; ${i.cpu.isa.join(', ') || 'no AVX2'}; oneDNN ${i.cpu.onednnVersion ?? '(version hidden)'} runs ${i.cpu.onednnIsa ?? '(ISA hidden)'}`,
  );
  lines.push(
    `training (CPU) ${i.training.onednn ? `oneDNN ${i.training.onednnVersion} on ${i.training.onednnIsa}, blocked layout (${i.training.block} channels per block)` : `libtorch's path (${i.training.why})`}`,
  );
  for (const d of i.cuda.devices)
    lines.push(
      `  cuda:${d.index}       ${d.name || '(name unknown)'}, compute ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB`,
    );
  const groups = [i.distributed.gloo && 'Gloo', i.distributed.nccl && 'NCCL'].filter(Boolean).join(', ');
  lines.push(`distributed    ${groups ? `${groups} (c10d)` : 'not in this build (needs libgloo-dev)'}`);
  if (i.cuda.builtWithCuda)
    lines.push(
      `CUDA versions  built against ${i.cuda.compiledVersion}, runtime ${i.cuda.runtimeVersion ?? 'not loaded'}, driver ${i.cuda.driverVersion ?? 'none'}`,
    );
  lines.push(`cuDNN          ${i.cuda.cudnnVersion ?? 'none'}`);
  lines.push(`addon          ${i.addon}`);
  return lines.join('\n');
}
