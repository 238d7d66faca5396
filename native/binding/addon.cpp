// Module entry: registers the classes and the free functions. Context-aware, so it loads in worker_threads.
#include <napi.h>

#include <cstdlib>
#include <mutex>
#include <thread>

#include "binding/addon_data.h"
#include "binding/args.h"
#include "binding/async.h"
#include "binding/batch_queue_wrap.h"
#include "binding/convert.h"
#include "binding/dataset_wrap.h"
#include "binding/errors.h"
#include "binding/fused_wrap.h"
#include "binding/model_wrap.h"
#include "binding/train_convert.h"
#include "binding/training_wrap.h"
#include "device/cpu_allocator.h"
#include "device/cuda.h"
#include "device/runtime.h"
#include "distributed/group.h"
#include "io/pth_import.h"
#include "models/onednn_training.h"
#include "train/schedule.h"

namespace rt::js {

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&] {
    RuntimeInfo r = runtime_info();
    Napi::Object out = Napi::Object::New(env);
    out.Set("torchVersion", r.torch_version);
    out.Set("torchLibrary", r.torch_library);
    out.Set("cudaCompiled", r.cuda_compiled);
    out.Set("cudaRuntime", r.cuda_runtime);
    out.Set("cudaDriver", r.cuda_driver);
    out.Set("cudaAvailable", r.cuda_available);
    out.Set("builtWithCuda", r.built_with_cuda);
    Napi::Array devices = Napi::Array::New(env, r.cuda_devices.size());
    for (size_t i = 0; i < r.cuda_devices.size(); ++i) {
      const auto& d = r.cuda_devices[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", d.index);
      o.Set("name", d.name);
      o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
      o.Set("totalMemory", static_cast<double>(d.total_memory));
      devices.Set(static_cast<uint32_t>(i), o);
    }
    out.Set("cudaDevices", devices);
    out.Set("cudnnVersion", static_cast<double>(r.cudnn_version));
    out.Set("intraOpThreads", r.intra_op_threads);
    out.Set("interOpThreads", r.inter_op_threads);
    out.Set("cxx11Abi", r.cxx11_abi);
    out.Set("mkldnn", r.mkldnn);
    out.Set("onednnOffReason", r.onednn_off_reason);
    out.Set("onednnVersion", r.onednn_version);
    out.Set("onednnIsa", r.onednn_isa);
    out.Set("onednnTraining", OneDnnTraining::built());
    out.Set("onednnTrainingBlock", static_cast<double>(OneDnnTraining::block()));
    out.Set("onednnTrainingVersion", OneDnnTraining::version());
    out.Set("onednnTrainingIsa", OneDnnTraining::isa());
    out.Set("distributedGloo", c10d_available());
    out.Set("distributedNccl", nccl_available());
    return out;
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = static_cast<int>(Args(info, "setNumThreads(n)").integer(0, "n"));
  guard(env, [&] { set_intra_op_threads(n); });
  return env.Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), intra_op_threads()); }

Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string device = Args(info, "checkDevice(device)").string(0, "device");
  return Napi::String::New(env, guard(env, [&] { return check_device(device); }));
}

// scheduleValues(trainConfig, ops): runs the native LrSchedule through ops, in order:
// { iteration } -> its rate is appended to the result; { trainError } / { metric } -> observed.
Napi::Value ScheduleValues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "scheduleValues(config, ops)");
  TrainConfig config = train_config_from_js(Fields(args.object(0, "config"), ""));
  LrSchedule schedule(config.schedule, config.schedule_state);
  Napi::Array ops = args.array(1, "ops");
  std::vector<double> out;
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    Napi::Value v = ops.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "scheduleValues: each op must be an object");
    const Fields op(v.As<Napi::Object>(), "ops[" + std::to_string(i) + "]");
    if (op.has("iteration"))
      out.push_back(schedule.lr(op.integer("iteration")));
    else if (op.has("trainError"))
      schedule.observe_train_error(op.number("trainError"));
    else if (op.has("metric"))
      schedule.observe_metric(op.number("metric"));
    else
      throw Napi::TypeError::New(
          env, "scheduleValues: ops[" + std::to_string(i) + "] needs iteration, trainError or metric");
  }
  Napi::Array result = Napi::Array::New(env, out.size());
  for (size_t i = 0; i < out.size(); ++i) result.Set(static_cast<uint32_t>(i), out[i]);
  return result;
}

