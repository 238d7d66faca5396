#include "device/cuda.h"

#include "common/error.h"

#ifdef RESNET_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace rt {

#ifdef RESNET_WITH_CUDA

CudaMemoryStats cuda_memory_stats(int device) {
  if (device < 0 || device >= static_cast<int>(c10::cuda::device_count()))
    throw Error("ERR_DEVICE", "no CUDA device " + std::to_string(device));
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  CudaMemoryStats s;
  // Index 0 is StatType::AGGREGATE (all pools) in every libtorch version.
  s.allocated = stats.allocated_bytes[0].current;
  s.peak_allocated = stats.allocated_bytes[0].peak;
  s.reserved = stats.reserved_bytes[0].current;
  s.peak_reserved = stats.reserved_bytes[0].peak;
  s.alloc_retries = stats.num_alloc_retries;
  s.ooms = stats.num_ooms;
  return s;
}

void cuda_empty_cache() { c10::cuda::CUDACachingAllocator::emptyCache(); }

void release_cuda_cache_after_oom() noexcept {
  try {
    if (c10::cuda::device_count() > 0) c10::cuda::CUDACachingAllocator::emptyCache();
  } catch (...) {
  }
}

#else

CudaMemoryStats cuda_memory_stats(int) { throw Error("ERR_DEVICE", "CUDA is not available in this build of libtorch"); }

void cuda_empty_cache() { throw Error("ERR_DEVICE", "CUDA is not available in this build of libtorch"); }

void release_cuda_cache_after_oom() noexcept {}

#endif

}  // namespace rt
