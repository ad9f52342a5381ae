// Builds the workers' Snapshot from the mesh state, the local endpoints and
// what the kernel told us (interfaces, MTU, neighbors).
// Threading: control thread only.
#pragma once

#include <map>
#include <unordered_map>
#include <memory>
#include <vector>

#include "control/config/config.h"
#include "control/model/mesh_state.h"
#include "control/publish/prefix_table_builder.h"
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

// Builds snapshots incrementally: the first build reads the whole mesh; later
// ones apply only the changes the mesh reports (MeshState::take_changes), so
// one changed entry rebuilds one ipcache shard and at most one tunnel chunk.
class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(const Config& cfg) : cfg_(cfg) {}

  // cfg's local endpoints are re-read on every build (they are few).
  std::unique_ptr<Snapshot> build(uint64_t version, const MeshState& mesh, const MeshState::Changes& changes,
                                  const NodeFacts& facts);

  struct Stats {
    std::size_t rebuilt_shards = 0, rebuilt_tunnel_chunks = 0, tunnels = 0;
  };
  const Stats& last_stats() const { return stats_; }
  // Remote IPs that have a tunnel now (network order).
  std::vector<uint32_t> tunnel_endpoints() const {
    std::vector<uint32_t> out;
    out.reserve(tunnel_by_ip_.size());
    for (const auto& [ip, idx] : tunnel_by_ip_) out.push_back(ip);
    return out;
  }

 private:
  uint32_t acquire_tunnel(Ip4 ip);
  void release_tunnel(uint32_t index);
  void apply_prefix(const IpcachePrefix& p, const IpcacheValue* v);
  void refresh_tunnel(uint32_t index, const NodeFacts& facts);

  const Config& cfg_;
  bool initialized_ = false;
  ShardedPrefixTableBuilder<Ip4, IpcacheEntry> ic4_;
  ShardedPrefixTableBuilder<Ip6, IpcacheEntry> ic6_;
  Ip4 node_ip_;

  struct TunnelSlot {
    uint32_t ip_be = 0;
    uint32_t refs = 0;
    Tunnel built;
  };
  std::unordered_map<uint32_t, uint32_t> tunnel_by_ip_;
  std::vector<TunnelSlot> tunnels_;
  std::vector<uint32_t> free_tunnels_;
  std::vector<std::shared_ptr<const TunnelTable::Chunk>> chunks_;
  std::vector<bool> dirty_chunks_;
  std::vector<uint32_t> node_tunnels_;  // refs the node set holds
  std::map<uint32_t, MacAddr> last_next_hops_;
  MacAddr last_uplink_mac_{};
  Stats stats_;
};

// One-shot build (tests, tools): a fresh builder over the whole mesh.
std::unique_ptr<Snapshot> build_snapshot(uint64_t version, const Config& cfg, const MeshState& mesh,
                                         const NodeFacts& facts);

// Fills the prebuilt outer headers of one tunnel (exposed for tests).
void build_tunnel_header(Tunnel& t, TunnelMode mode, uint16_t port, Ip4 local_ip, const MacAddr& local_mac,
                         Ip4 remote_ip, const MacAddr* next_hop_mac);

}  // namespace xdpmesh
