#pragma once
// A caching allocator for libtorch's CPU tensors. Training allocates and frees the same activation sizes
// every iteration; through glibc's malloc those large blocks are returned to the kernel (brk trimming) and
// faulted back in, which here cost a third of the training time in the kernel and made throughput swing by
// 2-3x after an evaluation pass. Freed blocks are kept in size classes and reused instead.
#include <cstddef>

namespace rt {

// Installs the allocator for every later CPU tensor (once per process). `max_cached_bytes` bounds what is
// kept; 0 disables the cache. Only for libtorch 1.x, whose Allocator interface this is built against.
void install_caching_cpu_allocator(std::size_t max_cached_bytes);

struct CpuCacheStats {
  std::size_t cached_bytes = 0, hits = 0, misses = 0;
};
CpuCacheStats cpu_cache_stats();

}  // namespace rt
