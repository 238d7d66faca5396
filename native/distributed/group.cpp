#include "distributed/group.h"

#include "common/error.h"

#ifdef RESNET_WITH_C10D
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef RESNET_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>
#include <type_traits>
#endif

namespace rt {

#ifndef RESNET_WITH_C10D

bool c10d_available() { return false; }
bool nccl_available() { return false; }

struct DistGroup::Impl {};
DistGroup::DistGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DistGroup::~DistGroup() = default;
std::unique_ptr<DistGroup> DistGroup::join(const DistConfig&) {
  throw Error("ERR_DISTRIBUTED",
              "distributed training needs c10d with Gloo, which this build lacks: on Debian install libgloo-dev and "
              "rebuild (npm run build:native); info().distributed says what a build has");
}
int64_t DistGroup::rank() const { return 0; }
int64_t DistGroup::world_size() const { return 1; }
void DistGroup::broadcast(const std::vector<torch::Tensor>&) {}
void DistGroup::attach(const std::vector<torch::Tensor>&) {}
void DistGroup::before_forward() {}
void DistGroup::before_backward(bool) {}
void DistGroup::all_reduce_sum(torch::Tensor&) {}
void DistGroup::progress(int64_t) {}
std::string DistGroup::explain_failure(const std::string& what) { return what; }

#else

namespace {

// DistributedDataParallel's defaults: a small first bucket so that communication starts early in backward.
constexpr int64_t kBucketBytes = 25 * 1024 * 1024;
constexpr int64_t kFirstBucketBytes = 1024 * 1024;
constexpr size_t kBroadcastBytes = 250 * 1024 * 1024;

std::string serialise(const std::vector<std::pair<std::string, std::string> >& fingerprint) {
  std::ostringstream out;
  for (const auto& [key, value] : fingerprint) out << key << '\t' << value << '\n';
  return out.str();
}

std::vector<std::pair<std::string, std::string> > parse(const std::vector<uint8_t>& bytes) {
  std::vector<std::pair<std::string, std::string> > out;
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::string line;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    out.emplace_back(line.substr(0, tab), tab == std::string::npos ? "" : line.substr(tab + 1));
  }
  return out;
}

// The first key on which two fingerprints differ, or "" when they agree.
std::string first_difference(const std::vector<std::pair<std::string, std::string> >& a,
                             const std::vector<std::pair<std::string, std::string> >& b) {
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i >= a.size() || i >= b.size()) return i < a.size() ? a[i].first : b[i].first;
    if (a[i] != b[i]) return a[i].first;
  }
  return "";
}

std::string fingerprint_key(int64_t rank) { return "resnet-torch/fingerprint/" + std::to_string(rank); }
std::string checked_key(int64_t rank) { return "resnet-torch/checked/" + std::to_string(rank); }
std::string progress_key(int64_t rank) { return "resnet-torch/progress/" + std::to_string(rank); }
std::string heartbeat_key(int64_t rank) { return "resnet-torch/heartbeat/" + std::to_string(rank); }
// How often each rank says it is alive (from its own thread and store connection), for failure reports.
constexpr std::chrono::milliseconds kHeartbeat{500};

// c10's errors carry a C++ backtrace after their first line.
std::string cause(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

c10::intrusive_ptr<c10d::TCPStore> open_store(const std::string& host, c10d::TCPStoreOptions& options) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  // 2.4 on serve the store on libuv by default, and a libtorch built without it (Debian's) refuses that: then
  // the classic server, as USE_LIBUV=0 asks of PyTorch (both speak the same protocol to clients).
  const char* env = std::getenv("USE_LIBUV");
  if (env && std::string(env) == "0") options.useLibUV = false;
  try {
    return c10::make_intrusive<c10d::TCPStore>(host, options);
  } catch (const c10::Error& e) {
    if (!options.useLibUV || std::string(e.what()).find("libuv") == std::string::npos) throw;
    options.useLibUV = false;
  }
#endif
  return c10::make_intrusive<c10d::TCPStore>(host, options);
}