// importPth(pickle: Uint8Array, records: { [key]: Uint8Array }): Promise<[{ name, dtype, shape, data }]>
Napi::Value ImportPth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "importPth(pickle, records)");
  Napi::TypedArray pickle_array = args.typed_array(0, "pickle");
  Napi::Object records = args.object(1, "records");
  auto view = [](const Napi::TypedArray& a) {
    return c10::ArrayRef<char>(static_cast<const char*>(a.ArrayBuffer().Data()) + a.ByteOffset(), a.ByteLength());
  };
  auto archive = std::make_shared<PickleArchive>();
  auto pickle = view(pickle_array);
  archive->pickle.assign(pickle.begin(), pickle.end());
  std::vector<Napi::Value> keep;
  Napi::Array keys = records.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = records.Get(key);
    if (!v.IsTypedArray()) throw Napi::TypeError::New(env, "importPth: each record must be a Uint8Array");
    archive->records[key] = view(v.As<Napi::TypedArray>());
    keep.push_back(v);  // the worker reads the records in place
  }
  return run_async<std::vector<NamedTensor>>(
      env, [archive] { return import_pytorch_state(*archive); },
      [](Napi::Env env, std::vector<NamedTensor>& tensors) -> Napi::Value { return named_tensors_to_js(env, tensors); },
      keep);
}

// cudaMemoryStats(device): { allocated, reserved, peakAllocated, peakReserved, allocRetries, ooms } in bytes
Napi::Value CudaMemoryStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int device = static_cast<int>(Args(info, "cudaMemoryStats(device)").integer(0, "device"));
  return guard(env, [&] {
    const CudaMemoryStats s = cuda_memory_stats(device);
    Napi::Object o = Napi::Object::New(env);
    o.Set("allocated", static_cast<double>(s.allocated));
    o.Set("reserved", static_cast<double>(s.reserved));
    o.Set("peakAllocated", static_cast<double>(s.peak_allocated));
    o.Set("peakReserved", static_cast<double>(s.peak_reserved));
    o.Set("allocRetries", static_cast<double>(s.alloc_retries));
    o.Set("ooms", static_cast<double>(s.ooms));
    return o;
  });
}

Napi::Value CudaEmptyCacheJs(const Napi::CallbackInfo& info) {
  guard(info.Env(), [] { cuda_empty_cache(); });
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Debian's libtorch starts with one intra-op thread; default to every core, once per process.
  static std::once_flag threads_set;
  std::call_once(threads_set,
                 [] { set_intra_op_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))); });
  // Reuse freed CPU blocks instead of giving them back to the kernel each iteration (device/cpu_allocator.h).
  // RESNET_TORCH_CPU_CACHE_MB sets the bound (default 4096; 0 turns the cache off).
  const char* cache_mb = std::getenv("RESNET_TORCH_CPU_CACHE_MB");
  install_caching_cpu_allocator(static_cast<std::size_t>(cache_mb ? std::strtoull(cache_mb, nullptr, 10) : 4096) << 20);
  // oneDNN off where it would crash (device/runtime.h); RESNET_TORCH_ONEDNN=0 or 1 decides instead.
  static std::once_flag onednn_decided;
  std::call_once(onednn_decided, [] { decide_onednn(std::getenv("RESNET_TORCH_ONEDNN")); });

  auto* data = new AddonData();
  env.SetInstanceData(data);
  Napi::Function model = ModelWrap::Define(env);
  data->model_class = Napi::Persistent(model);
  exports.Set("Model", model);
  Napi::Function dataset = DatasetWrap::Define(env);
  data->dataset_class = Napi::Persistent(dataset);
  Napi::Function run = TrainingRunWrap::Define(env);
  data->run_class = Napi::Persistent(run);
  Napi::Function queue = BatchQueueWrap::Define(env);
  data->queue_class = Napi::Persistent(queue);
  exports.Set("BatchQueue", queue);
  Napi::Function fused = FusedWrap::Define(env);
  data->fused_class = Napi::Persistent(fused);
  exports.Set("fuse", Napi::Function::New(env, FusedWrap::FuseAsync, "fuse"));
  exports.Set("cudaMemoryStats", Napi::Function::New(env, CudaMemoryStatsJs, "cudaMemoryStats"));
  exports.Set("cudaEmptyCache", Napi::Function::New(env, CudaEmptyCacheJs, "cudaEmptyCache"));
  exports.Set("createDataset", Napi::Function::New(env, DatasetWrap::CreateAsync, "createDataset"));
  exports.Set("startTraining", Napi::Function::New(env, TrainingRunWrap::Start, "startTraining"));
  exports.Set("createModel", Napi::Function::New(env, ModelWrap::CreateAsync, "createModel"));
  exports.Set(
      "trainConfigFields",
      Napi::Function::New(
          env, [](const Napi::CallbackInfo& info) { return train_config_fields(info.Env()); }, "trainConfigFields"));
  exports.Set("scheduleValues", Napi::Function::New(env, ScheduleValues, "scheduleValues"));
  exports.Set("importPth", Napi::Function::New(env, ImportPth, "importPth"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("checkDevice", Napi::Function::New(env, CheckDevice, "checkDevice"));
  return exports;
}

}  // namespace rt::js

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return rt::js::Init(env, exports); }

NODE_API_MODULE(resnet_torch, InitAddon)
