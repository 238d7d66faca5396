#pragma once
// Errors the core throws on purpose. The binding turns them into JS errors whose `code` is kept, so the
// facade can map them to typed errors. libtorch's own c10::Error passes through as ERR_NATIVE.
#include <stdexcept>
#include <string>

namespace rt {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// A shape, size or option the core cannot work with (the facade validates first; this is the backstop).
inline Error invalid(const std::string& message) { return Error("ERR_INVALID", message); }

}  // namespace rt
