#include "control/mesh/remote_cluster.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "control/mesh/list_limiter.h"

namespace xdpmesh {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using Clock = std::chrono::steady_clock;

const char* mesh_prefix_name(MeshPrefix p) {
  switch (p) {
    case MeshPrefix::nodes: return "nodes";
    case MeshPrefix::services: return "services";
    case MeshPrefix::identities: return "identities";
    case MeshPrefix::ipcache: return "endpoints";
  }
  return "?";
}

std::string MeshPaths::data_prefix(MeshPrefix p, const std::string& c, bool cached) {
  if (cached) {
    switch (p) {
      case MeshPrefix::nodes: return "cilium/cache/nodes/v1/" + c + "/";
      case MeshPrefix::services: return "cilium/cache/services/v1/" + c + "/";
      case MeshPrefix::identities: return "cilium/cache/identities/v1/" + c + "/id/";
      case MeshPrefix::ipcache: return "cilium/cache/ip/v1/" + c + "/";
    }
  }
  switch (p) {
    case MeshPrefix::nodes: return "cilium/state/nodes/v1/" + c + "/";
    case MeshPrefix::services: return "cilium/state/services/v1/" + c + "/";
    case MeshPrefix::identities: return "cilium/state/identities/v1/id/";
    case MeshPrefix::ipcache: return "cilium/state/ip/v1/default/";
  }
  return {};
}

std::string MeshPaths::canary_key(MeshPrefix p, const std::string& c, bool cached) {
  const std::string root = cached ? "cilium/cache/" : "cilium/state/";
  switch (p) {
    case MeshPrefix::nodes: return synced_prefix(c) + root + "nodes/v1";
    case MeshPrefix::services: return synced_prefix(c) + root + "services/v1";
    case MeshPrefix::identities: return synced_prefix(c) + root + "identities/v1";
    case MeshPrefix::ipcache: return synced_prefix(c) + root + "ip/v1";
  }
  return {};
}

ClusterIdRegistry::ClusterIdRegistry(std::string local_name, uint32_t local_id) {
  if (local_id) owners_[local_id] = std::move(local_name);
}

std::string ClusterIdRegistry::reserve(const std::string& cluster, uint32_t id) {
  auto [it, fresh] = owners_.try_emplace(id, cluster);
  if (fresh || it->second == cluster) return {};
  return fmt::format("cluster ID {} of cluster {} is already used by cluster {}; cluster IDs must be unique across "
                     "the mesh",
                     id, cluster, it->second);
}

void ClusterIdRegistry::release(const std::string& cluster) {
  std::erase_if(owners_, [&](const auto& kv) { return kv.second == cluster; });
}

struct RemoteCluster::Session {
  explicit Session(asio::io_context& io) : done(io), canary_signal(io) {
    done.expires_at(Clock::time_point::max());
    canary_signal.expires_at(Clock::time_point::max());
  }
  bool failed = false;
  std::string error;
  std::shared_ptr<etcd::Client> client;
  asio::steady_timer done;           // session() waits here until the session fails
  asio::steady_timer canary_signal;  // cancelled (never re-armed) to wake canary waiters
  std::set<std::string> canaries;
  std::vector<asio::steady_timer*> sleepers;
  bool cached = false;
  bool synced_canaries = false;

  void check() const {
    if (failed) throw etcd::Error(etcd::ErrorKind::transport, "session ended");
  }
};

RemoteCluster::RemoteCluster(asio::io_context& io, std::string name, etcd::ClientConfig etcd, RemoteClusterOptions opts,
                             std::unique_ptr<RemoteClusterSink> sink, ClusterIdRegistry& ids)
    : io_(io),
      name_(std::move(name)),
      opts_(opts),
      sink_(std::move(sink)),
      ids_(ids),
      backoff_timer_(io),
      failure_timer_(io),
      backoff_(opts.backoff_initial, opts.backoff_max) {
  etcd.request_timeout = std::min(etcd.request_timeout, opts_.status_check_interval * 2);
  try {
    client_ = std::make_shared<etcd::Client>(io_, etcd);
  } catch (const etcd::Error& e) {
    client_error_ = e.what();
  }
  pending_etcd_ = std::move(etcd);
}

RemoteCluster::~RemoteCluster() = default;

void RemoteCluster::start() {
  auto self = shared_from_this();
  asio::co_spawn(io_, run(), [self](std::exception_ptr) {});
}

void RemoteCluster::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (current_) fail(current_, "stopped");
  backoff_timer_.cancel();
  failure_timer_.cancel();
  if (client_) client_->close();
  ids_.release(name_);
}

