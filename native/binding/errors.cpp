#include "binding/errors.h"

#include <c10/util/Exception.h>

#include <new>

#include "common/error.h"

namespace rt::js {

namespace {

bool mentions_out_of_memory(const std::string& message) {
  return message.find("out of memory") != std::string::npos || message.find("Out of memory") != std::string::npos ||
         message.find("OutOfMemory") != std::string::npos;
}

}  // namespace

Failure describe_current_exception() {
  Failure f;
  try {
    throw;
  } catch (const rt::Error& e) {
    f.code = e.code();
    f.message = e.what();
  } catch (const c10::Error& e) {
    f.message = e.what_without_backtrace();
    if (mentions_out_of_memory(f.message)) f.code = "ERR_OUT_OF_MEMORY";
  } catch (const std::bad_alloc&) {
    f.code = "ERR_OUT_OF_MEMORY";
    f.message = "out of host memory";
  } catch (const std::exception& e) {
    f.message = e.what();
    if (mentions_out_of_memory(f.message)) f.code = "ERR_OUT_OF_MEMORY";
  } catch (...) {
    f.message = "unknown native error";
  }
  return f;
}

Napi::Error to_js_error(Napi::Env env, const Failure& failure) {
  Napi::Error error = Napi::Error::New(env, failure.message);
  error.Set("code", Napi::String::New(env, failure.code));
  return error;
}

}  // namespace rt::js
