#pragma once
// CUDA memory statistics and cache control. Throws ERR_DEVICE in a build without CUDA.
#include <cstdint>

namespace rt {

struct CudaMemoryStats {
  int64_t allocated = 0, reserved = 0;            // bytes now
  int64_t peak_allocated = 0, peak_reserved = 0;  // bytes, since the start (or the last reset)
  int64_t alloc_retries = 0, ooms = 0;
};

CudaMemoryStats cuda_memory_stats(int device);
void cuda_empty_cache();
// Frees the caching allocator's unused blocks after an out-of-memory error, if CUDA is there at all.
void release_cuda_cache_after_oom() noexcept;

}  // namespace rt
