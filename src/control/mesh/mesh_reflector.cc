#include "control/mesh/mesh_reflector.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace xdpmesh {

namespace json = boost::json;

namespace {
constexpr uint32_t kIdentityHealth = 4;
constexpr uint32_t kIdentityIngress = 8;

std::optional<IpcachePrefix> host_prefix(const std::string& ip) {
  if (ip.empty()) return std::nullopt;
  return parse_ipcache_prefix(ip);
}
}  // namespace

MeshReflector::MeshReflector(std::string cluster, MeshState& mesh, std::function<void()> changed)
    : cluster_(std::move(cluster)), mesh_(mesh), changed_(std::move(changed)) {
  expect_.cluster_name = cluster_;
}

void MeshReflector::on_config(const cilium::ClusterConfig& config) { expect_.cluster_id = config.id; }

void MeshReflector::reject(MeshPrefix p, const std::string& key, const std::string& why) {
  ++rejected_[static_cast<int>(p)];
  last_rejection_ = fmt::format("{} {:.120}: {}", mesh_prefix_name(p), key, why);
  // Hostile input must not flood the log: the first few, then every 1000th.
  const uint64_t n = rejected_[static_cast<int>(p)];
  if (n <= 5 || n % 1000 == 0)
    spdlog::warn("clustermesh {}: rejected {} (#{} of this kind)", cluster_, last_rejection_, n);
}

bool MeshReflector::upsert(MeshPrefix p, const std::string& key, const std::string& value) {
  switch (p) {
    case MeshPrefix::nodes: {
      auto d = cilium::decode_node(value, key, expect_);
      if (!d) {
        reject(p, key, d.error);
        erase_node(key);
        return false;
      }
      const cilium::NodeRecord& n = *d.value;
      const auto node_ip = cilium::node_ip4(n);
      const std::string owner_name = cluster_ + "/" + n.name;
      const IpcacheOwner owner{IpcacheRank::cluster_node, owner_name};
      std::vector<IpcachePrefix> implied;
      auto add = [&](const IpcachePrefix& prefix, uint32_t identity, bool tunnel) {
        IpcacheValue v;
        v.identity = identity;
        if (tunnel && node_ip) v.tunnel_endpoint = *node_ip;
        v.source = owner_name;
        v.encrypt_key = n.encryption_key;
        mesh_.set_ipcache(prefix, owner, v);
        implied.push_back(prefix);
      };
      // As a Cilium agent: node addresses are remote-node; only CiliumInternalIP
      // is reached through the tunnel. Pod CIDRs are world, tunnelled to the node.
      for (const cilium::NodeAddress& a : n.addresses)
        if (auto pfx = host_prefix(a.ip)) add(*pfx, cilium::kIdentityRemoteNode, a.type == "CiliumInternalIP");
      if (n.ipv4_alloc_cidr) add(*n.ipv4_alloc_cidr, cilium::kIdentityWorld, true);
      for (const IpcachePrefix& c : n.ipv4_secondary_alloc_cidrs) add(c, cilium::kIdentityWorld, true);
      if (n.ipv6_alloc_cidr) add(*n.ipv6_alloc_cidr, cilium::kIdentityWorld, true);
      for (const IpcachePrefix& c : n.ipv6_secondary_alloc_cidrs) add(c, cilium::kIdentityWorld, true);
      for (const std::string* ip : {&n.ipv4_health_ip, &n.ipv6_health_ip})
        if (auto pfx = host_prefix(*ip)) add(*pfx, kIdentityHealth, true);
      for (const std::string* ip : {&n.ipv4_ingress_ip, &n.ipv6_ingress_ip})
        if (auto pfx = host_prefix(*ip)) add(*pfx, kIdentityIngress, true);
      // What the previous version implied and this one does not.
      if (auto old = node_prefixes_.find(key); old != node_prefixes_.end())
        for (const IpcachePrefix& prefix : old->second)
          if (std::find(implied.begin(), implied.end(), prefix) == implied.end()) mesh_.erase_ipcache(prefix, owner);
      node_prefixes_[key] = std::move(implied);

      RemoteNode rn;
      rn.cluster = cluster_;
      rn.name = n.name;
      rn.ip = node_ip.value_or(Ip4{});
      rn.source = n.source;
      for (const cilium::NodeAddress& a : n.addresses) rn.addresses.push_back(a.type + "=" + a.ip);
      if (n.ipv4_alloc_cidr) rn.pod_cidrs.push_back(n.ipv4_alloc_cidr->str());
      for (const IpcachePrefix& c : n.ipv4_secondary_alloc_cidrs) rn.pod_cidrs.push_back(c.str());
      if (n.ipv6_alloc_cidr) rn.pod_cidrs.push_back(n.ipv6_alloc_cidr->str());
      for (const IpcachePrefix& c : n.ipv6_secondary_alloc_cidrs) rn.pod_cidrs.push_back(c.str());
      rn.encryption_key = n.encryption_key;
      rn.wireguard_pub_key = n.wireguard_pub_key;
      rn.boot_id = n.boot_id;
      mesh_.set_node(owner_name, std::move(rn));
      dirty_ = true;
      return true;
    }
    case MeshPrefix::ipcache: {
      auto d = cilium::decode_ip_identity_pair(value, key, expect_);
      if (!d) {
        reject(p, key, d.error);
        erase_ipcache(key);
        return false;
      }
      const cilium::IpIdentityPair& pair = *d.value;
      IpcacheValue v;
      v.identity = pair.id;
      if (!pair.host_ip.empty()) v.tunnel_endpoint = parse_ip4(pair.host_ip);  // IPv6 underlay: not supported
      v.source = cluster_;
      v.encrypt_key = pair.key;
      if (auto old = ipcache_.find(key); old != ipcache_.end() && !(old->second == pair.prefix))
        erase_ipcache(key);
      mesh_.set_ipcache(pair.prefix, IpcacheOwner{IpcacheRank::cluster_ipcache, cluster_}, v);
      ipcache_[key] = pair.prefix;
      dirty_ = true;
      return true;
    }
    case MeshPrefix::identities: {
      auto d = cilium::decode_identity(value, key, expect_);
      if (!d) {
        reject(p, key, d.error);
        erase(p, key);
        return false;
      }
      mesh_.identities[d.value->id] = Identity{cluster_, d.value->labels};
      identities_[key] = d.value->id;
      return true;
    }
    case MeshPrefix::services: {
      auto d = cilium::decode_cluster_service(value, key, expect_);
      if (!d) {
        reject(p, key, d.error);
        erase(p, key);
        return false;
      }
      // A service that is no longer shared is withdrawn (§5.4).
      if (!d.value->shared)
        services_.erase(key);
      else
        services_[key] = std::move(*d.value);
      return true;
    }
  }
  return false;
}

