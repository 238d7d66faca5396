// CUDA devices and memory: what is there, how much the caching allocator holds, and giving it back.
import { DeviceError } from './errors';
import { CudaDeviceInfo, info } from './info';
import { native } from './native';
import { s } from './validate';

/** The CUDA devices this build of libtorch sees (empty without CUDA). */
export function listDevices(): CudaDeviceInfo[] {
  return info().cuda.devices;
}

/** The CUDA caching allocator's counters for one device. */
export interface CudaMemoryStats {
  /** Bytes held by live tensors, now and at the peak. */
  allocated: number;
  /** Most bytes allocated to tensors at once. */
  peakAllocated: number;
  /** Bytes the caching allocator reserved from the driver, now and at the peak. */
  reserved: number;
  /** Most bytes the allocator held at once. */
  peakReserved: number;
  /** Allocations retried after freeing the cache. */
  allocRetries: number;
  /** Allocations that failed. */
  ooms: number;
}

/** Why CUDA cannot be used: a build without it, or no device visible to one with it. */
function unavailable(): string {
  return info().cuda.builtWithCuda
    ? 'CUDA is not available: this build has CUDA, and the driver reports no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)'
    : 'CUDA is not available in this build of libtorch';
}

/** CUDA helpers: whether a device is usable, the allocator's counters, and emptying its cache. */
export const cuda = {
  /** Whether libtorch sees a usable CUDA device. */
  isAvailable(): boolean {
    return info().cuda.available;
  },
  /** The caching allocator's counters for `device`. */
  memoryStats(device = 0): CudaMemoryStats {
    s.integer({ min: 0 }).parse(device, 'device');
    if (!info().cuda.available) throw new DeviceError(unavailable());
    return native().cudaMemoryStats(device);
  },
  /** Returns the allocator's unused cached blocks to the driver. */
  emptyCache(): void {
    if (!info().cuda.available) throw new DeviceError(unavailable());
    native().cudaEmptyCache();
  },
};
