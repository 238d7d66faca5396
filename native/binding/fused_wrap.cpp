#include "binding/fused_wrap.h"

#include <map>

#include "binding/addon_data.h"
#include "binding/args.h"
#include "binding/async.h"
#include "binding/convert.h"
#include "binding/model_wrap.h"
#include "binding/shared_object.h"

namespace rt::js {

namespace {

// `job` on the realm's compute thread where the net is on the CPU, else here.
void on_compute_thread(ComputeThread* compute, const std::function<void()>& job) {
  if (compute)
    compute->run(job);
  else
    job();
}

struct Built {
  std::shared_ptr<const FusedNet> net;
  torch::Device device{torch::kCPU};
  std::shared_ptr<ComputeThread> compute;  // CPU: this realm's (addon_data.h)
};

}  // namespace

Napi::Function FusedWrap::Define(Napi::Env env) {
  return DefineClass(env, "FusedModel",
                     {InstanceMethod<&FusedWrap::Forward>("forward"), InstanceMethod<&FusedWrap::Folded>("folded"),
                      InstanceMethod<&FusedWrap::Kernels>("kernels"), InstanceMethod<&FusedWrap::Profile>("profile")});
}

FusedWrap::FusedWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FusedWrap>(info) {
  auto built = adopt_shared<Built>(info, "FusedModel objects come from fuse()");
  net_ = built->net;
  device_ = built->device;
  compute_ = built->compute;
}

Napi::Value FusedWrap::FuseAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "fuse(model, height, width, channelsLast, onednn, precision, calibration?, shape?)");
  auto model = ModelWrap::unwrap(info[0]);
  const int64_t h = args.integer(1, "height"), w = args.integer(2, "width");
  const bool channels_last = args.boolean(3, "channelsLast"), onednn = args.boolean(4, "onednn");
  const std::string name = args.string(5, "precision");
  const std::map<std::string, InferencePrecision> precisions{{"float32", InferencePrecision::Float32},
                                                             {"bfloat16", InferencePrecision::BFloat16},
                                                             {"int8", InferencePrecision::Int8}};
  if (!precisions.count(name))
    throw Napi::TypeError::New(env, "fuse: precision must be float32, bfloat16 or int8, not " + name);
  const InferencePrecision precision = precisions.at(name);
  // int8's calibration images, copied: the work runs after this call returns.
  torch::Tensor calibration;
  if (info.Length() > 6 && !info[6].IsUndefined())
    calibration = view_of(info[6], shape_from_js(info[7], "shape"), "calibration").clone();
  return run_async<std::shared_ptr<Built>>(
      env,
      [model, h, w, channels_last, onednn, precision, calibration] {
        auto lock = model->acquire("fuse the model for inference");
        auto built = std::make_shared<Built>();
        built->net = FusedNet::build(*model->net(), h, w, channels_last, onednn, precision, calibration);
        built->device = model->device();
        return built;
      },
      [](Napi::Env env, std::shared_ptr<Built>& built) -> Napi::Value {
        // The compute thread's team is to be the realm's only one (device/compute_thread.h).
        if (built->device.is_cpu()) {
          auto& data = AddonData::of(env);
          if (!data.compute) data.compute = std::make_shared<ComputeThread>();
          built->compute = data.compute;
          release_idle_teams(env);
        }
        return wrap_shared(env, AddonData::of(env).fused_class, built);
      });
}

// forward(input: Float32Array, shape): Promise<{ data, shape }>
Napi::Value FusedWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto shape = shape_from_js(info[1], "shape");
  torch::Tensor input = view_of(info[0], shape, "input");
  auto net = net_;
  const auto device = device_;
  auto compute = compute_;
  return run_async<torch::Tensor>(
      env,
      [net, input, device, compute] {
        torch::Tensor out;
        on_compute_thread(compute.get(), [&] { out = net->forward(input.to(device, torch::kFloat32)); });
        return out.to(torch::kCPU).contiguous();
      },
      [](Napi::Env env, torch::Tensor& out) -> Napi::Value { return tensor_to_js(env, out); }, {info[0]});
}

// profile(input: Float32Array, shape): Promise<Array<{ layer, ms }>>
Napi::Value FusedWrap::Profile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto shape = shape_from_js(info[1], "shape");
  torch::Tensor input = view_of(info[0], shape, "input");
  auto net = net_;
  const auto device = device_;
  auto compute = compute_;
  using Rows = std::vector<std::pair<std::string, double>>;
  return run_async<Rows>(
      env,
      [net, input, device, compute] {
        Rows rows;
        on_compute_thread(compute.get(), [&] { rows = net->profile(input.to(device, torch::kFloat32)); });
        return rows;
      },
      [](Napi::Env env, Rows& rows) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, rows.size());
        for (size_t i = 0; i < rows.size(); ++i) {
          Napi::Object row = Napi::Object::New(env);
          row.Set("layer", rows[i].first);
          row.Set("ms", rows[i].second);
          out.Set(static_cast<uint32_t>(i), row);
        }
        return out;
      },
      {info[0]});
}

Napi::Value FusedWrap::Folded(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(net_->folded()));
}

// kernels(): { kernels: 'onednn' | 'aten', reason }
Napi::Value FusedWrap::Kernels(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("kernels", net_->kernels());
  out.Set("reason", net_->kernels_reason());
  return out;
}

}  // namespace rt::js