void MeshReflector::erase_node(const std::string& key) {
  auto it = node_prefixes_.find(key);
  if (it == node_prefixes_.end()) return;
  const std::string owner_name = cluster_ + "/" + key;
  for (const IpcachePrefix& prefix : it->second)
    mesh_.erase_ipcache(prefix, IpcacheOwner{IpcacheRank::cluster_node, owner_name});
  node_prefixes_.erase(it);
  mesh_.erase_node(owner_name);
  dirty_ = true;
}

void MeshReflector::erase_ipcache(const std::string& key) {
  auto it = ipcache_.find(key);
  if (it == ipcache_.end()) return;
  mesh_.erase_ipcache(it->second, IpcacheOwner{IpcacheRank::cluster_ipcache, cluster_});
  ipcache_.erase(it);
  dirty_ = true;
}

void MeshReflector::erase(MeshPrefix p, const std::string& key) {
  switch (p) {
    case MeshPrefix::nodes: erase_node(key); break;
    case MeshPrefix::ipcache: erase_ipcache(key); break;
    case MeshPrefix::identities:
      if (auto it = identities_.find(key); it != identities_.end()) {
        mesh_.identities.erase(it->second);
        identities_.erase(it);
      }
      break;
    case MeshPrefix::services: services_.erase(key); break;
  }
}

void MeshReflector::drain() {
  std::vector<std::string> keys;
  for (const auto& [k, v] : node_prefixes_) keys.push_back(k);
  for (const std::string& k : keys) erase_node(k);
  keys.clear();
  for (const auto& [k, v] : ipcache_) keys.push_back(k);
  for (const std::string& k : keys) erase_ipcache(k);
  for (const auto& [k, id] : identities_) mesh_.identities.erase(id);
  identities_.clear();
  services_.clear();
  dirty_ = true;
}

void MeshReflector::revoke_services() {
  if (services_.empty()) return;
  services_.clear();
  dirty_ = true;  // the service table must be rebuilt without this cluster's backends
}

void MeshReflector::flush() {
  if (!dirty_) return;
  dirty_ = false;
  if (changed_) changed_();
}

json::object MeshReflector::counts() const {
  json::object o;
  o["num-nodes"] = node_prefixes_.size();
  o["num-endpoints"] = ipcache_.size();
  o["num-identities"] = identities_.size();
  o["num-shared-services"] = services_.size();
  json::object rej;
  for (MeshPrefix p : kMeshPrefixes) rej[mesh_prefix_name(p)] = rejected_[static_cast<int>(p)];
  o["rejected"] = rej;
  o["last-rejection"] = last_rejection_;
  return o;
}

}  // namespace xdpmesh
