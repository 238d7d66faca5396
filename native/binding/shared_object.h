#pragma once
// Native objects handed to JS: a shared_ptr travels in an External that the JS class's constructor adopts.
// Work already queued on the object holds its own reference, so dispose() or collection never frees it
// under a running worker.
#include <napi.h>

#include <memory>
#include <utility>

namespace rt::js {

// An instance of the JS class `cls` owning `object`.
template <typename T>
Napi::Object wrap_shared(Napi::Env env, const Napi::FunctionReference& cls, std::shared_ptr<T> object) {
  auto external = Napi::External<std::shared_ptr<T>>::New(env, new std::shared_ptr<T>(std::move(object)),
                                                          [](Napi::Env, std::shared_ptr<T>* p) { delete p; });
  return cls.New({external});
}

// In the class's constructor: the object wrap_shared passed; `origin` says where such objects come from. It is
// moved out: the External lives on until V8 collects it, and must not keep the object alive after dispose().
template <typename T>
std::shared_ptr<T> adopt_shared(const Napi::CallbackInfo& info, const char* origin) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), origin);
  auto* held = info[0].As<Napi::External<std::shared_ptr<T>>>().Data();
  if (!*held) throw Napi::TypeError::New(info.Env(), origin);  // already adopted
  return std::move(*held);
}

// `value` as an instance of the wrap class `Wrap` (constructed by `cls`), or a TypeError naming `what`.
template <typename Wrap>
Wrap* unwrap_instance(const Napi::Value& value, const Napi::FunctionReference& cls, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(cls.Value()))
    throw Napi::TypeError::New(value.Env(), std::string("expected a native ") + what);
  return Wrap::Unwrap(value.As<Napi::Object>());
}

}  // namespace rt::js
