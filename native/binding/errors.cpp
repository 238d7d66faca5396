#include "binding/errors.h"

#include <c10/util/Exception.h>

#include <new>

#include "common/error.h"
#include "common/oom.h"

namespace rt::js {

Failure describe_current_exception() {
  Failure f;
  try {
    throw;
  } catch (const rt::Error& e) {
    f.code = e.code();
    f.message = e.what();
  } catch (const std::bad_alloc&) {
    f.code = "ERR_OUT_OF_MEMORY";
    f.message = "out of host memory";
  } catch (const c10::Error& e) {
    f.message = e.what_without_backtrace();
    if (is_out_of_memory(e)) f.code = "ERR_OUT_OF_MEMORY";
  } catch (const std::exception& e) {
    f.message = e.what();
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
