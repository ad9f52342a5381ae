// Builds the workers' Snapshot from the mesh state, the local endpoints and
// what the kernel told us (interfaces, MTU, neighbors).
// Threading: control thread only.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "control/config/config.h"
#include "control/model/mesh_state.h"
#include "dataplane/tables/snapshot.h"

namespace xdpmesh {

struct NodeFacts {
  Ip4 node_ip;
  MacAddr uplink_mac{};
  uint32_t uplink_mtu = 1500;
  std::vector<PortInfo> ports;                // [0] uplink, then the pod interfaces in config order
  std::map<uint32_t, MacAddr> next_hop_macs;  // tunnel endpoint (be) -> resolved next-hop MAC
};

// Largest inner L3 packet that fits the uplink after VXLAN/Geneve over IPv4.
inline uint32_t inner_mtu_for(uint32_t uplink_mtu) { return uplink_mtu - 50; }

std::unique_ptr<Snapshot> build_snapshot(uint64_t version, const Config& cfg, const MeshState& mesh,
                                         const NodeFacts& facts);

// Fills the prebuilt outer headers of one tunnel (exposed for tests).
void build_tunnel_header(Tunnel& t, TunnelMode mode, uint16_t port, Ip4 local_ip, const MacAddr& local_mac,
                         Ip4 remote_ip, const MacAddr* next_hop_mac);

}  // namespace xdpmesh
