#include "control/publish/snapshot_builder.h"

#include <cstring>

#include "dataplane/core/checksum.h"
#include "dataplane/core/net_headers.h"

namespace xdpmesh {

using namespace net;

void build_tunnel_header(Tunnel& t, TunnelMode mode, uint16_t port, Ip4 local_ip, const MacAddr& local_mac,
                         Ip4 remote_ip, const MacAddr* next_hop_mac) {
  std::memset(t.outer, 0, sizeof t.outer);
  auto* eth = reinterpret_cast<EthHdr*>(t.outer);
  if (next_hop_mac) std::memcpy(eth->dst, next_hop_mac->data(), 6);
  std::memcpy(eth->src, local_mac.data(), 6);
  eth->type = hton16(kEthIpv4);
  auto* ip = reinterpret_cast<Ipv4Hdr*>(t.outer + sizeof(EthHdr));
  // DF set: the engine never sends an outer packet above the uplink MTU and
  // answers oversize inner packets itself, so the outer needs no fragments.
  *ip = Ipv4Hdr{0x45, 0, 0, 0, hton16(kIpv4DontFragment), 64, kProtoUdp, 0, local_ip.be, remote_ip.be};
  t.ip_csum_base = csum::partial(ip, sizeof(Ipv4Hdr));
  auto* udp = reinterpret_cast<UdpHdr*>(t.outer + sizeof(EthHdr) + sizeof(Ipv4Hdr));
  udp->dest = hton16(port);
  udp->check = 0;  // IPv4 outer: zero UDP checksum, as Cilium (BPF_F_ZERO_CSUM_TX) and Linux vxlan
  uint8_t* th = t.outer + sizeof(EthHdr) + sizeof(Ipv4Hdr) + sizeof(UdpHdr);
  if (mode == TunnelMode::vxlan) {
    const uint32_t flags = hton32(kVxlanFlagI);
    std::memcpy(th, &flags, 4);
  } else {
    th[0] = 0;  // version 0, no options
    th[1] = 0;
    const uint16_t proto = hton16(kEthTeb);
    std::memcpy(th + 2, &proto, 2);
  }
  t.remote_ip_be = remote_ip.be;
  t.neighbor_resolved = next_hop_mac != nullptr;
}

uint32_t SnapshotBuilder::acquire_tunnel(Ip4 ip) {
  auto [it, fresh] = tunnel_by_ip_.try_emplace(ip.be, 0);
  if (fresh) {
    uint32_t idx;
    if (!free_tunnels_.empty()) {
      idx = free_tunnels_.back();
      free_tunnels_.pop_back();
    } else {
      idx = static_cast<uint32_t>(tunnels_.size());
      tunnels_.emplace_back();
    }
    it->second = idx;
    tunnels_[idx] = TunnelSlot{ip.be, 0, Tunnel{}};
    tunnels_[idx].built.remote_ip_be = 0;  // forces a build in refresh
  }
  ++tunnels_[it->second].refs;
  return it->second;
}

void SnapshotBuilder::release_tunnel(uint32_t index) {
  TunnelSlot& t = tunnels_.at(index);
  if (--t.refs) return;
  tunnel_by_ip_.erase(t.ip_be);
  t = TunnelSlot{};
  free_tunnels_.push_back(index);
  if (dirty_chunks_.size() <= (index >> kTunnelChunkBits)) dirty_chunks_.resize((index >> kTunnelChunkBits) + 1);
  dirty_chunks_[index >> kTunnelChunkBits] = true;
}

void SnapshotBuilder::apply_prefix(const IpcachePrefix& p, const IpcacheValue* v) {
  std::optional<IpcacheEntry> old;
  if (v) {
    IpcacheEntry e;
    e.identity = v->identity;
    if (v->tunnel_endpoint && v->tunnel_endpoint->be != node_ip_.be) e.tunnel = acquire_tunnel(*v->tunnel_endpoint);
    old = p.v6 ? ic6_.set(p.addr, p.len, e) : ic4_.set(p.as_ip4(), p.len, e);
  } else {
    old = p.v6 ? ic6_.erase(p.addr, p.len) : ic4_.erase(p.as_ip4(), p.len);
  }
  if (old && old->tunnel != kNoTunnel) release_tunnel(old->tunnel);
}

void SnapshotBuilder::refresh_tunnel(uint32_t index, const NodeFacts& facts) {
  TunnelSlot& slot = tunnels_[index];
  if (!slot.refs) return;
  Tunnel t;
  auto nh = facts.next_hop_macs.find(slot.ip_be);
  build_tunnel_header(t, cfg_.tunnel_mode, cfg_.effective_tunnel_port(), facts.node_ip, facts.uplink_mac,
                      Ip4{slot.ip_be}, nh == facts.next_hop_macs.end() ? nullptr : &nh->second);
  for (const RemoteNodeConfig& n : cfg_.remote_nodes)  // VTEP peers exist only in static config
    if (n.ip.be == slot.ip_be && n.inner_dst_mac) {
      t.rewrite_inner_dst = true;
      std::memcpy(t.inner_dst_mac, n.inner_dst_mac->data(), 6);
    }
  if (std::memcmp(&t, &slot.built, sizeof t) == 0) return;
  slot.built = t;
  if (dirty_chunks_.size() <= (index >> kTunnelChunkBits)) dirty_chunks_.resize((index >> kTunnelChunkBits) + 1);
  dirty_chunks_[index >> kTunnelChunkBits] = true;
}

std::unique_ptr<Snapshot> SnapshotBuilder::build(uint64_t version, const MeshState& mesh,
                                                 const MeshState::Changes& changes, const NodeFacts& facts) {
  stats_ = Stats{};
  auto s = std::make_unique<Snapshot>();
  s->version = version;
  s->tunnel_mode = cfg_.tunnel_mode;
  const uint16_t port = cfg_.effective_tunnel_port();
  s->tunnel_port_be = hton16(port);
  const uint16_t other = cfg_.tunnel_mode == TunnelMode::vxlan ? kGenevePortDefault : kVxlanPortDefault;
  s->other_port_be = other == port || cfg_.tunnel_mode == TunnelMode::native ? 0 : hton16(other);
  s->node_ip_be = facts.node_ip.be;
  s->inner_mtu = cfg_.tunnel_mode == TunnelMode::native ? facts.uplink_mtu : inner_mtu_for(facts.uplink_mtu);
  s->ports = facts.ports;
  // ICMPv6 errors come from the gateway's link-local address (fe80::/64 + EUI-64 of the uplink MAC).
  s->icmp6_source.bytes = {0xfe, 0x80, 0, 0, 0, 0, 0, 0,
                           static_cast<uint8_t>(facts.uplink_mac[0] ^ 0x02), facts.uplink_mac[1], facts.uplink_mac[2],
                           0xff, 0xfe, facts.uplink_mac[3], facts.uplink_mac[4], facts.uplink_mac[5]};

  std::vector<std::pair<Ip4, EndpointEntry>> ep4;
  std::vector<std::pair<Ip6, EndpointEntry>> ep6;
  for (std::size_t i = 0; i < cfg_.pods.size(); ++i) {
    for (const LocalEndpointConfig& e : cfg_.pods[i].endpoints) {
      EndpointEntry entry;
      entry.identity = e.identity;
      entry.port = static_cast<uint16_t>(i + 1);
      std::memcpy(entry.mac, e.mac.data(), 6);
      if (e.ipv4) ep4.emplace_back(*e.ipv4, entry);
      if (e.ipv6) ep6.emplace_back(*e.ipv6, entry);
    }
  }
  s->endpoints4 = FlatMap<Ip4, EndpointEntry>(ep4);
  s->endpoints6 = FlatMap<Ip6, EndpointEntry>(ep6);

  // Nodes first, so that they keep the lowest, stable tunnel indices.
  // The node IP is read once at start; tunnels to it are never built.
  const bool full = !initialized_;
  node_ip_ = facts.node_ip;
  if (full || changes.nodes) {
    std::vector<uint32_t> next;
    for (const auto& [key, n] : mesh.nodes())
      if (n.ip.be && n.ip.be != node_ip_.be) next.push_back(acquire_tunnel(n.ip));
    for (uint32_t idx : node_tunnels_) release_tunnel(idx);
    node_tunnels_ = std::move(next);
  }
  if (full) {
    mesh.for_each_ipcache([&](const IpcachePrefix& p, const IpcacheValue& v) { apply_prefix(p, &v); });
    initialized_ = true;
  } else {
    for (const IpcachePrefix& p : changes.prefixes) apply_prefix(p, mesh.find_ipcache(p));
  }
  // Tunnels whose headers may differ: every one on a full build or when the
  // facts (next-hop MACs) change; otherwise the ones just created.
  const bool facts_changed = facts.next_hop_macs != last_next_hops_ || facts.uplink_mac != last_uplink_mac_;
  for (uint32_t i = 0; i < tunnels_.size(); ++i)
    if (tunnels_[i].refs && (full || facts_changed || tunnels_[i].built.remote_ip_be != tunnels_[i].ip_be))
      refresh_tunnel(i, facts);
  last_next_hops_ = facts.next_hop_macs;
  last_uplink_mac_ = facts.uplink_mac;

  const std::size_t nchunks = (tunnels_.size() + kTunnelChunk - 1) / kTunnelChunk;
  chunks_.resize(nchunks);
  dirty_chunks_.resize(nchunks);
  for (std::size_t c = 0; c < nchunks; ++c) {
    if (chunks_[c] && !dirty_chunks_[c]) continue;
    auto chunk = std::make_shared<TunnelTable::Chunk>();
    for (std::size_t i = 0; i < kTunnelChunk && c * kTunnelChunk + i < tunnels_.size(); ++i)
      (*chunk)[i] = tunnels_[c * kTunnelChunk + i].built;
    chunks_[c] = std::move(chunk);
    dirty_chunks_[c] = false;
    ++stats_.rebuilt_tunnel_chunks;
  }
  s->tunnels = TunnelTable(chunks_, tunnels_.size());
  stats_.tunnels = tunnel_by_ip_.size();
  std::size_t r4 = 0, r6 = 0;
  s->ipcache4 = ic4_.publish(&r4);
  s->ipcache6 = ic6_.publish(&r6);
  stats_.rebuilt_shards = r4 + r6;
  return s;
}

std::unique_ptr<Snapshot> build_snapshot(uint64_t version, const Config& cfg, const MeshState& mesh,
                                         const NodeFacts& facts) {
  SnapshotBuilder b(cfg);
  return b.build(version, mesh, MeshState::Changes{}, facts);
}

}  // namespace xdpmesh