std::shared_ptr< ::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  const bool loopback = master_addr == "127.0.0.1" || master_addr == "localhost";
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  return interface  ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
         : loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                    : c10d::ProcessGroupGloo::createDefaultDevice();
}

// The process group for `c`: Gloo itself on libtorch 1.x. On 2.x a ProcessGroup dispatching to a Backend per
// device type, as init_process_group("cpu:gloo,cuda:nccl") builds it, each backend on its own store prefix.
c10::intrusive_ptr<c10d::ProcessGroup> make_group(const c10::intrusive_ptr<c10d::Store>& store, const DistConfig& c) {
  const auto timeout = std::chrono::milliseconds(c.timeout_ms);
  const int rank = static_cast<int>(c.rank), world = static_cast<int>(c.world_size);
  auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
  gloo_options->devices.push_back(gloo_device(c.master_addr));
#if TORCH_VERSION_MAJOR < 2
  if (c.backend != DistBackend::Gloo) throw Error("ERR_DISTRIBUTED", "NCCL needs libtorch 2.x built with it");
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, gloo_options);
#else
  using Type = c10d::ProcessGroup::BackendType;
  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, rank, world);
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo/", store), rank,
                                                          world, gloo_options);
  group->setBackend(c10::DeviceType::CPU, Type::GLOO, gloo);
  group->setDefaultBackend(Type::GLOO);
  if (c.backend == DistBackend::Gloo) {
    group->setBackend(c10::DeviceType::CUDA, Type::GLOO, gloo);  // Gloo reduces CUDA tensors too, through host
    return group;
  }
#ifdef RESNET_WITH_NCCL
  auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
  nccl_options->timeout = timeout;
  auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl/", store), rank,
                                                          world, nccl_options);
  group->setBackend(c10::DeviceType::CUDA, Type::NCCL, nccl);
  group->setDefaultBackend(Type::NCCL);
  return group;
#else
  throw Error("ERR_DISTRIBUTED", "this build has no NCCL: build against a CUDA libtorch 2.x that has it");
#endif
#endif
}

}  // namespace

bool c10d_available() { return true; }

bool nccl_available() {
#ifdef RESNET_WITH_NCCL
  return true;
#else
  return false;
#endif
}

struct DistGroup::Impl {
  int64_t rank = 0, world = 1;
  int64_t timeout_ms = 0;
  std::thread heartbeat;
  std::mutex mutex;
  std::condition_variable stop_beating;
  bool stopping = false;
  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    stop_beating.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
  }
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::unique_ptr<c10d::Reducer> reducer;
};

DistGroup::DistGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DistGroup::~DistGroup() = default;

