#include "binding/dataset_wrap.h"

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/convert.h"
#include "binding/model_wrap.h"
#include "binding/train_convert.h"
#include "train/metrics.h"

namespace rt::js {

Napi::Function DatasetWrap::Define(Napi::Env env) {
  return DefineClass(env, "Dataset",
                     {InstanceMethod<&DatasetWrap::Length>("length"), InstanceMethod<&DatasetWrap::Shape>("shape"),
                      InstanceMethod<&DatasetWrap::Dtype>("dtype"), InstanceMethod<&DatasetWrap::Subset>("subset"),
                      InstanceMethod<&DatasetWrap::Stats>("stats"), InstanceMethod<&DatasetWrap::LabelCounts>("labelCounts"),
                      InstanceMethod<&DatasetWrap::Slice>("slice"), InstanceMethod<&DatasetWrap::Evaluate>("evaluate")});
}

DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "Dataset objects come from createDataset()");
  data_ = *info[0].As<Napi::External<std::shared_ptr<const TensorDataset>>>().Data();
}

Napi::Value DatasetWrap::wrap(Napi::Env env, std::shared_ptr<const TensorDataset> data) {
  auto external = Napi::External<std::shared_ptr<const TensorDataset>>::New(
      env, new std::shared_ptr<const TensorDataset>(std::move(data)), [](Napi::Env, std::shared_ptr<const TensorDataset>* p) { delete p; });
  return AddonData::of(env).dataset_class.New({external});
}

bool DatasetWrap::is(const Napi::Value& value) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(AddonData::of(value.Env()).dataset_class.Value());
}

std::shared_ptr<const TensorDataset> DatasetWrap::unwrap(const Napi::Value& value) {
  if (!is(value)) throw Napi::TypeError::New(value.Env(), "expected a native Dataset");
  return Unwrap(value.As<Napi::Object>())->data_;
}

Napi::Value DatasetWrap::CreateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto shape = shape_from_js(info[1], "shape");
  if (shape.size() != 4) throw Napi::TypeError::New(env, "shape must be [N, C, H, W]");
  torch::Tensor images = view_of(info[0], shape, "images");
  torch::Tensor labels = view_of(info[2], {shape[0]}, "labels");
  const int64_t classes = info[3].As<Napi::Number>().Int64Value();
  return run_async<std::shared_ptr<const TensorDataset>>(
      env,
      [images, labels, classes] {
        // The one copy into native memory; the JS arrays can be dropped afterwards.
        return std::make_shared<const TensorDataset>(TensorDataset::make(images.clone(), labels.to(torch::kInt64).clone(), classes));
      },
      [](Napi::Env env, std::shared_ptr<const TensorDataset>& data) { return wrap(env, data); }, {info[0], info[2]});
}

Napi::Value DatasetWrap::Length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(data_->size()));
}

Napi::Value DatasetWrap::Shape(const Napi::CallbackInfo& info) { return shape_to_js(info.Env(), data_->images.sizes()); }

Napi::Value DatasetWrap::Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtype_name(data_->images.scalar_type()));
}

// subset(indices: Int32Array): Promise<Dataset>
Napi::Value DatasetWrap::Subset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  torch::Tensor indices = view_of(info[0], {static_cast<int64_t>(info[0].As<Napi::TypedArray>().ElementLength())}, "indices");
  auto data = data_;
  return run_async<std::shared_ptr<const TensorDataset>>(
      env, [data, indices] { return std::make_shared<const TensorDataset>(data->subset(indices)); },
      [](Napi::Env env, std::shared_ptr<const TensorDataset>& d) { return wrap(env, d); }, {info[0]});
}

Napi::Value DatasetWrap::Stats(const Napi::CallbackInfo& info) {
  auto data = data_;
  return run_async<DatasetStats>(
      info.Env(), [data] { return data->stats(); },
      [](Napi::Env env, DatasetStats& s) {
        Napi::Object out = Napi::Object::New(env);
        out.Set("meanImage", typed_array_of(env, s.mean_image));
        out.Set("channelMean", typed_array_of(env, s.channel_mean));
        out.Set("channelStd", typed_array_of(env, s.channel_std));
        return out;
      });
}

Napi::Value DatasetWrap::LabelCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&] { return typed_array_of(env, data_->label_counts()); });
}

// slice(start, count): { images, labels } copies of a range (for predictions and inspection)
Napi::Value DatasetWrap::Slice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t start = info[0].As<Napi::Number>().Int64Value(), count = info[1].As<Napi::Number>().Int64Value();
  if (start < 0 || count < 0 || start + count > data_->size()) throw Napi::RangeError::New(env, "slice out of range");
  Napi::Object out = Napi::Object::New(env);
  out.Set("images", typed_array_of(env, data_->images.narrow(0, start, count).clone()));
  out.Set("labels", typed_array_of(env, data_->labels.narrow(0, start, count).clone()));
  return out;
}

// evaluate(model, augment, batchSize, split): Promise<EvalMetrics>
Napi::Value DatasetWrap::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = ModelWrap::unwrap(info[0]);
  AugmentConfig augment = augment_from_js(info[1].As<Napi::Object>());
  const int64_t batch = info[2].As<Napi::Number>().Int64Value();
  const std::string split = info[3].As<Napi::String>().Utf8Value();
  auto data = data_;
  return run_async<EvalMetrics>(
      env,
      [model, data, augment, batch, split] {
        auto lock = model->acquire("evaluate");
        return evaluate(model->net(), data->to(model->device()), augment, batch, model->device(), split);
      },
      [](Napi::Env env, EvalMetrics& m) { return metrics_to_js(env, m); });
}

}  // namespace rt::js
