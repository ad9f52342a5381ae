#include "control/model/mesh_state.h"

#include <algorithm>
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
  const IpcacheOwner owner{IpcacheRank::config, ""};
  for (const RemoteNodeConfig& n : c.remote_nodes) {
    RemoteNode node{n.cluster, n.name, n.ip, n.inner_dst_mac, "config", {"InternalIP=" + format_ip4(n.ip)}, {}, 0,
                    n.wireguard_public_key, n.boot_id};
    // Pod CIDRs are the fallback route to the node (identity world, as Cilium).
    for (const Ipv4Prefix& p : n.pod_cidrs4) {
      m.set_ipcache(IpcachePrefix::v4(p.addr, p.len), owner, IpcacheValue{kIdentityWorld, n.ip, "config", 0});
      node.pod_cidrs.push_back(IpcachePrefix::v4(p.addr, p.len).str());
    }
    for (const Ipv6Prefix& p : n.pod_cidrs6) {
      m.set_ipcache(IpcachePrefix::v6_(p.addr, p.len), owner, IpcacheValue{kIdentityWorld, n.ip, "config", 0});
      node.pod_cidrs.push_back(IpcachePrefix::v6_(p.addr, p.len).str());
    }
    for (const RemoteEndpointConfig& e : n.endpoints) {
      if (e.ipv4)
        m.set_ipcache(IpcachePrefix::v4(e.ipv4->addr, e.ipv4->len), owner, IpcacheValue{e.identity, n.ip, "config", 0});
      if (e.ipv6)
        m.set_ipcache(IpcachePrefix::v6_(e.ipv6->addr, e.ipv6->len), owner, IpcacheValue{e.identity, n.ip, "config", 0});
    }
    m.set_node(n.cluster + "/" + n.name, std::move(node));
  }
  return m;
}

namespace {
bool same_value(const IpcacheValue& a, const IpcacheValue& b) {
  return a.identity == b.identity && a.tunnel_endpoint.has_value() == b.tunnel_endpoint.has_value() &&
         (!a.tunnel_endpoint || a.tunnel_endpoint->be == b.tunnel_endpoint->be) && a.encrypt_key == b.encrypt_key;
}
}  // namespace

void MeshState::set_ipcache(const IpcachePrefix& p, const IpcacheOwner& owner, IpcacheValue v) {
  Contributions& c = ipcache_[p];
  const IpcacheValue* before = c.empty() ? nullptr : &c.front().second;
  const bool had = before != nullptr;
  const IpcacheValue old = had ? *before : IpcacheValue{};
  auto it = std::find_if(c.begin(), c.end(), [&](const auto& e) { return e.first == owner; });
  if (it != c.end())
    it->second = std::move(v);
  else
    c.insert(std::lower_bound(c.begin(), c.end(), owner, [](const auto& e, const IpcacheOwner& o) { return e.first < o; }),
             {owner, std::move(v)});
  if (!had || !same_value(old, c.front().second)) dirty_.push_back(p);
}

bool MeshState::erase_ipcache(const IpcachePrefix& p, const IpcacheOwner& owner) {
  auto m = ipcache_.find(p);
  if (m == ipcache_.end()) return false;
  Contributions& c = m->second;
  auto it = std::find_if(c.begin(), c.end(), [&](const auto& e) { return e.first == owner; });
  if (it == c.end()) return false;
  const bool was_best = it == c.begin();
  const IpcacheValue old = c.front().second;
  c.erase(it);
  if (c.empty()) {
    ipcache_.erase(m);
    dirty_.push_back(p);
  } else if (was_best && !same_value(old, c.front().second)) {
    dirty_.push_back(p);
  }
  return true;
}

const IpcacheValue* MeshState::find_ipcache(const IpcachePrefix& p) const {
  auto m = ipcache_.find(p);
  return m == ipcache_.end() ? nullptr : &m->second.front().second;
}

void MeshState::set_node(const std::string& key, RemoteNode n) {
  nodes_[key] = std::move(n);
  nodes_dirty_ = true;
}

void MeshState::erase_node(const std::string& key) { nodes_dirty_ |= nodes_.erase(key) > 0; }

MeshState::Changes MeshState::take_changes() {
  Changes c;
  c.prefixes.swap(dirty_);
  c.nodes = nodes_dirty_;
  nodes_dirty_ = false;
  return c;
}

}  // namespace xdpmesh
