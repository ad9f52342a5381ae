// What the control thread knows about the mesh: remote nodes and ipcache
// entries (from static config now, from etcd later) and local endpoints.
// Threading: control thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "control/config/config.h"

namespace xdpmesh {

inline constexpr uint32_t kIdentityWorld = 2;

struct RemoteNode {
  std::string cluster;
  std::string name;
  Ip4 ip;
  std::optional<MacAddr> inner_dst_mac;
};

struct IpcacheValue {
  uint32_t identity = 0;
  std::optional<Ip4> tunnel_endpoint;  // the node that hosts the prefix
  std::string source;                  // "config", "api", ...
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

struct MeshState {
  std::map<std::string, RemoteNode> nodes;  // key: cluster/name
  std::map<IpcachePrefix, IpcacheValue> ipcache;

  // Fills nodes and ipcache from the static remote_nodes of the config.
  static MeshState from_config(const Config& c);
};

}  // namespace xdpmesh
