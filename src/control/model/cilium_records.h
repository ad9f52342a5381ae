// Cilium's ClusterMesh records (etcd values) as typed values: decode with
// every validation rule a Cilium agent applies to a remote cluster, and encode
// byte-compatible JSON for what we publish ourselves.
// Facts: ../shared/CILIUM-FORMATS.md §1, §2. Threading: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "control/model/mesh_state.h"

namespace xdpmesh::cilium {

// Decode result: a value or the reason it was rejected (counted by the caller,
// never applied).
template <typename T>
struct Decoded {
  std::optional<T> value;
  std::string error;  // empty when value is set
  explicit operator bool() const { return value.has_value(); }
};

// What a reader expects of one remote cluster's records.
struct RemoteExpectations {
  std::string cluster_name;
  uint32_t cluster_id = 0;  // from cilium/cluster-config/<name>; 1..255
};

// ---- cluster names, IDs, identities (§2) --------------------------------------
inline constexpr uint32_t kClusterIdMax = 255;
inline constexpr uint32_t kIdentityHost = 1;
inline constexpr uint32_t kIdentityWorld = 2;
inline constexpr uint32_t kIdentityRemoteNode = 6;
inline constexpr uint32_t kMinimalNumericIdentity = 256;
inline constexpr std::string_view kClusterLabel = "k8s:io.cilium.k8s.policy.cluster";

// Name <= 32 chars, ^([a-z0-9][-a-z0-9]*)?[a-z0-9]$, "default" refused when id != 0.
std::optional<std::string> cluster_name_error(std::string_view name, uint32_t id);
// Cilium's allocation range of a cluster (255-cluster layout, shift 16).
uint32_t identity_min(uint32_t cluster_id);
uint32_t identity_max(uint32_t cluster_id);

// ---- cilium/cluster-config/<name> (§1.5) --------------------------------------
struct ClusterConfig {
  uint32_t id = 0;
  bool synced_canaries = false;
  bool cached = false;
  uint32_t max_connected_clusters = 0;  // 0 = absent
  std::optional<bool> service_exports_enabled;
};
Decoded<ClusterConfig> decode_cluster_config(std::string_view json);
std::string encode_cluster_config(const ClusterConfig& c);  // omitempty like Go

// ---- nodes: cilium/state/nodes/v1/<cluster>/<name> (§1.3) -----------------------
struct NodeAddress {
  std::string type;  // InternalIP, ExternalIP, CiliumInternalIP, ...
  std::string ip;    // textual, validated as IPv4 or IPv6
};
struct NodeRecord {
  std::string name;
  std::string cluster;
  std::vector<NodeAddress> addresses;
  std::optional<IpcachePrefix> ipv4_alloc_cidr;
  std::vector<IpcachePrefix> ipv4_secondary_alloc_cidrs;
  std::optional<IpcachePrefix> ipv6_alloc_cidr;
  std::vector<IpcachePrefix> ipv6_secondary_alloc_cidrs;
  std::string ipv4_health_ip, ipv6_health_ip, ipv4_ingress_ip, ipv6_ingress_ip;  // "" = none
  uint32_t cluster_id = 0;
  std::string source;  // "custom-resource", "local", ...
  uint8_t encryption_key = 0;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  uint32_t node_identity = 0;
  std::string wireguard_pub_key;
  std::string boot_id;
};
// key_name = the key's last segment. Checks: Name/Cluster non-empty, Name ==
// key_name, Cluster == expected name, ClusterID == expected id, CIDR masks
// contiguous and IP/mask family consistent, every IP parses.
Decoded<NodeRecord> decode_node(std::string_view json, std::string_view key_name,
                                const RemoteExpectations& expect);
std::string encode_node(const NodeRecord& n);  // all fields, Go's field order
// Cilium's ExtractNodeIP: InternalIP, else ExternalIP, else any other type
// except CiliumInternalIP; IPv4 preferred. nullopt if none.
std::optional<Ip4> node_ip4(const NodeRecord& n);

// ---- ipcache: cilium/state/ip/v1/default/<ip>[/<len>] (§1.7) --------------------
struct IpIdentityPair {
  IpcachePrefix prefix;  // IP + Mask
  std::string host_ip;   // tunnel endpoint; "" = none
  uint32_t id = 0;       // after the 1 -> 6 rewrite
  uint8_t key = 0;
  std::string metadata;
  std::string k8s_namespace, k8s_pod_name, k8s_service_account;
  struct NamedPort {
    std::string name;
    uint16_t port = 0;
    std::string protocol;
  };
  std::vector<NamedPort> named_ports;
};
// key_suffix = everything after ".../default/" (or ".../ip/v1/<cluster>/" when
// cached). Checks: suffix == PrefixString() (bare IP for a host entry), IP and
// HostIP parse, ID in the remote's range or < 256; ID 1 becomes 6.
Decoded<IpIdentityPair> decode_ip_identity_pair(std::string_view json, std::string_view key_suffix,
                                                const RemoteExpectations& expect);
std::string encode_ip_identity_pair(const IpIdentityPair& p);
// "10.0.0.1" for a full-length prefix, else "10.0.0.0/24" (Cilium's PrefixString).
std::string prefix_string(const IpcachePrefix& p);

// ---- identities: cilium/state/identities/v1/id/<ID> (§1.6) ----------------------
// Labels as "source:key=value" strings, sorted by key as Cilium sorts them.
using LabelSet = std::vector<std::string>;
// Value "k8s:a=b;k8s:c=d;" -> labels. Checks: ID parses, in the remote's range,
// labels well formed and contain k8s:io.cilium.k8s.policy.cluster=<name>.
struct IdentityRecord {
  uint32_t id = 0;
  LabelSet labels;
};
Decoded<IdentityRecord> decode_identity(std::string_view value, std::string_view key_id,
                                        const RemoteExpectations& expect);
// Sorted, ';'-terminated (FormatForKVStore).
std::string format_labels_for_kvstore(LabelSet labels);
// "app=cart" style map with a default source -> LabelSet ("k8s:app=cart").
LabelSet labels_from_map(const std::map<std::string, std::string>& m, std::string_view source = "k8s");

// ---- services: cilium/state/services/v1/<cluster>/<ns>/<name> (§1.4) --------------
struct L4Addr {
  std::string protocol;  // TCP, UDP, SCTP, ANY, NONE
  uint16_t port = 0;
};
using PortConfiguration = std::map<std::string, L4Addr>;  // port name -> L4Addr
struct ClusterService {
  std::string cluster, namespace_, name;
  std::map<std::string, PortConfiguration> frontends;  // IP -> ports
  std::map<std::string, PortConfiguration> backends;   // IP -> ports
  std::map<std::string, std::string> labels, selector;
  bool include_external = false;
  bool shared = false;
  uint32_t cluster_id = 0;
};
// key_suffix = "<ns>/<name>". Checks: names non-empty, every frontend/backend
// key parses as an IP, protocol known, cluster/ID match, ns/name == suffix.
Decoded<ClusterService> decode_cluster_service(std::string_view json, std::string_view key_suffix,
                                               const RemoteExpectations& expect);
std::string encode_cluster_service(const ClusterService& s);

// ---- timestamps ---------------------------------------------------------------
// Go time.RFC3339 ("2006-01-02T15:04:05Z07:00") <-> Unix seconds.
std::string format_rfc3339(int64_t unix_seconds);
std::optional<int64_t> parse_rfc3339(std::string_view s);

}  // namespace xdpmesh::cilium
