// The tables the workers forward with: one immutable, versioned value built by
// the control thread (control/config/snapshot_builder) and published through
// Published<Snapshot>. Threading: read-only after publish.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/core/net_headers.h"
#include "dataplane/crypto/crypto_tables.h"
#include "dataplane/tables/addr.h"
#include "dataplane/tables/flat_map.h"
#include "dataplane/tables/policy_table.h"
#include "dataplane/tables/service_table.h"
#include "dataplane/tables/sharded_prefix_table.h"
#include "dataplane/tables/tunnel_table.h"

namespace xdpmesh {

// native: no overlay, pod packets go to the node that hosts the destination
// as they are (Cilium's routing-mode=native); still encrypted when configured.
enum class TunnelMode : uint8_t { vxlan, geneve, native };
enum class PortRole : uint8_t { uplink, pod };

inline constexpr uint16_t kUplinkPort = 0;     // port index 0 is always the uplink
inline constexpr uint32_t kNoTunnel = UINT32_MAX;
// Reserved identities the engine itself uses (Cilium's numbering).
inline constexpr uint32_t kIdentityHostId = 1;
inline constexpr uint32_t kIdentityWorldId = 2;
inline constexpr uint32_t kIdentityRemoteNodeId = 6;

// A local endpoint (pod): where to deliver and what it is.
struct EndpointEntry {
  uint32_t identity = 0;
  uint16_t port = 0;  // index into Snapshot::ports
  uint8_t mac[6] = {};
};

// An ipcache value: the prefix's security identity and where it lives.
struct IpcacheEntry {
  uint32_t identity = 0;
  uint32_t tunnel = kNoTunnel;  // index into Snapshot::tunnels
};

struct PortInfo {
  uint8_t mac[6] = {};
  PortRole role = PortRole::pod;
  uint32_t ifindex = 0;
};

struct Snapshot {
  uint64_t version = 0;

  // Uplink / node facts.
  TunnelMode tunnel_mode = TunnelMode::vxlan;
  uint16_t tunnel_port_be = 0;   // port we listen on and send to, network order
  uint16_t other_port_be = 0;    // the other mode's default port (counted as wrong_tunnel_port)
  uint32_t node_ip_be = 0;
  Ip6 icmp6_source{};            // source of ICMPv6 errors toward pods
  uint32_t inner_mtu = 1450;     // largest inner L3 packet that fits the uplink

  std::vector<PortInfo> ports;   // [kUplinkPort] is the uplink

  FlatMap<Ip4, EndpointEntry> endpoints4;
  FlatMap<Ip6, EndpointEntry> endpoints6;
  ShardedPrefixTable<Ip4, IpcacheEntry> ipcache4;
  ShardedPrefixTable<Ip6, IpcacheEntry> ipcache6;
  TunnelTable tunnels;

  ServiceTable services;
  std::shared_ptr<const PolicyTable> policy;  // null: nothing enforced
  uint16_t snat_port_min = 32768, snat_port_max = 60999;  // gateway source ports (host order)
  // Source address of gateway flows to remote backends: an address of our pod
  // CIDR (the router IP, published as CiliumInternalIP) so that remote nodes
  // tunnel the replies back to us; 0 = node_ip_be.
  uint32_t snat_ip_be = 0;

  // Encryption toward other nodes; null: none configured.
  std::shared_ptr<const CryptoTables> crypto;
};

}  // namespace xdpmesh
