#pragma once
// The one test for "the device ran out of memory", used by the binding's error mapping, the model's forward
// and the trainer: libtorch's typed c10::OutOfMemoryError (CUDA's caching allocator, our CPU allocator),
// std::bad_alloc, and the one untyped case left: libtorch's default CPU allocator, which throws a plain c10::Error.
#include <c10/util/Exception.h>

#include <cstring>
#include <exception>
#include <new>

namespace rt {

inline bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e)) return true;
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return c10_error &&
         std::strstr(c10_error->what_without_backtrace(), "DefaultCPUAllocator: not enough memory") != nullptr;
}

}  // namespace rt
