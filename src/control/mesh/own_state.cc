#include "control/mesh/own_state.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "control/config/config.h"
#include "control/mesh/remote_cluster.h"

namespace xdpmesh {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;

namespace {
constexpr const char* kIdPrefix = "cilium/state/identities/v1/id/";
constexpr const char* kValuePrefix = "cilium/state/identities/v1/value/";

std::optional<uint32_t> parse_id(const std::string& s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const unsigned long long v = std::stoull(s);
  if (v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::string now_rfc3339() {
  return cilium::format_rfc3339(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}
}  // namespace

// Parameters by value: a coroutine must not hold references to its caller's temporaries.
awaitable<uint32_t> allocate_identity(etcd::Client& etcd, std::string labels, uint32_t cluster_id,
                                      std::string node_suffix, int64_t lease) {
  const std::string value_prefix = kValuePrefix + labels + "/";
  const std::string my_value_key = value_prefix + node_suffix;
  const uint32_t lo = cilium::identity_min(cluster_id), hi = cilium::identity_max(cluster_id);
  for (int attempt = 0; attempt < 32; ++attempt) {
    // 1. Already allocated by someone (us included): use it and add our reference.
    etcd::RangeResult in_use = co_await etcd.range(value_prefix, etcd::prefix_range_end(value_prefix), 1);
    if (!in_use.kvs.empty()) {
      auto id = parse_id(in_use.kvs.front().value);
      if (!id || *id < lo || *id > hi)
        throw std::runtime_error(fmt::format("{} holds \"{}\", not an ID of cluster {}'s range", in_use.kvs.front().key,
                                             in_use.kvs.front().value, cluster_id));
      // Adopt it only while the ID still carries these labels (it may have
      // been collected and reused in between).
      etcd::Txn adopt;
      etcd::Compare same_labels;
      same_labels.key = kIdPrefix + std::to_string(*id);
      same_labels.target = etcd::Compare::Target::value;
      same_labels.value = labels;
      adopt.compare.push_back(same_labels);
      etcd::TxnOp put_value;
      put_value.key = my_value_key;
      put_value.value = std::to_string(*id);
      put_value.lease = lease;
      adopt.success.push_back(put_value);
      if ((co_await etcd.txn(adopt)).succeeded) co_return *id;
      continue;
    }
    // 2. An ID whose labels match but whose value keys all expired: reuse it.
    etcd::RangeResult ids = co_await etcd.list(kIdPrefix);
    std::set<uint32_t> taken;
    std::optional<uint32_t> same;
    for (const etcd::KeyValue& kv : ids.kvs) {
      auto id = parse_id(kv.key.substr(std::string(kIdPrefix).size()));
      if (!id) continue;
      taken.insert(*id);
      if (kv.value == labels) same = *id;
    }
    uint32_t candidate = 0;
    if (same) {
      candidate = *same;
    } else {
      // Lowest free ID of our range: concurrent allocators collide on it and
      // the transaction below lets exactly one win.
      for (uint32_t id = lo; id <= hi && !candidate; ++id)
        if (!taken.count(id)) candidate = id;
      if (!candidate) throw std::runtime_error(fmt::format("cluster {}'s identity range {}..{} is full", cluster_id, lo, hi));
    }
    etcd::Txn t;
    const std::string id_key = kIdPrefix + std::to_string(candidate);
    etcd::Compare no_value;  // nobody holds a value key for these labels
    no_value.key = value_prefix;
    no_value.range_end = etcd::prefix_range_end(value_prefix);
    no_value.target = etcd::Compare::Target::create;
    no_value.number = 0;
    t.compare.push_back(no_value);
    etcd::Compare id_cmp;
    id_cmp.key = id_key;
    if (same) {  // the ID exists and must still carry our labels
      id_cmp.target = etcd::Compare::Target::value;
      id_cmp.value = labels;
    } else {  // the ID must not exist yet
      id_cmp.target = etcd::Compare::Target::create;
      id_cmp.number = 0;
    }
    t.compare.push_back(id_cmp);
    etcd::TxnOp put_id;
    put_id.key = id_key;
    put_id.value = labels;
    etcd::TxnOp put_value;
    put_value.key = my_value_key;
    put_value.value = std::to_string(candidate);
    put_value.lease = lease;
    if (!same) t.success.push_back(put_id);  // ID keys carry no lease (Cilium's operator collects them)
    t.success.push_back(put_value);
    etcd::TxnResult r = co_await etcd.txn(t);
    if (r.succeeded) co_return candidate;
    // Lost a race: the next round sees the winner's keys.
  }
  throw std::runtime_error("identity allocation kept losing races (32 attempts)");
}

OwnState::OwnState(asio::io_context& io, etcd::ClientConfig etcd, OwnStateOptions opts, std::vector<OwnEndpoint> eps,
                   std::function<void(std::size_t, uint32_t)> identity_assigned)
    : io_(io),
      etcd_cfg_(std::move(etcd)),
      opts_(std::move(opts)),
      eps_(std::move(eps)),
      identity_assigned_(std::move(identity_assigned)),
      backoff_(opts_.backoff_initial, opts_.backoff_max),
      timer_(io) {}

void OwnState::start() {
  auto self = shared_from_this();
  asio::co_spawn(io_, run(), [self](std::exception_ptr) {});
}

void OwnState::stop() {
  stopped_ = true;
  timer_.cancel();
  if (client_) client_->close();
}

awaitable<void> OwnState::run() {
  auto self = shared_from_this();
  while (!stopped_) {
    ++sessions_;
    try {
      if (!client_) client_ = std::make_shared<etcd::Client>(io_, etcd_cfg_);
      auto c = client_;
      co_await publish_all(c);
      connected_ = true;
      published_ = true;
      backoff_.reset();
      co_await keep_alive(c);
    } catch (const std::exception& e) {
      if (stopped_) break;
      last_failure_ = e.what();
      spdlog::warn("own etcd ({}): {}", etcd_cfg_.endpoints.empty() ? "" : etcd_cfg_.endpoints.front(), e.what());
    }
    connected_ = false;
    if (client_) client_->cancel_all();
    timer_.expires_after(backoff_.next());
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

awaitable<void> OwnState::publish_all(std::shared_ptr<etcd::Client> c) {
  // Cluster config: created once by whichever node comes first; a different
  // ID under our cluster's name is a misconfiguration we refuse to paper over.
  const std::string cc_key = MeshPaths::cluster_config_key(opts_.cluster);
  cilium::ClusterConfig cc;
  cc.id = opts_.cluster_id;
  cc.synced_canaries = true;
  cc.max_connected_clusters = cilium::kClusterIdMax;
  {
    etcd::Txn t;
    etcd::Compare absent;
    absent.key = cc_key;
    t.compare.push_back(absent);
    etcd::TxnOp put;
    put.key = cc_key;
    put.value = cilium::encode_cluster_config(cc);
    t.success.push_back(put);
    etcd::TxnOp get;
    get.kind = etcd::TxnOp::Kind::range;
    get.key = cc_key;
    t.failure.push_back(get);
    etcd::TxnResult r = co_await c->txn(t);
    if (!r.succeeded && !r.ranges.empty() && !r.ranges.front().empty()) {
      auto existing = cilium::decode_cluster_config(r.ranges.front().front().value);
      if (existing && existing.value->id != opts_.cluster_id)
        throw std::runtime_error(fmt::format("{} says cluster ID {}, our config says {}: one of them is wrong",
                                             cc_key, existing.value->id, opts_.cluster_id));
    }
  }
  lease_ = co_await c->lease_grant(opts_.lease_ttl_seconds);

  // Identities first: ipcache entries name them.
  // Value keys end in the node's IP, as Cilium's GetNodeSuffix.
  const std::string suffix = format_ip4(opts_.node_ip);
  for (std::size_t i = 0; i < eps_.size(); ++i) {
    OwnEndpoint& e = eps_[i];
    const std::string labels = cilium::format_labels_for_kvstore(e.labels);
    if (e.identity == 0 || e.allocated) {
      // Every session: the value key that holds our reference lives on this
      // session's lease; the same labels give the same ID back.
      const uint32_t before = e.identity;
      e.identity = co_await allocate_identity(*c, labels, opts_.cluster_id, suffix, lease_);
      e.allocated = true;
      if (before != e.identity) spdlog::info("identity {} allocated for {}", e.identity, labels);
    } else if (!e.labels.empty()) {
      // A configured identity is published too, so that peers learn its
      // labels; one that already names other labels is a conflict we refuse.
      const std::string id_key = kIdPrefix + std::to_string(e.identity);
      etcd::Txn t;
      etcd::Compare absent;
      absent.key = id_key;
      t.compare.push_back(absent);
      etcd::TxnOp put;
      put.key = id_key;
      put.value = labels;
      t.success.push_back(put);
      etcd::TxnOp get;
      get.kind = etcd::TxnOp::Kind::range;
      get.key = id_key;
      t.failure.push_back(get);
      etcd::TxnResult r = co_await c->txn(t);
      if (!r.succeeded && !r.ranges.empty() && !r.ranges.front().empty() && r.ranges.front().front().value != labels)
        throw std::runtime_error(fmt::format(
            "configured identity {} is already allocated in etcd to other labels ({}); ours are {}: remove "
            "identity from the config to allocate one",
            e.identity, r.ranges.front().front().value, labels));
      co_await c->put(kValuePrefix + labels + "/" + suffix, std::to_string(e.identity), lease_);
    }
    if (identity_assigned_) identity_assigned_(i, e.identity);
  }

  cilium::NodeRecord n;
  n.name = opts_.node;
  n.cluster = opts_.cluster;
  cilium::NodeAddress internal;
  internal.type = "InternalIP";
  internal.ip = suffix;
  n.addresses.push_back(internal);
  if (opts_.router_ip) {
    cilium::NodeAddress router;
    router.type = "CiliumInternalIP";
    router.ip = format_ip4(*opts_.router_ip);
    n.addresses.push_back(router);
  }
  for (const IpcachePrefix& p : opts_.pod_cidrs) {
    if (!p.v6) {
      if (!n.ipv4_alloc_cidr) n.ipv4_alloc_cidr = p;
      else n.ipv4_secondary_alloc_cidrs.push_back(p);
    } else {
      if (!n.ipv6_alloc_cidr) n.ipv6_alloc_cidr = p;
      else n.ipv6_secondary_alloc_cidrs.push_back(p);
    }
  }
  n.cluster_id = opts_.cluster_id;
  n.source = "local";
  n.boot_id = opts_.boot_id;
  n.encryption_key = opts_.encryption_key;
  if (!opts_.wireguard_pub_key.empty()) {
    n.wireguard_pub_key = opts_.wireguard_pub_key;
    n.annotations["network.cilium.io/wg-pub-key"] = opts_.wireguard_pub_key;
  }
  co_await c->put("cilium/state/nodes/v1/" + opts_.cluster + "/" + opts_.node, cilium::encode_node(n), lease_);

  for (const OwnEndpoint& e : eps_)
    for (const IpcachePrefix& ip : e.ips) {
      cilium::IpIdentityPair p;
      p.prefix = ip;
      p.host_ip = n.addresses.front().ip;
      p.id = e.identity;
      p.k8s_namespace = e.namespace_;
      p.k8s_pod_name = e.pod_name;
      co_await c->put("cilium/state/ip/v1/default/" + cilium::prefix_string(ip), cilium::encode_ip_identity_pair(p),
                      lease_);
    }
  for (const cilium::ClusterService& svc : opts_.services)
    co_await c->put("cilium/state/services/v1/" + opts_.cluster + "/" + svc.namespace_ + "/" + svc.name,
                    cilium::encode_cluster_service(svc), lease_);
  // Canaries last: readers that wait for them then see complete prefixes.
  for (MeshPrefix p : kMeshPrefixes)
    co_await c->put(MeshPaths::canary_key(p, opts_.cluster, false), now_rfc3339());
  co_await c->put(MeshPaths::kHeartbeat, now_rfc3339());
  ++heartbeats_;
  spdlog::info("published node {}/{} and {} endpoint(s) to our cluster's etcd (lease {:x})", opts_.cluster,
               opts_.node, eps_.size(), lease_);
}

awaitable<void> OwnState::keep_alive(std::shared_ptr<etcd::Client> c) {
  // Keep-alive at a third of the TTL (as etcd's clients), heartbeat on its own period.
  const auto ka_period = std::chrono::milliseconds(opts_.lease_ttl_seconds * 1000 / 3);
  auto next_ka = std::chrono::steady_clock::now() + ka_period;
  auto next_hb = std::chrono::steady_clock::now() + opts_.heartbeat_interval;
  while (!stopped_) {
    timer_.expires_at(std::min(next_ka, next_hb));
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_) co_return;
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_ka) {
      if (co_await c->lease_keepalive(lease_) <= 0)
        throw std::runtime_error(fmt::format("lease {:x} expired: publishing again", lease_));
      next_ka = now + ka_period;
    }
    if (now >= next_hb) {
      co_await c->put(MeshPaths::kHeartbeat, now_rfc3339());
      ++heartbeats_;
      next_hb = now + opts_.heartbeat_interval;
    }
  }
}

json::object OwnState::status() const {
  json::array ids;
  for (const OwnEndpoint& e : eps_) ids.push_back(json::value(e.identity));
  return json::object{{"cluster", opts_.cluster},
                      {"cluster-id", opts_.cluster_id},
                      {"connected", connected_},
                      {"published", published_},
                      {"lease", fmt::format("{:x}", lease_)},
                      {"endpoints", eps_.size()},
                      {"identities", ids},
                      {"heartbeats-written", heartbeats_},
                      {"sessions", sessions_},
                      {"last-failure", last_failure_}};
}

}  // namespace xdpmesh
