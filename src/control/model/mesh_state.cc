#include "control/model/mesh_state.h"

#include <cstring>

namespace xdpmesh {

IpcachePrefix IpcachePrefix::v4(Ip4 a, uint8_t len) {
  IpcachePrefix p;
  std::memcpy(p.addr.bytes.data(), &a.be, 4);
  p.len = len;
  return p;
}
IpcachePrefix IpcachePrefix::v6_(const Ip6& a, uint8_t len) {
  IpcachePrefix p;
  p.v6 = true;
  p.addr = a;
  p.len = len;
  return p;
}
Ip4 IpcachePrefix::as_ip4() const {
  Ip4 a;
  std::memcpy(&a.be, addr.bytes.data(), 4);
  return a;
}
std::string IpcachePrefix::str() const {
  return (v6 ? format_ip6(addr) : format_ip4(as_ip4())) + "/" + std::to_string(len);
}

std::optional<IpcachePrefix> parse_ipcache_prefix(const std::string& s) {
  const auto slash = s.find('/');
  const std::string addr = s.substr(0, slash);
  const bool v6 = addr.find(':') != std::string::npos;
  const unsigned bits = v6 ? 128 : 32;
  unsigned len = bits;
  if (slash != std::string::npos) {
    const std::string l = s.substr(slash + 1);
    if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    len = static_cast<unsigned>(std::stoul(l));
    if (len > bits) return std::nullopt;
  }
  if (v6) {
    auto a = parse_ip6(addr);
    if (!a || !(mask_prefix(*a, len) == *a)) return std::nullopt;
    return IpcachePrefix::v6_(*a, static_cast<uint8_t>(len));
  }
  auto a = parse_ip4(addr);
  if (!a || !(mask_prefix(*a, len) == *a)) return std::nullopt;
  return IpcachePrefix::v4(*a, static_cast<uint8_t>(len));
}

MeshState MeshState::from_config(const Config& c) {
  MeshState m;
  for (const RemoteNodeConfig& n : c.remote_nodes) {
    m.nodes[n.cluster + "/" + n.name] = RemoteNode{n.cluster, n.name, n.ip, n.inner_dst_mac};
    // Pod CIDRs are the fallback route to the node (identity world, as Cilium).
    for (const Ipv4Prefix& p : n.pod_cidrs4)
      m.ipcache[IpcachePrefix::v4(p.addr, p.len)] = IpcacheValue{kIdentityWorld, n.ip, "config"};
    for (const Ipv6Prefix& p : n.pod_cidrs6)
      m.ipcache[IpcachePrefix::v6_(p.addr, p.len)] = IpcacheValue{kIdentityWorld, n.ip, "config"};
    for (const RemoteEndpointConfig& e : n.endpoints) {
      if (e.ipv4) m.ipcache[IpcachePrefix::v4(e.ipv4->addr, e.ipv4->len)] = IpcacheValue{e.identity, n.ip, "config"};
      if (e.ipv6) m.ipcache[IpcachePrefix::v6_(e.ipv6->addr, e.ipv6->len)] = IpcacheValue{e.identity, n.ip, "config"};
    }
  }
  return m;
}

}  // namespace xdpmesh
