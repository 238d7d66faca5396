#include "binding/args.h"

#include <cmath>

namespace rt::js {

namespace {

bool is_integer(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  return std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9.007199254740992e15;
}

}  // namespace

void Args::fail(const char* name, const char* expected) const {
  throw Napi::TypeError::New(info_.Env(), std::string(call_) + ": " + name + " must be " + expected);
}

double Args::number(size_t i, const char* name) const {
  if (!info_[i].IsNumber()) fail(name, "a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

int64_t Args::integer(size_t i, const char* name) const {
  if (!is_integer(info_[i])) fail(name, "an integer");
  return info_[i].As<Napi::Number>().Int64Value();
}

bool Args::boolean(size_t i, const char* name) const {
  if (!info_[i].IsBoolean()) fail(name, "a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::string(size_t i, const char* name) const {
  if (!info_[i].IsString()) fail(name, "a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

Napi::Object Args::object(size_t i, const char* name) const {
  if (!info_[i].IsObject()) fail(name, "an object");
  return info_[i].As<Napi::Object>();
}

Napi::Array Args::array(size_t i, const char* name) const {
  if (!info_[i].IsArray()) fail(name, "an array");
  return info_[i].As<Napi::Array>();
}

Napi::Function Args::function(size_t i, const char* name) const {
  if (!info_[i].IsFunction()) fail(name, "a function");
  return info_[i].As<Napi::Function>();
}

Napi::TypedArray Args::typed_array(size_t i, const char* name) const {
  if (!info_[i].IsTypedArray()) fail(name, "a typed array");
  return info_[i].As<Napi::TypedArray>();
}

Napi::Value Fields::present(const char* key) const {
  Napi::Value v = object_.Get(key);
  if (v.IsUndefined()) throw Napi::TypeError::New(object_.Env(), name(key) + " is missing");
  return v;
}

double Fields::number(const char* key) const {
  Napi::Value v = present(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(object_.Env(), name(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t Fields::integer(const char* key) const {
  Napi::Value v = present(key);
  if (!is_integer(v)) throw Napi::TypeError::New(object_.Env(), name(key) + " must be an integer");
  return v.As<Napi::Number>().Int64Value();
}

bool Fields::boolean(const char* key) const {
  Napi::Value v = present(key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(object_.Env(), name(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string Fields::string(const char* key) const {
  Napi::Value v = present(key);
  if (!v.IsString()) throw Napi::TypeError::New(object_.Env(), name(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Fields Fields::object(const char* key) const {
  Napi::Value v = present(key);
  if (!v.IsObject()) throw Napi::TypeError::New(object_.Env(), name(key) + " must be an object");
  return Fields(v.As<Napi::Object>(), name(key));
}

Napi::Value Fields::value(const char* key) const { return present(key); }

bool Fields::has(const char* key) const { return !object_.Get(key).IsUndefined(); }

}  // namespace rt::js