std::unique_ptr<DistGroup> DistGroup::join(const DistConfig& c) {
  auto impl = std::make_unique<Impl>();
  impl->rank = c.rank;
  impl->world = c.world_size;
  impl->timeout_ms = c.timeout_ms;
  const auto timeout = std::chrono::milliseconds(c.timeout_ms);
  const std::string where = c.master_addr + ":" + std::to_string(c.master_port);
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(c.master_port);
  // Rank 0 serves the store, unless torchrun's agent already does (every rank its client, as PyTorch's workers).
  store_options.isServer = c.rank == 0 && !c.agent_store;
  store_options.numWorkers = static_cast<std::size_t>(c.world_size);
  store_options.waitWorkers = false;  // the fingerprint exchange below waits, naming who is missing
  store_options.timeout = timeout;
  const auto scoped = [&c](c10::intrusive_ptr<c10d::TCPStore> store) -> c10::intrusive_ptr<c10d::Store> {
    if (c.store_prefix.empty()) return store;
    return c10::make_intrusive<c10d::PrefixStore>(c.store_prefix, store);
  };
  try {
    impl->store = scoped(open_store(c.master_addr, store_options));
  } catch (const std::exception& e) {
    throw Error("ERR_DISTRIBUTED",
                store_options.isServer
                    ? "rank 0 cannot serve the rendezvous on " + where + ": " + cause(e)
                    : "rank " + std::to_string(c.rank) + " cannot reach the rendezvous at " + where +
                          (c.agent_store ? " (served by torchrun's agent)"
                                         : " (is rank 0 running, and MASTER_ADDR/MASTER_PORT right?)") +
                          ": " + cause(e));
  }
  // Every rank publishes what must agree; rank 0 checks everyone, everyone checks rank 0: a mismatch stops all.
  const std::string mine = serialise(c.fingerprint);
  impl->store->set(fingerprint_key(c.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
  auto fetch = [&](int64_t r) {
    try {
      impl->store->wait({fingerprint_key(r)}, timeout);
    } catch (const std::exception&) {
      throw Error("ERR_DISTRIBUTED", "rank " + std::to_string(r) + " did not join within " +
                                         std::to_string(c.timeout_ms / 1000) + " s (world size " +
                                         std::to_string(c.world_size) + ", rendezvous " + where + ")");
    }
    return parse(impl->store->get(fingerprint_key(r)));
  };
  const auto own = parse(std::vector<uint8_t>(mine.begin(), mine.end()));
  std::string mismatch;
  try {
    for (int64_t r = 0; r < c.world_size; ++r) {
      if (r == c.rank || (c.rank != 0 && r != 0)) continue;
      const std::string key = first_difference(fetch(r), own);
      if (!key.empty() && mismatch.empty())
        mismatch = "rank " + std::to_string(std::max(r, c.rank)) + " differs from rank 0 in its " + key +
                   ": every rank must run the same model, options and data";
    }
    // Rank 0 (the store's host) waits until every rank has compared, so that none loses the store mid-way.
    if (c.rank != 0)
      impl->store->set(checked_key(c.rank), std::vector<uint8_t>{1});
    else
      for (int64_t r = 1; r < c.world_size; ++r) impl->store->wait({checked_key(r)}, timeout);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("ERR_DISTRIBUTED", "the rendezvous at " + where + " ended before rank " + std::to_string(c.rank) +
                                       " had joined (see rank 0's error): " + cause(e));
  }
  if (!mismatch.empty()) throw Error("ERR_DISTRIBUTED", mismatch);
  impl->group = make_group(impl->store, c);
  // The heartbeat has its own connection to the store: the training thread's may be busy.
  c10d::TCPStoreOptions client_options = store_options;
  client_options.isServer = false;
  auto beat_store = scoped(open_store(c.master_addr, client_options));
  Impl* raw = impl.get();
  impl->heartbeat = std::thread([raw, beat_store] {
    std::unique_lock<std::mutex> lock(raw->mutex);
    for (int64_t beat = 0; !raw->stopping; ++beat) {
      try {
        const std::string text = std::to_string(beat);
        beat_store->set(heartbeat_key(raw->rank), std::vector<uint8_t>(text.begin(), text.end()));
      } catch (const std::exception&) {
        return;  // the store (rank 0) is gone: the training thread will find out and say so
      }
      raw->stop_beating.wait_for(lock, kHeartbeat, [raw] { return raw->stopping; });
    }
  });
  return std::unique_ptr<DistGroup>(new DistGroup(std::move(impl)));
}

int64_t DistGroup::rank() const { return impl_->rank; }

int64_t DistGroup::world_size() const { return impl_->world; }

void DistGroup::broadcast(const std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) return;
  c10d::broadcast_coalesced(impl_->group, tensors, kBroadcastBytes, 0);
}

namespace {

// c10d's Reducer as DDP builds it, on either constructor: up to 2.9 it takes each bucket's size limit after the
// buckets; later ones take the limits for rebuilding at the end (empty: the Reducer's own), and two more flags.
template <typename R = c10d::Reducer>
std::unique_ptr<R> make_reducer(const std::vector<torch::Tensor>& params, std::vector<std::vector<size_t> > buckets,
                                std::vector<size_t> limits, const c10::intrusive_ptr<c10d::ProcessGroup>& group) {
  std::unordered_map<size_t, std::string> names;
  std::vector<bool> sparse(params.size(), false);
  if constexpr (std::is_constructible_v<R, std::vector<torch::Tensor>, std::vector<std::vector<size_t> >,
                                        std::vector<size_t>, c10::intrusive_ptr<c10d::ProcessGroup>, std::vector<bool>,
                                        int64_t, bool, bool, std::unordered_map<size_t, std::string>, int64_t>) {
    return std::make_unique<R>(params, std::move(buckets), std::move(limits), group, sparse, kBucketBytes,
                               /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false, names,
                               kFirstBucketBytes);
  } else {
    return std::make_unique<R>(params, std::move(buckets), group, sparse, kBucketBytes,
                               /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false, names,
                               kFirstBucketBytes, /*skip_all_reduce_unused_params=*/false,
                               /*use_python_reducer=*/false, /*bucket_bytes_cap_list=*/std::vector<int64_t>{});
  }
}

}  // namespace

void DistGroup::attach(const std::vector<torch::Tensor>& params) {
  // DistributedDataParallel's bucketing: by size, then reversed, so that the last layers' gradients (ready first
  // in backward) are reduced first.
  auto [buckets, limits] = c10d::compute_bucket_assignment_by_size(
      params, {static_cast<size_t>(kFirstBucketBytes), static_cast<size_t>(kBucketBytes)});
  std::reverse(buckets.begin(), buckets.end());
  std::reverse(limits.begin(), limits.end());
  impl_->reducer = make_reducer(params, std::move(buckets), std::move(limits), impl_->group);
}

void DistGroup::before_forward() {
  if (!impl_->reducer) return;
  impl_->reducer->rebuild_buckets();  // once, after the first iteration recorded the order gradients come in
  impl_->reducer->prepare_for_forward();
}

void DistGroup::before_backward(bool sync) {
  // Without it the reducer's autograd hooks return at once and gradients add up in .grad; the next synced
  // backward copies those sums into its buckets, as DDP's no_sync() does.
  if (impl_->reducer && sync) impl_->reducer->prepare_for_backward({});
}

void DistGroup::all_reduce_sum(torch::Tensor& tensor) {
  std::vector<torch::Tensor> list{tensor};
  impl_->group->allreduce(list)->wait();
}

void DistGroup::progress(int64_t iteration) {
  const std::string text = std::to_string(iteration);
  impl_->store->set(progress_key(impl_->rank), std::vector<uint8_t>(text.begin(), text.end()));
}

std::string DistGroup::explain_failure(const std::string& what) {
  const std::string cause = what.substr(0, what.find('\n'));
  // A rank whose heartbeat stops advancing is gone (or hung); the store lives in rank 0, so if it cannot be read,
  // rank 0 is the one gone.
  auto read = [&](const std::string& key) -> int64_t {
    if (!impl_->store->check({key})) return -1;
    const auto bytes = impl_->store->get(key);
    return std::stoll(std::string(bytes.begin(), bytes.end()));
  };
  std::vector<int64_t> before(static_cast<size_t>(impl_->world)), after(before.size()), reached(before.size());
  try {
    for (int64_t r = 0; r < impl_->world; ++r) before[static_cast<size_t>(r)] = read(heartbeat_key(r));
    std::this_thread::sleep_for(3 * kHeartbeat);
    for (int64_t r = 0; r < impl_->world; ++r) {
      after[static_cast<size_t>(r)] = read(heartbeat_key(r));
      reached[static_cast<size_t>(r)] = read(progress_key(r));
    }
  } catch (const std::exception&) {
    return "rank 0 (which hosts the rendezvous) is gone: a collective with it failed (" + cause + ")";
  }
  std::string gone;
  for (int64_t r = 0; r < impl_->world; ++r)
    if (r != impl_->rank && after[static_cast<size_t>(r)] == before[static_cast<size_t>(r)])
      gone += (gone.empty() ? "" : ", ") + std::to_string(r) + " (last at iteration " +
              std::to_string(reached[static_cast<size_t>(r)]) + ")";
  return (gone.empty() ? std::string("a collective with the other ranks failed") : "rank " + gone + " is gone") + " (" +
         cause + ")";
}

#endif

}  // namespace rt
