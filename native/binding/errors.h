#pragma once
// The boundary's one rule for failures: every C++ exception becomes a JS Error with a `code`
// (ERR_SHAPE, ERR_BUSY, ERR_OUT_OF_MEMORY, ERR_NATIVE, ...) and a message without libtorch's backtrace.
#include <napi.h>

#include <string>

namespace rt::js {

struct Failure {
  std::string code = "ERR_NATIVE";
  std::string message;
};

// Call from inside a catch block: classifies the exception being handled.
Failure describe_current_exception();
Napi::Error to_js_error(Napi::Env env, const Failure& failure);

// Runs `body`, turning any C++ exception into a thrown JS error (for synchronous methods).
template <typename Body>
auto guard(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw to_js_error(env, describe_current_exception());
  }
}

}  // namespace rt::js
