// The daemon's configuration: YAML -> typed, validated values. Every error
// names file:line:column and the key. Threading: value types; load on the
// control thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/tables/addr.h"
#include "dataplane/stages/flow_state.h"
#include "dataplane/tables/snapshot.h"

namespace xdpmesh {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using MacAddr = std::array<uint8_t, 6>;

struct Ipv4Prefix {
  Ip4 addr;
  uint8_t len = 32;
};
struct Ipv6Prefix {
  Ip6 addr;
  uint8_t len = 128;
};

struct LocalEndpointConfig {
  std::optional<Ip4> ipv4;
  std::optional<Ip6> ipv6;
  MacAddr mac{};
  uint32_t identity = 0;  // 0: allocated from labels in our cluster's etcd
  std::map<std::string, std::string> labels;
  std::string namespace_ = "default";
  std::string name;  // pod name, published as K8sPodName
};

struct PodInterfaceConfig {
  std::string interface;
  std::vector<LocalEndpointConfig> endpoints;
};

struct RemoteEndpointConfig {
  std::optional<Ipv4Prefix> ipv4;
  std::optional<Ipv6Prefix> ipv6;
  uint32_t identity = 0;
};

struct RemoteNodeConfig {
  std::string name;
  std::string cluster;
  Ip4 ip;
  std::vector<Ipv4Prefix> pod_cidrs4;
  std::vector<Ipv6Prefix> pod_cidrs6;
  std::vector<RemoteEndpointConfig> endpoints;
  std::optional<MacAddr> inner_dst_mac;  // VTEP-style peers (a kernel vxlan device)
  std::string wireguard_public_key;      // base64; "" = not a WireGuard peer
  uint16_t wireguard_port = 51871;
  std::string boot_id;                   // for IPsec per-node-pair keys
};

// The ClusterMesh side: remote clusters to read and our own cluster's etcd
// to publish into. Durations in seconds unless named otherwise.
struct ClusterMeshConfig {
  std::string config_dir;   // one file per remote cluster, as Cilium's --clustermesh-config
  std::string etcd_config;  // our cluster's etcd (same file format); empty = publish nothing
  std::vector<Ipv4Prefix> pod_cidrs4;  // advertised in our node record (IPv4AllocCIDR + secondaries)
  std::vector<Ipv6Prefix> pod_cidrs6;
  uint32_t failure_timeout = 180;       // disconnected this long: the cluster's services are revoked
  uint32_t heartbeat_timeout = 120;     // no heartbeat this long: unhealthy (Cilium: 2 x 1 min)
  uint32_t status_check_interval = 5;
  uint32_t request_timeout = 10;
  uint32_t lease_ttl = 900;             // our records' lease (Cilium: 15 min)
  uint32_t heartbeat_interval = 60;     // we write cilium/.heartbeat this often
  uint32_t poll_interval_ms = 1000;     // config directory rescan
};

// A service of our cluster (Kubernetes' Service with Cilium's clustermesh
// annotations). Local backends are the local endpoints its selector matches;
// with global, backends of the same namespace/name from every remote
// cluster that shares it are merged in.
struct ServicePortConfig {
  std::string name;  // matches the port name of remote clusters' records
  uint16_t port = 0;
  uint8_t proto = 6;
  uint16_t target_port = 0;  // on local backends (default: port)
};
struct ServiceConfig {
  std::string name, namespace_ = "default";
  Ip4 frontend;  // ClusterIP
  std::vector<ServicePortConfig> ports;
  std::map<std::string, std::string> selector;
  bool global = false;
  bool shared = true;
  std::string affinity;  // "", "local", "remote" (service.cilium.io/affinity)
  uint32_t min_local_backends = 0;
  std::map<std::string, uint32_t> cluster_weights;
  bool session_affinity = false;
  uint32_t session_affinity_timeout = 10800;
  bool gateway = false;  // also on the uplink address, with source NAT
};

struct PolicyConfig {
  std::string directory;
  uint32_t poll_interval_ms = 1000;
};

// Transparent encryption between nodes (Cilium's --enable-wireguard /
// --enable-ipsec). Tunnel traffic is encapsulated first, then encrypted.
struct EncryptionConfig {
  EncryptionMode mode = EncryptionMode::none;
  bool strict = false;  // drop tunnel traffic from a peer that arrives unencrypted
  // WireGuard
  std::string wireguard_private_key_file;
  uint16_t wireguard_port = 51871;
  uint32_t persistent_keepalive = 0;        // seconds; 0 = off
  uint32_t cookie_threshold_per_s = 200;    // handshake messages/s before cookies are demanded
  // IPsec
  std::string ipsec_key_file;
  uint32_t ipsec_key_rotation_duration = 300;  // old SPI accepted this long after a rotation (Cilium: 5 min)
  uint32_t ipsec_outbound_delay_ms = 2000;     // a new SPI is used outbound this long after it is accepted inbound
  uint32_t ipsec_poll_interval_ms = 1000;      // key file rescan
  // What an encrypted packet adds beyond the tunnel: WireGuard 60 (IPv4
  // outer), ESP <= 57 (rounded to 60).
  uint32_t overhead() const { return mode == EncryptionMode::none ? 0 : 60; }
};

enum class XdpModePref { auto_, native, skb };
enum class BindModePref { auto_, copy, zero_copy };

struct Config {
  std::string source;  // file path, for messages

