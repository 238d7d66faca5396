#include "binding/dataset_wrap.h"

#include "binding/addon_data.h"
#include "binding/args.h"
#include "binding/async.h"
#include "binding/convert.h"
#include "binding/model_wrap.h"
#include "binding/shared_object.h"
#include "binding/train_convert.h"
#include "common/error.h"
#include "data/augment.h"
#include "data/batch_source.h"
#include "train/metrics.h"

namespace rt::js {

Napi::Function DatasetWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "Dataset",
      {InstanceMethod<&DatasetWrap::Length>("length"), InstanceMethod<&DatasetWrap::Shape>("shape"),
       InstanceMethod<&DatasetWrap::Dtype>("dtype"), InstanceMethod<&DatasetWrap::Subset>("subset"),
       InstanceMethod<&DatasetWrap::Stats>("stats"), InstanceMethod<&DatasetWrap::LabelCounts>("labelCounts"),
       InstanceMethod<&DatasetWrap::Slice>("slice"), InstanceMethod<&DatasetWrap::Evaluate>("evaluate"),
       InstanceMethod<&DatasetWrap::EpochOrder>("epochOrder"), InstanceMethod<&DatasetWrap::Augment>("augment"),
       InstanceMethod<&DatasetWrap::Dispose>("dispose")});
}

DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  data_ = adopt_shared<const TensorDataset>(info, "Dataset objects come from createDataset()");
}

Napi::Value DatasetWrap::wrap(Napi::Env env, std::shared_ptr<const TensorDataset> data) {
  return wrap_shared(env, AddonData::of(env).dataset_class, std::move(data));
}

bool DatasetWrap::is(const Napi::Value& value) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(AddonData::of(value.Env()).dataset_class.Value());
}

std::shared_ptr<const TensorDataset> DatasetWrap::unwrap(const Napi::Value& value) {
  return unwrap_instance<DatasetWrap>(value, AddonData::of(value.Env()).dataset_class, "Dataset")->live(value.Env());
}

std::shared_ptr<const TensorDataset> DatasetWrap::live(Napi::Env env) const {
  if (!data_) throw to_js_error(env, Failure{"ERR_DISPOSED", "the dataset was disposed"});
  return data_;
}

// dispose(): drops this handle; a training or evaluation already running keeps its own reference.
Napi::Value DatasetWrap::Dispose(const Napi::CallbackInfo& info) {
  data_.reset();
  return info.Env().Undefined();
}

Napi::Value DatasetWrap::CreateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "createDataset(images, shape, labels, numClasses)");
  const auto shape = shape_from_js(info[1], "shape");
  if (shape.size() != 4) throw Napi::TypeError::New(env, "shape must be [N, C, H, W]");
  torch::Tensor images = view_of(info[0], shape, "images");
  torch::Tensor labels = view_of(info[2], {shape[0]}, "labels");
  const int64_t classes = args.integer(3, "numClasses");
  return run_async<std::shared_ptr<const TensorDataset>>(
      env,
      [images, labels, classes] {
        // The one copy into native memory; the JS arrays can be dropped afterwards.
        return std::make_shared<const TensorDataset>(
            TensorDataset::make(images.clone(), labels.to(torch::kInt64).clone(), classes));
      },
      [](Napi::Env env, std::shared_ptr<const TensorDataset>& data) { return wrap(env, data); }, {info[0], info[2]});
}

Napi::Value DatasetWrap::Length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(live(info.Env())->size()));
}

Napi::Value DatasetWrap::Shape(const Napi::CallbackInfo& info) {
  return shape_to_js(info.Env(), live(info.Env())->images.sizes());
}

Napi::Value DatasetWrap::Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtype_name(live(info.Env())->images.scalar_type()));
}

// subset(indices: Int32Array): Promise<Dataset>
Napi::Value DatasetWrap::Subset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto length = static_cast<int64_t>(Args(info, "subset(indices)").typed_array(0, "indices").ElementLength());
  torch::Tensor indices = view_of(info[0], {length}, "indices");
  auto data = live(info.Env());
  return run_async<std::shared_ptr<const TensorDataset>>(
      env, [data, indices] { return std::make_shared<const TensorDataset>(data->subset(indices)); },
      [](Napi::Env env, std::shared_ptr<const TensorDataset>& d) { return wrap(env, d); }, {info[0]});
}

Napi::Value DatasetWrap::Stats(const Napi::CallbackInfo& info) {
  auto data = live(info.Env());
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
  auto data = live(env);
  return guard(env, [&] { return typed_array_of(env, data->label_counts()); });
}

// slice(start, count): { images, labels } copies of a range (for predictions and inspection)
Napi::Value DatasetWrap::Slice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "slice(start, count)");
  const int64_t start = args.integer(0, "start"), count = args.integer(1, "count");
  auto data = live(env);
  if (start < 0 || count < 0 || start + count > data->size()) throw Napi::RangeError::New(env, "slice out of range");
  Napi::Object out = Napi::Object::New(env);
  out.Set("images", typed_array_of(env, data->images.narrow(0, start, count).clone()));
  out.Set("labels", typed_array_of(env, data->labels.narrow(0, start, count).clone()));
  return out;
}

