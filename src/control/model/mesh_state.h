// What the control thread knows about the mesh: remote nodes and ipcache
// entries (from static config now, from etcd later) and local endpoints.
// Threading: control thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "control/config/config.h"

namespace xdpmesh {

inline constexpr uint32_t kIdentityWorld = 2;

struct RemoteNode {
  std::string cluster;
  std::string name;
  Ip4 ip;  // tunnel endpoint; 0 when the node has no usable IPv4 address
  std::optional<MacAddr> inner_dst_mac;
  std::string source;  // "config" or the etcd record's Source
  std::vector<std::string> addresses;  // "InternalIP=10.0.0.1", for listing
  std::vector<std::string> pod_cidrs;  // for listing
  uint8_t encryption_key = 0;
  std::string wireguard_pub_key;
  std::string boot_id;
};

struct IpcacheValue {
  uint32_t identity = 0;
  std::optional<Ip4> tunnel_endpoint;  // the node that hosts the prefix
  std::string source;                  // "config", "api", "cluster-b", "cluster-b/node-1", ...
  uint8_t encrypt_key = 0;
};

// Who set an ipcache entry. Lower rank wins when several set the same prefix:
// the operator (api) over static config over what a cluster published for the
// IP over what a node record implies (pod CIDR fallbacks) over the CIDR
// identities policies create.
enum class IpcacheRank : uint8_t { api = 0, config = 1, cluster_ipcache = 2, cluster_node = 3, policy_cidr = 4 };
struct IpcacheOwner {
  IpcacheRank rank = IpcacheRank::config;
  std::string name;  // "" for api/config, the cluster name otherwise
  friend auto operator<=>(const IpcacheOwner&, const IpcacheOwner&) = default;
};

struct Identity {
  std::string cluster;
  std::vector<std::string> labels;
};

// A prefix of either family, ordered for deterministic listing.
struct IpcachePrefix {
  bool v6 = false;
  Ip6 addr;  // IPv4 kept in the first 4 bytes
  uint8_t len = 0;

  static IpcachePrefix v4(Ip4 a, uint8_t len);
  static IpcachePrefix v6_(const Ip6& a, uint8_t len);
  Ip4 as_ip4() const;
  std::string str() const;
  friend auto operator<=>(const IpcachePrefix& a, const IpcachePrefix& b) {
    return std::tie(a.v6, a.addr.bytes, a.len) <=> std::tie(b.v6, b.addr.bytes, b.len);
  }
  friend bool operator==(const IpcachePrefix&, const IpcachePrefix&) = default;
};

// Parses "10.1.2.0/24", "10.1.2.3", "fd00::/64"; host bits must be clear.
std::optional<IpcachePrefix> parse_ipcache_prefix(const std::string& s);

// The merged mesh: every owner's contributions, the winning ipcache value per
// prefix, and which prefixes changed since the publisher last looked.
class MeshState {
 public:
  // Fills nodes and ipcache from the static remote_nodes of the config.
  static MeshState from_config(const Config& c);

  void set_ipcache(const IpcachePrefix& p, const IpcacheOwner& owner, IpcacheValue v);
  // Returns false if that owner had no entry for p.
  bool erase_ipcache(const IpcachePrefix& p, const IpcacheOwner& owner);
  const IpcacheValue* find_ipcache(const IpcachePrefix& p) const;
  std::size_t ipcache_size() const { return ipcache_.size(); }
  template <typename F>
  void for_each_ipcache(F&& f) const {
    for (const auto& [p, c] : ipcache_) f(p, c.front().second);
  }

  void set_node(const std::string& key, RemoteNode n);
  void erase_node(const std::string& key);
  const std::map<std::string, RemoteNode>& nodes() const { return nodes_; }

  std::map<uint32_t, Identity> identities;

  // Changes since the last take_changes(): prefixes whose winning value
  // changed (or vanished), and whether the node set changed.
  struct Changes {
    std::vector<IpcachePrefix> prefixes;
    bool nodes = false;
  };
  Changes take_changes();

 private:
  using Contributions = std::vector<std::pair<IpcacheOwner, IpcacheValue>>;  // sorted, best first
  std::map<IpcachePrefix, Contributions> ipcache_;
  std::map<std::string, RemoteNode> nodes_;  // key: cluster/name
  std::vector<IpcachePrefix> dirty_;
  bool nodes_dirty_ = false;
};

}  // namespace xdpmesh