void RemoteCluster::reconfigure(etcd::ClientConfig etcd) {
  etcd.request_timeout = std::min(etcd.request_timeout, opts_.status_check_interval * 2);
  pending_etcd_ = std::move(etcd);
  client_error_.clear();
  if (client_) client_->close();
  client_.reset();  // the next session builds a client from the new file
  if (current_) fail(current_, "config file changed");
  backoff_.reset();
  backoff_timer_.cancel();
}

void RemoteCluster::stop_and_drain() {
  stop();
  sink_->drain();
  for (auto& k : known_) k.clear();
  sink_->flush();
}

bool RemoteCluster::ready() const {
  return connected_ && config_ && std::all_of(synced_.begin(), synced_.end(), [](bool b) { return b; }) &&
         !heartbeat_stale_;
}

void RemoteCluster::fail(const std::shared_ptr<Session>& s, const std::string& why) {
  if (s->failed) return;
  s->failed = true;
  s->error = why;
  s->done.cancel();
  s->canary_signal.cancel();
  for (auto* t : s->sleepers) t->cancel();
  if (s->client) s->client->cancel_all();
  if (why == "stopped" || why == "config file changed") return;
  ++failures_;
  last_failure_ = why;
  last_failure_time_ = std::chrono::system_clock::now();
  spdlog::warn("clustermesh {}: {}", name_, why);
}

void RemoteCluster::spawn(std::shared_ptr<Session> s, awaitable<void> child) {
  auto self = shared_from_this();
  asio::co_spawn(io_, std::move(child), [self, s](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      self->fail(s, x.what());
    }
  });
}

void RemoteCluster::note_heartbeat(const std::string& value) {
  heartbeat_value_ = value;
  heartbeat_missing_ = false;
  last_heartbeat_ = Clock::now();
  heartbeat_stale_ = false;
  stale_checks_ = 0;
}

void RemoteCluster::arm_failure_timer() {
  if (opts_.failure_timeout.count() == 0 || services_revoked_) return;
  failure_timer_.expires_at(disconnected_since_ + opts_.failure_timeout);
  auto self = shared_from_this();
  failure_timer_.async_wait([self](boost::system::error_code ec) {
    if (ec || self->connected_ || self->stopped_ || self->services_revoked_) return;
    spdlog::warn("clustermesh {}: disconnected for more than {} s: revoking its services", self->name_,
                 self->opts_.failure_timeout.count() / 1000);
    self->services_revoked_ = true;
    self->sink_->revoke_services();
    self->known_[static_cast<int>(MeshPrefix::services)].clear();
    self->synced_[static_cast<int>(MeshPrefix::services)] = false;
    self->sink_->flush();
  });
}