// epochOrder(batchSize, shuffle, dropLast, seed, rank, worldSize, epoch, repeats = 1, repeatsRound = 0): BigInt64Array,
// the indices a training run draws in that epoch, in order (what the trainer's source does, for inspection and tests)
Napi::Value DatasetWrap::EpochOrder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "epochOrder(batchSize, shuffle, dropLast, seed, rank, worldSize, epoch)");
  const int64_t batch = args.integer(0, "batchSize");
  const bool shuffle = args.boolean(1, "shuffle"), drop_last = args.boolean(2, "dropLast");
  const auto seed = static_cast<uint64_t>(args.integer(3, "seed"));
  const int64_t rank = args.integer(4, "rank"), world = args.integer(5, "worldSize"), epoch = args.integer(6, "epoch");
  const int64_t repeats = info.Length() > 7 ? args.integer(7, "repeats") : 1;
  const int64_t repeats_round = info.Length() > 8 ? args.integer(8, "repeatsRound") : 0;
  auto data = live(env);
  return guard(env, [&] {
    InMemorySource source(*data, batch, shuffle, drop_last, seed, rank, world, repeats, repeats_round);
    auto order = source.epoch_order(epoch);
    const int64_t drawn = std::min(source.batches_per_epoch() * batch, order.size(0));
    return typed_array_of(env, order.narrow(0, 0, drawn).clone());
  });
}

// augment(start, count, augment, seed): Promise<{images, shape, ops, magnitudes, eraseBoxes}>: images
// start..start+count prepared as a training batch is (float32, normalised), with what each drew (a preview; the tests'
// reference).
Napi::Value DatasetWrap::Augment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "augment(start, count, augment, seed)");
  const int64_t start = args.integer(0, "start"), count = args.integer(1, "count");
  AugmentConfig augment = augment_from_js(Fields(args.object(2, "augment"), "augment"));
  const auto seed = static_cast<uint64_t>(args.integer(3, "seed"));
  auto data = live(env);
  struct Out {
    torch::Tensor images;
    AugmentDraws draws;
  };
  return run_async<Out>(
      env,
      [data, augment, start, count, seed] {
        if (start < 0 || count < 1 || start + count > data->size())
          throw Error("ERR_DATASET", "images " + std::to_string(start) + ".." + std::to_string(start + count) +
                                         " are outside the dataset's " + std::to_string(data->size()));
        Out out;
        out.images = prepare_train_batch(data->images.narrow(0, start, count), augment, seed, &out.draws)
                         .to(torch::kFloat32)
                         .contiguous();
        return out;
      },
      [](Napi::Env env, Out& out) {
        auto o = Napi::Object::New(env);
        o.Set("images", typed_array_of(env, out.images));
        auto shape = Napi::Array::New(env);
        for (int64_t d = 0; d < out.images.dim(); ++d) shape.Set(static_cast<uint32_t>(d), out.images.size(d));
        o.Set("shape", shape);
        const auto& a = out.draws.auto_augment;
        if (a.ops.defined()) {
          o.Set("ops", typed_array_of(env, a.ops.contiguous()));
          o.Set("magnitudes", typed_array_of(env, a.magnitudes.contiguous()));
          if (a.applied.defined()) o.Set("applied", typed_array_of(env, a.applied.to(torch::kUInt8).contiguous()));
          if (a.bicubic.defined()) o.Set("bicubic", typed_array_of(env, a.bicubic.to(torch::kUInt8).contiguous()));
          auto names = Napi::Array::New(env);
          for (size_t op = 0; op < a.names.size(); ++op) names.Set(static_cast<uint32_t>(op), a.names[op]);
          o.Set("opNames", names);
        }
        if (out.draws.erase_boxes.defined())
          o.Set("eraseBoxes", typed_array_of(env, out.draws.erase_boxes.contiguous()));
        return Napi::Value(o);
      });
}

// evaluate(model, augment, batchSize, split): Promise<EvalMetrics>
Napi::Value DatasetWrap::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "evaluate(model, augment, batchSize, split)");
  auto model = ModelWrap::unwrap(info[0]);
  AugmentConfig augment = augment_from_js(Fields(args.object(1, "augment"), "augment"));
  const int64_t batch = args.integer(2, "batchSize");
  const std::string split = args.string(3, "split");
  auto data = live(info.Env());
  return run_async<EvalMetrics>(
      env,
      [model, data, augment, batch, split] {
        auto lock = model->acquire("evaluate");
        return evaluate(model->net(), data->to(model->device()), augment, batch, model->device(), split);
      },
      [](Napi::Env env, EvalMetrics& m) { return metrics_to_js(env, m); });
}

}  // namespace rt::js