  std::string node_name;
  std::string cluster_name;
  uint32_t cluster_id = 0;

  std::string api_socket;
  std::string uplink;
  std::optional<Ip4> uplink_ip;  // default: first IPv4 address of the uplink

  TunnelMode tunnel_mode = TunnelMode::vxlan;
  uint16_t tunnel_port = 0;  // 0 = mode default (8472 / 6081)

  uint32_t queues = 1;
  XdpModePref xdp_mode = XdpModePref::auto_;
  BindModePref bind_mode = BindModePref::auto_;
  uint32_t frames_per_worker = 8192;

  std::vector<PodInterfaceConfig> pods;
  std::vector<RemoteNodeConfig> remote_nodes;
  std::optional<ClusterMeshConfig> clustermesh;
  FlowStateOptions conntrack;  // per worker
  std::vector<ServiceConfig> services;
  uint32_t maglev_table_size = 16381;
  std::optional<PolicyConfig> policy;
  EncryptionConfig encryption;

  uint16_t effective_tunnel_port() const;
};

inline const char* tunnel_mode_name(TunnelMode m) {
  return m == TunnelMode::vxlan ? "vxlan" : m == TunnelMode::geneve ? "geneve" : "native";
}

// Parses and validates; throws ConfigError("file:line:col: key: reason").
Config load_config_file(const std::string& path);
Config load_config_string(const std::string& yaml, const std::string& source_name);

// Helpers shared with the API (ipcache upsert) and tools.
std::optional<Ip4> parse_ip4(const std::string& s);
std::optional<Ip6> parse_ip6(const std::string& s);
std::optional<MacAddr> parse_mac(const std::string& s);
std::string format_ip4(Ip4 a);
std::string format_ip6(const Ip6& a);
std::string format_mac(const uint8_t* mac);

// The node's router address in a pod CIDR: its first host address (Cilium's
// cilium_host IP); source of gateway flows to remote backends.
inline Ip4 router_ip(const Ipv4Prefix& p) {
  return Ip4{__builtin_bswap32(__builtin_bswap32(p.addr.be) + 1)};
}

// Cluster-scoped identity range as Cilium computes it (255 clusters: 16 bits local).
inline uint32_t min_identity(uint32_t cluster_id) { return cluster_id == 0 ? 256 : cluster_id << 16; }
inline uint32_t max_identity(uint32_t cluster_id) {
  return cluster_id == 0 ? 65535 : ((cluster_id + 1) << 16) - 1;
}

}  // namespace xdpmesh