awaitable<void> RemoteCluster::run() {
  auto self = shared_from_this();
  while (!stopped_) {
    auto s = std::make_shared<Session>(io_);
    current_ = s;
    ++sessions_;
    try {
      co_await session(s);
    } catch (const std::exception& e) {
      fail(s, e.what());
    }
    if (stopped_) break;
    // The failure timeout counts from the end of the last fully synced session.
    if (was_ready_) disconnected_since_ = Clock::now();
    was_ready_ = false;
    connected_ = false;
    arm_failure_timer();
    backoff_timer_.expires_after(backoff_.next());
    boost::system::error_code ec;
    co_await backoff_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

awaitable<void> RemoteCluster::session(std::shared_ptr<Session> s) {
  synced_ = {};
  heartbeat_stale_ = false;
  stale_checks_ = 0;
  if (!client_) {
    try {
      client_ = std::make_shared<etcd::Client>(io_, pending_etcd_);
      client_error_.clear();
    } catch (const etcd::Error& e) {
      client_error_ = e.what();
      throw;
    }
  }
  s->client = client_;
  // 1. Connected = the heartbeat key could be read (as Cilium).
  etcd::RangeResult hb = co_await s->client->range(MeshPaths::kHeartbeat);
  s->check();
  if (!connected_) spdlog::info("clustermesh {}: connected to {}", name_, s->client->config().endpoints.front());
  connected_ = true;
  // (Backoff and the failure timer reset only once the session is fully
  // synced: a session that fails after connecting must not retry at once.)
  note_heartbeat(hb.kvs.empty() ? std::string() : hb.kvs.front().value);
  heartbeat_missing_ = hb.kvs.empty();
  // Revisions of another etcd (a restarted, ephemeral one) say nothing about
  // our copies: keep the keys for the sweep but compare every value again.
  if (etcd_cluster_id_ && hb.cluster_id && hb.cluster_id != etcd_cluster_id_) {
    spdlog::warn("clustermesh {}: etcd cluster ID changed ({:x} -> {:x}): re-reading every entry", name_,
                 etcd_cluster_id_, hb.cluster_id);
    for (auto& k : known_)
      for (auto& [key, rev] : k) rev = -1;
  }
  if (hb.cluster_id) etcd_cluster_id_ = hb.cluster_id;
  int64_t meta_from = hb.revision;

  // 2. The cluster's configuration.
  etcd::RangeResult cr = co_await s->client->range(MeshPaths::cluster_config_key(name_));
  s->check();
  meta_from = std::min(meta_from, cr.revision);
  if (cr.kvs.empty())
    throw std::runtime_error(fmt::format("{} not found in the cluster's etcd: is the config file named after the "
                                         "remote cluster, and does its clustermesh-apiserver (or KVStoreMesh) run?",
                                         MeshPaths::cluster_config_key(name_)));
  auto decoded = cilium::decode_cluster_config(cr.kvs.front().value);
  if (!decoded) throw std::runtime_error(fmt::format("{}: {}", MeshPaths::cluster_config_key(name_), decoded.error));
  const cilium::ClusterConfig cc = *decoded.value;
  if (config_ && config_->cached != cc.cached)
    for (auto& k : known_)
      for (auto& [key, rev] : k) rev = -1;  // same keys, other revisions
  if (config_ && config_->id != cc.id) {
    spdlog::warn("clustermesh {}: cluster ID changed ({} -> {}): draining its entries", name_, config_->id, cc.id);
    sink_->drain();
    for (auto& k : known_) k.clear();
    sink_->flush();
    ids_.release(name_);
  }
  if (std::string err = ids_.reserve(name_, cc.id); !err.empty()) throw std::runtime_error(err);
  config_ = cc;
  sink_->on_config(cc);
  s->cached = cc.cached;
  s->synced_canaries = cc.synced_canaries;

  // 3. Sync canaries present now; later ones arrive through the meta watch.
  if (cc.synced_canaries) {
    etcd::RangeResult canaries = co_await s->client->list(MeshPaths::synced_prefix(name_));
    s->check();
    meta_from = std::min(meta_from, canaries.revision);
    for (const etcd::KeyValue& kv : canaries.kvs) s->canaries.insert(kv.key);
  }

  spawn(s, watch_meta(s, meta_from + 1));
  spawn(s, check_status(s));
  for (MeshPrefix p : kMeshPrefixes) spawn(s, sync_prefix(s, p));
  boost::system::error_code ec;
  co_await s->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  throw std::runtime_error(s->error);
}

awaitable<void> RemoteCluster::watch_meta(std::shared_ptr<Session> s, int64_t from_revision) {
  std::vector<etcd::WatchSpec> specs(2);
  specs[0].key = MeshPaths::kHeartbeat;
  specs[0].start_revision = from_revision;
  specs[1].key = MeshPaths::cluster_config_key(name_);
  specs[1].start_revision = from_revision;
  if (s->synced_canaries) {
    etcd::WatchSpec canaries;
    canaries.key = MeshPaths::synced_prefix(name_);
    canaries.range_end = etcd::prefix_range_end(canaries.key);
    canaries.start_revision = from_revision;
    specs.push_back(canaries);
  }
  const std::string config_key = MeshPaths::cluster_config_key(name_);
  // Lambdas inside coroutines capture no owning pointers: g++ 12 destroys
  // such captures twice when the frame is torn down. The frame keeps s alive.
  Session* sp = s.get();
  co_await s->client->watch(specs, [&, sp](etcd::WatchResponse& w) {
    Session* s = sp;
    s->check();
    if (w.canceled)
      throw std::runtime_error(fmt::format("meta watch canceled by etcd: {}", w.cancel_reason.empty()
                                                                                  ? "compacted"
                                                                                  : w.cancel_reason));
    for (const etcd::WatchEvent& e : w.events) {
      const bool put = e.type == etcd::WatchEvent::Type::put;
      if (e.kv.key == MeshPaths::kHeartbeat) {
        if (put) note_heartbeat(e.kv.value);
      } else if (e.kv.key == config_key) {
        if (!put) continue;  // clustermesh-apiserver rewrites it; keep what we have
        auto c = cilium::decode_cluster_config(e.kv.value);
        if (c && config_ && (c.value->id != config_->id || c.value->cached != config_->cached ||
                             c.value->synced_canaries != config_->synced_canaries))
          throw std::runtime_error("cluster-config changed: reconnecting");
      } else if (put) {
        if (s->canaries.insert(e.kv.key).second) s->canary_signal.cancel();
      } else {
        s->canaries.erase(e.kv.key);
      }
    }
  });
  throw std::runtime_error("meta watch ended");
}

// A wait that a failing session cuts short (fail() cancels every sleeper).
awaitable<void> RemoteCluster::sleep(std::shared_ptr<Session> s, std::chrono::milliseconds d) {
  asio::steady_timer t(io_);
  t.expires_after(d);
  s->sleepers.push_back(&t);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  std::erase(s->sleepers, &t);
  s->check();
}

awaitable<void> RemoteCluster::check_status(std::shared_ptr<Session> s) {
  for (;;) {
    co_await sleep(s, opts_.status_check_interval);
    etcd::RangeResult r = co_await s->client->range(MeshPaths::kHeartbeat);
    s->check();
    if (!r.kvs.empty() && r.kvs.front().value != heartbeat_value_) note_heartbeat(r.kvs.front().value);
    const auto age = Clock::now() - last_heartbeat_;
    heartbeat_stale_ = age > opts_.heartbeat_timeout;
    if (!heartbeat_stale_) {
      stale_checks_ = 0;
      continue;
    }
    // Cilium counts a stale heartbeat as a quorum error and reconnects on the third.
    if (++stale_checks_ >= 3 && heartbeat_missing_ && heartbeat_value_.empty())
      throw std::runtime_error(fmt::format(
          "cilium/.heartbeat does not exist in the cluster's etcd: nothing writes it (clustermesh-apiserver, "
          "or `xdpmeshd` with clustermesh.etcd, writes it every minute)"));
    if (stale_checks_ >= 3)
      throw std::runtime_error(fmt::format(
          "cilium/.heartbeat not updated for {} s (limit {} s): the cluster's etcd is not being written",
          std::chrono::duration_cast<std::chrono::seconds>(age).count(),
          std::chrono::duration_cast<std::chrono::seconds>(opts_.heartbeat_timeout).count()));
  }
}

awaitable<void> RemoteCluster::sync_prefix(std::shared_ptr<Session> s, MeshPrefix p) {
  const int idx = static_cast<int>(p);
  if (s->synced_canaries) {
    const std::string canary = MeshPaths::canary_key(p, name_, s->cached);
    while (!s->canaries.count(canary)) {
      boost::system::error_code ec;
      co_await s->canary_signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      s->check();
    }
  }
  const std::string prefix = MeshPaths::data_prefix(p, name_, s->cached);
  for (;;) {
    etcd::RangeResult r;
    try {
      std::optional<ListLimiter::Slot> slot;
      if (opts_.list_limiter) slot.emplace(co_await opts_.list_limiter->acquire());
      s->check();
      r = co_await s->client->list(prefix, opts_.page_size);
    } catch (const etcd::Error& e) {
      // Compacted between two pages: list this prefix again, not the session.
      if (e.kind() != etcd::ErrorKind::compacted || s->failed) throw;
      ++relists_after_compaction_;
      continue;
    }
    s->check();
    // Mark and sweep: what the sink holds but the list no longer has is gone.
    auto& known = known_[idx];
    std::unordered_map<std::string, int64_t> next;
    next.reserve(r.kvs.size());
    std::size_t n = 0;
    for (const etcd::KeyValue& kv : r.kvs) {
      std::string key = kv.key.substr(prefix.size());
      auto it = known.find(key);
      if (it == known.end() || it->second != kv.mod_revision) sink_->upsert(p, key, kv.value);
      next.emplace(std::move(key), kv.mod_revision);
      if (++n % 2000 == 0) {
        // A 250k-entry list must not hold the control thread: let other
        // clusters' events, the API and the publisher run in between.
        sink_->flush();
        co_await asio::post(io_, asio::use_awaitable);
        s->check();
      }
    }
    for (const auto& [key, rev] : known)
      if (!next.count(key)) sink_->erase(p, key);
    known.swap(next);
    synced_[idx] = true;
    sink_->on_synced(p);
    sink_->flush();
    if (ready()) {
      if (!was_ready_) spdlog::info("clustermesh {}: ready", name_);
      backoff_.reset();
      failure_timer_.cancel();
      services_revoked_ = false;
      was_ready_ = true;
    }

    if (opts_.delay_watch_after_list.count()) {
      co_await sleep(s, opts_.delay_watch_after_list);
    }
    // (No braced lists in coroutines: g++ 12 rejects them as "array used as initializer".)
    std::vector<etcd::WatchSpec> specs(1);
    specs[0].key = prefix;
    specs[0].range_end = etcd::prefix_range_end(prefix);
    specs[0].start_revision = r.revision + 1;
    try {
      Session* sp = s.get();  // no owning capture (see watch_meta)
      co_await s->client->watch(specs, [&, sp](etcd::WatchResponse& w) {
        Session* s = sp;
        s->check();
        if (w.canceled) {
          if (w.compact_revision)
            throw etcd::Error(etcd::ErrorKind::compacted,
                              fmt::format("watch of {} compacted at revision {}", prefix, w.compact_revision));
          throw std::runtime_error(fmt::format("watch of {} canceled by etcd: {}", prefix, w.cancel_reason));
        }
        for (const etcd::WatchEvent& e : w.events) {
          std::string key = e.kv.key.substr(std::min(prefix.size(), e.kv.key.size()));
          if (e.type == etcd::WatchEvent::Type::put) {
            known[key] = e.kv.mod_revision;
            sink_->upsert(p, key, e.kv.value);
          } else if (known.erase(key)) {
            sink_->erase(p, key);
          }
        }
        events_[idx] += w.events.size();
        if (!w.events.empty()) sink_->flush();
      });
    } catch (const etcd::Error& e) {
      if (e.kind() != etcd::ErrorKind::compacted || s->failed) throw;
      ++relists_after_compaction_;
      spdlog::info("clustermesh {}: {}; listing {} again", name_, e.what(), prefix);
      continue;
    }
    throw std::runtime_error(fmt::format("watch of {} ended", prefix));
  }
}

json::object RemoteCluster::status() const {
  json::object o;
  o["name"] = name_;
  o["ready"] = ready();
  o["connected"] = connected_;
  std::string st;
  if (!client_error_.empty())
    st = client_error_;
  else if (!connected_)
    st = last_failure_.empty() ? "connecting" : "disconnected: " + last_failure_;
  else if (!config_)
    st = "waiting for cluster-config";
  else if (heartbeat_stale_)
    st = "heartbeat stale";
  else
    st = ready() ? "ready" : "synchronizing";
  o["status"] = st;
  json::object cfg;
  cfg["retrieved"] = config_.has_value();
  cfg["cluster-id"] = config_ ? config_->id : 0;
  cfg["kvstoremesh"] = config_ && config_->cached;
  cfg["sync-canaries"] = config_ && config_->synced_canaries;
  o["config"] = cfg;
  json::object synced;
  for (MeshPrefix p : kMeshPrefixes) synced[mesh_prefix_name(p)] = synced_[static_cast<int>(p)];
  o["synced"] = synced;
  for (auto& [k, v] : sink_->counts()) o[k] = v;
  o["num-failures"] = failures_;
  o["reconnections"] = sessions_ > 0 ? sessions_ - 1 : 0;
  o["relists-after-compaction"] = relists_after_compaction_;
  o["last-failure"] = last_failure_;
  o["last-failure-time"] = last_failure_time_.time_since_epoch().count() == 0
                               ? std::string()
                               : cilium::format_rfc3339(std::chrono::duration_cast<std::chrono::seconds>(
                                                            last_failure_time_.time_since_epoch())
                                                            .count());
  o["heartbeat-age-seconds"] =
      connected_ || last_heartbeat_.time_since_epoch().count()
          ? std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - last_heartbeat_).count()
          : -1;
  o["services-revoked"] = services_revoked_;
  json::object ev;
  for (MeshPrefix p : kMeshPrefixes) ev[mesh_prefix_name(p)] = events_[static_cast<int>(p)];
  o["watch-events"] = ev;
  return o;
}

}  // namespace xdpmesh
