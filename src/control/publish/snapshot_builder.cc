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

std::unique_ptr<Snapshot> build_snapshot(uint64_t version, const Config& cfg, const MeshState& mesh,
                                         const NodeFacts& facts) {
  auto s = std::make_unique<Snapshot>();
  s->version = version;
  s->tunnel_mode = cfg.tunnel_mode;
  const uint16_t port = cfg.effective_tunnel_port();
  s->tunnel_port_be = hton16(port);
  const uint16_t other = cfg.tunnel_mode == TunnelMode::vxlan ? kGenevePortDefault : kVxlanPortDefault;
  s->other_port_be = other == port ? 0 : hton16(other);
  s->node_ip_be = facts.node_ip.be;
  s->inner_mtu = inner_mtu_for(facts.uplink_mtu);
  s->ports = facts.ports;
  // ICMPv6 errors come from the gateway's link-local address (fe80::/64 + EUI-64 of the uplink MAC).
  s->icmp6_source.bytes = {0xfe, 0x80, 0, 0, 0, 0, 0, 0,
                           static_cast<uint8_t>(facts.uplink_mac[0] ^ 0x02), facts.uplink_mac[1], facts.uplink_mac[2],
                           0xff, 0xfe, facts.uplink_mac[3], facts.uplink_mac[4], facts.uplink_mac[5]};

  std::vector<std::pair<Ip4, EndpointEntry>> ep4;
  std::vector<std::pair<Ip6, EndpointEntry>> ep6;
  for (std::size_t i = 0; i < cfg.pods.size(); ++i) {
    for (const LocalEndpointConfig& e : cfg.pods[i].endpoints) {
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

  // One tunnel per distinct endpoint IP, nodes first (stable indices).
  std::map<uint32_t, uint32_t> tunnel_index;
  std::map<uint32_t, const RemoteNode*> node_by_ip;
  for (const auto& [key, n] : mesh.nodes) node_by_ip[n.ip.be] = &n;
  auto tunnel_for = [&](Ip4 ip) -> uint32_t {
    auto [it, fresh] = tunnel_index.try_emplace(ip.be, static_cast<uint32_t>(s->tunnels.size()));
    if (fresh) {
      Tunnel t;
      auto nh = facts.next_hop_macs.find(ip.be);
      build_tunnel_header(t, cfg.tunnel_mode, port, facts.node_ip, facts.uplink_mac, ip,
                          nh == facts.next_hop_macs.end() ? nullptr : &nh->second);
      if (auto n = node_by_ip.find(ip.be); n != node_by_ip.end() && n->second->inner_dst_mac) {
        t.rewrite_inner_dst = true;
        std::memcpy(t.inner_dst_mac, n->second->inner_dst_mac->data(), 6);
      }
      s->tunnels.push_back(t);
    }
    return it->second;
  };
  for (const auto& [key, n] : mesh.nodes) tunnel_for(n.ip);

  std::vector<PrefixTable<Ip4, IpcacheEntry>::Prefix> ic4;
  std::vector<PrefixTable<Ip6, IpcacheEntry>::Prefix> ic6;
  for (const auto& [prefix, v] : mesh.ipcache) {
    IpcacheEntry e;
    e.identity = v.identity;
    if (v.tunnel_endpoint && v.tunnel_endpoint->be != facts.node_ip.be) e.tunnel = tunnel_for(*v.tunnel_endpoint);
    if (prefix.v6)
      ic6.push_back({prefix.addr, prefix.len, e});
    else
      ic4.push_back({prefix.as_ip4(), prefix.len, e});
  }
  s->ipcache4 = PrefixTable<Ip4, IpcacheEntry>(ic4);
  s->ipcache6 = PrefixTable<Ip6, IpcacheEntry>(ic6);
  return s;
}

}  // namespace xdpmesh
