#include "device/cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/torch_compat.h"

namespace rt {

namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kSmall = 1 << 20;  // below 1 MiB: powers of two; above: 256 KiB steps

std::size_t size_class(std::size_t n) {
  if (n <= 64) return 64;
  if (n < kSmall) {
    std::size_t c = 64;
    while (c < n) c <<= 1;
    return c;
  }
  constexpr std::size_t step = 256 * 1024;
  return (n + step - 1) / step * step;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(std::size_t max_cached) : max_cached_(max_cached) {}

  c10::DataPtr allocate(std::size_t n) RT_ALLOCATE_CONST override {
    if (n == 0) return {nullptr, nullptr, &release, c10::Device(c10::DeviceType::CPU)};
    void* p = take(n);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

#if RT_ALLOCATOR_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#endif

  CpuCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cached_, hits_, misses_};
  }

 private:
  struct Block {
    std::size_t size_class;
  };

  void* take(std::size_t n) const {
    const std::size_t c = size_class(n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(c);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= c;
        ++hits_;
        return p;
      }
      ++misses_;
    }
    // A header in front of the block remembers its size class for release().
    void* raw = nullptr;
    if (posix_memalign(&raw, kAlignment, c + kAlignment) != 0 || raw == nullptr)
      C10_THROW_ERROR(OutOfMemoryError, "CPU allocator: out of host memory for " + std::to_string(c) + " bytes");
    static_cast<Block*>(raw)->size_class = c;
    return static_cast<char*>(raw) + kAlignment;
  }

  void give_back(void* p) const {
    void* raw = static_cast<char*>(p) - kAlignment;
    const std::size_t c = static_cast<Block*>(raw)->size_class;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + c <= max_cached_) {
        free_[c].push_back(p);
        cached_ += c;
        return;
      }
    }
    std::free(raw);
  }

  static void release(void* p);

  std::size_t max_cached_;
  mutable std::mutex mutex_;
  mutable std::map<std::size_t, std::vector<void*>> free_;
  mutable std::size_t cached_ = 0, hits_ = 0, misses_ = 0;
};

// Never destroyed: tensors may outlive every static object at exit.
CachingCpuAllocator* instance = nullptr;

void CachingCpuAllocator::release(void* p) {
  if (p) instance->give_back(p);
}

}  // namespace

void install_caching_cpu_allocator(std::size_t max_cached_bytes) {
  static std::once_flag once;
  std::call_once(once, [&] {
    if (max_cached_bytes == 0) return;
    instance = new CachingCpuAllocator(max_cached_bytes);
    c10::SetCPUAllocator(instance, /*priority=*/10);
  });
}

CpuCacheStats cpu_cache_stats() { return instance ? instance->stats() : CpuCacheStats{}; }

}  // namespace rt
