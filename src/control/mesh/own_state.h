// Publishes this node into its own cluster's etcd in Cilium's format, so that
// other clusters' agents (Cilium or xdpmesh) can reach it: the node record and
// the ipcache entries of local endpoints under one lease (kept alive; a lost
// lease republishes everything under a new one), identities for local label
// sets allocated inside the cluster's range with etcd transactions, the
// cluster-config, the sync canaries, and cilium/.heartbeat.
//
// Identity allocation: the labels' value keys
// (identities/v1/value/<labels>/<node>) name the ID in use; a new ID is
// claimed with one transaction that requires both that the ID key does not
// exist and that no value key for these labels exists, so two nodes
// allocating the same labels at once end with one ID.
// Threading: control thread.
#pragma once

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/etcd/backoff.h"
#include "control/etcd/etcd_client.h"
#include "control/model/cilium_records.h"

namespace xdpmesh {

struct OwnEndpoint {
  std::vector<IpcachePrefix> ips;  // host prefixes
  cilium::LabelSet labels;         // full Cilium label set, cluster label included
  uint32_t identity = 0;           // 0: allocate
  bool allocated = false;          // identity came from allocation (re-referenced each session)
  std::string namespace_, pod_name;
};

struct OwnStateOptions {
  std::string cluster;
  uint32_t cluster_id = 0;
  std::string node;
  Ip4 node_ip;
  std::vector<IpcachePrefix> pod_cidrs;  // v4 first, then v6
  std::string boot_id;
  int64_t lease_ttl_seconds = 900;
  std::chrono::milliseconds heartbeat_interval{60000};
  std::chrono::milliseconds backoff_initial{500}, backoff_max{30000};
  // Our global shared services with their local backends, as the
  // clustermesh-apiserver exports them (under the lease, like the rest).
  std::vector<cilium::ClusterService> services;
  // The node's router address in its pod CIDR (Cilium's cilium_host IP),
  // published as CiliumInternalIP: peers tunnel traffic for it to us.
  std::optional<Ip4> router_ip;
  // Encryption facts of the node record: WireguardPubKey (also as the
  // network.cilium.io/wg-pub-key annotation) and EncryptionKey.
  std::string wireguard_pub_key;
  uint8_t encryption_key = 0;
};

// Allocates (or finds) the identity of a label set in a cluster's etcd.
// Exposed for tests; throws etcd::Error or std::runtime_error.
boost::asio::awaitable<uint32_t> allocate_identity(etcd::Client& etcd, std::string labels_kvstore,
                                                   uint32_t cluster_id, std::string node_suffix,
                                                   int64_t lease);

class OwnState : public std::enable_shared_from_this<OwnState> {
 public:
  // identity_assigned(endpoint index, id) runs when an endpoint's identity is known.
  OwnState(boost::asio::io_context& io, etcd::ClientConfig etcd, OwnStateOptions opts, std::vector<OwnEndpoint> eps,
           std::function<void(std::size_t, uint32_t)> identity_assigned);
  void start();
  void stop();
  bool published() const { return published_; }
  boost::json::object status() const;

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> publish_all(std::shared_ptr<etcd::Client> c);
  boost::asio::awaitable<void> keep_alive(std::shared_ptr<etcd::Client> c);

  boost::asio::io_context& io_;
  etcd::ClientConfig etcd_cfg_;
  OwnStateOptions opts_;
  std::vector<OwnEndpoint> eps_;
  std::function<void(std::size_t, uint32_t)> identity_assigned_;
  std::shared_ptr<etcd::Client> client_;
  Backoff backoff_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  bool connected_ = false, published_ = false;
  int64_t lease_ = 0;
  uint64_t sessions_ = 0, heartbeats_ = 0;
  std::string last_failure_;
};

}  // namespace xdpmesh
