#pragma once
// Checked readers for what JS hands the binding, so a wrong call is a TypeError naming the argument or key,
// never a crash: `Args` for a call's positional arguments, `Fields` for the keys of an options object
// (every key required: the facade fills every default, C++ keeps none).
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace rt::js {

class Args {
 public:
  // `call` names the call in messages, e.g. "trace(height, width)".
  Args(const Napi::CallbackInfo& info, const char* call) : info_(info), call_(call) {}

  double number(size_t i, const char* name) const;
  int64_t integer(size_t i, const char* name) const;
  bool boolean(size_t i, const char* name) const;
  std::string string(size_t i, const char* name) const;
  Napi::Object object(size_t i, const char* name) const;
  Napi::Array array(size_t i, const char* name) const;
  Napi::Function function(size_t i, const char* name) const;
  Napi::TypedArray typed_array(size_t i, const char* name) const;
  Napi::Value value(size_t i) const { return info_[i]; }

 private:
  [[noreturn]] void fail(const char* name, const char* expected) const;
  const Napi::CallbackInfo& info_;
  const char* call_;
};

class Fields {
 public:
  // `path` prefixes each key in messages ("optimizer" -> "optimizer.type").
  Fields(Napi::Object object, std::string path) : object_(object), path_(std::move(path)) {}

  double number(const char* key) const;
  int64_t integer(const char* key) const;
  bool boolean(const char* key) const;
  std::string string(const char* key) const;
  Fields object(const char* key) const;
  Napi::Value value(const char* key) const;  // present, of any type
  bool has(const char* key) const;
  // One of `options` by its name; an unknown value throws naming the key and the accepted names.
  template <typename E>
  E choice(const char* key, std::initializer_list<std::pair<const char*, E>> options) const {
    const std::string v = string(key);
    std::string names;
    for (const auto& [name, value] : options) {
      if (v == name) return value;
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    throw Napi::TypeError::New(object_.Env(), this->name(key) + ": unknown value \"" + v + "\" (one of " + names + ")");
  }
  const Napi::Object& raw() const { return object_; }
  // The key with its path, as messages name it.
  std::string name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  Napi::Value present(const char* key) const;
  Napi::Object object_;
  std::string path_;
};

}  // namespace rt::js
