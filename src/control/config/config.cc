#include "control/config/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>
#include <tuple>

#include "dataplane/core/net_headers.h"

namespace xdpmesh {

std::optional<Ip4> parse_ip4(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return Ip4{a.s_addr};
}
std::optional<Ip6> parse_ip6(const std::string& s) {
  Ip6 a;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}
std::optional<MacAddr> parse_mac(const std::string& s) {
  MacAddr m{};
  unsigned v[6];
  char tail;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
    return std::nullopt;
  for (int i = 0; i < 6; ++i) m[i] = static_cast<uint8_t>(v[i]);
  return m;
}
std::string format_ip4(Ip4 a) {
  char buf[INET_ADDRSTRLEN];
  in_addr in{a.be};
  return inet_ntop(AF_INET, &in, buf, sizeof buf);
}
std::string format_ip6(const Ip6& a) {
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf);
}
std::string format_mac(const uint8_t* m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

uint16_t Config::effective_tunnel_port() const {
  if (tunnel_port) return tunnel_port;
  if (tunnel_mode == TunnelMode::native) return 0;
  return tunnel_mode == TunnelMode::vxlan ? net::kVxlanPortDefault : net::kGenevePortDefault;
}

namespace {

// Walks the YAML tree, keeping the key path for messages.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& n, const std::string& key, const std::string& why) const {
    const YAML::Mark m = n.Mark();
    if (m.line >= 0)
      throw ConfigError(fmt::format("{}:{}:{}: {}: {}", source_, m.line + 1, m.column + 1, key, why));
    throw ConfigError(fmt::format("{}: {}: {}", source_, key, why));
  }

  // Rejects keys the schema does not know (typos must not pass silently).
  void only_keys(const YAML::Node& map, const std::string& path, std::initializer_list<const char*> keys) const {
    if (!map.IsMap()) fail(map, path, "expected a mapping");
    for (const auto& kv : map) {
      const std::string k = kv.first.as<std::string>();
      bool known = false;
      for (const char* allowed : keys) known |= k == allowed;
      if (!known) fail(kv.first, join(path, k), "unknown key");
    }
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  YAML::Node required(const YAML::Node& map, const std::string& path, const char* key) const {
    YAML::Node n = map[key];
    if (!n) fail(map, join(path, key), "required key is missing");
    return n;
  }

  std::string str(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) fail(n, key, "expected a string");
    return n.Scalar();
  }

  bool boolean(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar() || (n.Scalar() != "true" && n.Scalar() != "false")) fail(n, key, "expected true or false");
    return n.Scalar() == "true";
  }

  uint64_t uint(const YAML::Node& n, const std::string& key, uint64_t min, uint64_t max) const {
    if (!n.IsScalar()) fail(n, key, "expected a number");
    const std::string& s = n.Scalar();
    std::size_t pos = 0;
    unsigned long long v = 0;
    try {
      v = std::stoull(s, &pos, 10);
    } catch (const std::exception&) {
      fail(n, key, fmt::format("'{}' is not a number", s));
    }
    if (pos != s.size() || s.empty() || s[0] == '-') fail(n, key, fmt::format("'{}' is not a number", s));
    if (v < min || v > max) fail(n, key, fmt::format("{} is out of range [{}, {}]", v, min, max));
    return v;
  }

  Ip4 ip4(const YAML::Node& n, const std::string& key) const {
    auto a = parse_ip4(str(n, key));
    if (!a) fail(n, key, fmt::format("'{}' is not an IPv4 address", n.Scalar()));
    return *a;
  }
  Ip6 ip6(const YAML::Node& n, const std::string& key) const {
    auto a = parse_ip6(str(n, key));
    if (!a) fail(n, key, fmt::format("'{}' is not an IPv6 address", n.Scalar()));
    return *a;
  }
  MacAddr mac(const YAML::Node& n, const std::string& key) const {
    auto m = parse_mac(str(n, key));
    if (!m) fail(n, key, fmt::format("'{}' is not a MAC address (aa:bb:cc:dd:ee:ff)", n.Scalar()));
    if ((*m)[0] & 1) fail(n, key, "a multicast MAC cannot be an endpoint's address");
    return *m;
  }

  // "10.1.0.0/16" or "fd00::/64"; a bare address is a host prefix.
  template <typename P>
  P prefix(const YAML::Node& n, const std::string& key) const {
    const std::string s = str(n, key);
    const auto slash = s.find('/');
    const std::string addr = s.substr(0, slash);
    P p;
    constexpr bool v4 = std::is_same_v<P, Ipv4Prefix>;
    const unsigned bits = v4 ? 32 : 128;
    if constexpr (v4) {
      auto a = parse_ip4(addr);
      if (!a) fail(n, key, fmt::format("'{}' is not an IPv4 prefix", s));
      p.addr = *a;
    } else {
      auto a = parse_ip6(addr);
      if (!a) fail(n, key, fmt::format("'{}' is not an IPv6 prefix", s));
      p.addr = *a;
    }
    p.len = static_cast<uint8_t>(bits);
    if (slash != std::string::npos) {
      const std::string len = s.substr(slash + 1);
      if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(len) > bits)
        fail(n, key, fmt::format("'{}' has an invalid prefix length", s));
      p.len = static_cast<uint8_t>(std::stoul(len));
    }
    if (!(mask_prefix(p.addr, p.len) == p.addr))
      fail(n, key, fmt::format("'{}' has host bits set", s));
    return p;
  }

  // An address family is chosen by the text: "10.0.0.0/8" or "fd00::/8".
  static bool looks_v6(const YAML::Node& n) { return n.IsScalar() && n.Scalar().find(':') != std::string::npos; }

 private:
  std::string source_;
};

const std::regex kNameRe("^([a-z0-9][-a-z0-9]*)?[a-z0-9]$");

void check_identity(const Reader& r, const YAML::Node& n, const std::string& key, uint32_t id, uint32_t cluster_id) {
  if (id < min_identity(cluster_id) || id > max_identity(cluster_id))
    r.fail(n, key,
           fmt::format("identity {} is outside cluster {}'s range [{}, {}]", id, cluster_id,
                       min_identity(cluster_id), max_identity(cluster_id)));
}

Config parse(const YAML::Node& root, const std::string& source) {
  Reader r(source);
  Config c;
  c.source = source;
  if (!root || root.IsNull()) throw ConfigError(source + ": the file is empty");
  r.only_keys(root, "", {"node", "api_socket", "uplink", "tunnel", "dataplane", "pods", "remote_nodes", "clustermesh",
                        "services", "policy", "loadbalancer", "conntrack", "encryption"});

  const YAML::Node node = r.required(root, "", "node");
  r.only_keys(node, "node", {"name", "cluster", "cluster_id"});
  c.node_name = r.str(r.required(node, "node", "name"), "node.name");
  c.cluster_name = r.str(r.required(node, "node", "cluster"), "node.cluster");
  if (c.cluster_name.size() > 32 || !std::regex_match(c.cluster_name, kNameRe))
    r.fail(node["cluster"], "node.cluster", "must match ^([a-z0-9][-a-z0-9]*)?[a-z0-9]$ and be at most 32 characters");
  c.cluster_id = static_cast<uint32_t>(r.uint(r.required(node, "node", "cluster_id"), "node.cluster_id", 1, 255));
  if (c.cluster_name == "default")
    r.fail(node["cluster"], "node.cluster", "the name 'default' is only allowed with cluster_id 0");

  c.api_socket = root["api_socket"] ? r.str(root["api_socket"], "api_socket")
                                    : "/run/xdpmesh/" + c.node_name + ".sock";

  const YAML::Node up = r.required(root, "", "uplink");
  r.only_keys(up, "uplink", {"interface", "ip"});
  c.uplink = r.str(r.required(up, "uplink", "interface"), "uplink.interface");
  if (up["ip"]) c.uplink_ip = r.ip4(up["ip"], "uplink.ip");

  if (const YAML::Node t = root["tunnel"]) {
    r.only_keys(t, "tunnel", {"mode", "port"});
    if (t["mode"]) {
      const std::string m = r.str(t["mode"], "tunnel.mode");
      if (m == "vxlan")
        c.tunnel_mode = TunnelMode::vxlan;
      else if (m == "geneve")
        c.tunnel_mode = TunnelMode::geneve;
      else if (m == "native")
        c.tunnel_mode = TunnelMode::native;
      else
        r.fail(t["mode"], "tunnel.mode", fmt::format("'{}' is not one of vxlan, geneve, native", m));
    }
    if (t["port"]) c.tunnel_port = static_cast<uint16_t>(r.uint(t["port"], "tunnel.port", 1, 65535));
  }

  if (const YAML::Node d = root["dataplane"]) {
    r.only_keys(d, "dataplane", {"queues", "xdp_mode", "bind_mode", "frames_per_worker"});
    if (d["queues"]) c.queues = static_cast<uint32_t>(r.uint(d["queues"], "dataplane.queues", 1, 64));
    if (d["frames_per_worker"])
      c.frames_per_worker =
          static_cast<uint32_t>(r.uint(d["frames_per_worker"], "dataplane.frames_per_worker", 1024, 1u << 20));
    if (d["xdp_mode"]) {
      const std::string m = r.str(d["xdp_mode"], "dataplane.xdp_mode");
      if (m == "auto") c.xdp_mode = XdpModePref::auto_;
      else if (m == "native") c.xdp_mode = XdpModePref::native;
      else if (m == "skb") c.xdp_mode = XdpModePref::skb;
      else r.fail(d["xdp_mode"], "dataplane.xdp_mode", fmt::format("'{}' is not one of auto, native, skb", m));
    }
    if (d["bind_mode"]) {
      const std::string m = r.str(d["bind_mode"], "dataplane.bind_mode");
      if (m == "auto") c.bind_mode = BindModePref::auto_;
      else if (m == "copy") c.bind_mode = BindModePref::copy;
      else if (m == "zero_copy") c.bind_mode = BindModePref::zero_copy;
      else r.fail(d["bind_mode"], "dataplane.bind_mode", fmt::format("'{}' is not one of auto, copy, zero_copy", m));
    }
  }

  std::set<std::string> ifnames{c.uplink};
  std::set<uint32_t> ep_v4;
  std::set<std::array<uint8_t, 16>> ep_v6;
  if (const YAML::Node pods = root["pods"]) {
    if (!pods.IsSequence()) r.fail(pods, "pods", "expected a list");
    // The uplink and the pods share the steering program's interface table.
    if (pods.size() > 63) r.fail(pods, "pods", fmt::format("{} pod interfaces; at most 63 are supported", pods.size()));
    for (std::size_t i = 0; i < pods.size(); ++i) {
      const std::string path = fmt::format("pods[{}]", i);
      const YAML::Node pn = pods[i];
      r.only_keys(pn, path, {"interface", "endpoints"});
      PodInterfaceConfig pc;
      pc.interface = r.str(r.required(pn, path, "interface"), path + ".interface");
      if (!ifnames.insert(pc.interface).second) r.fail(pn["interface"], path + ".interface", "interface listed twice");
      const YAML::Node eps = r.required(pn, path, "endpoints");
      if (!eps.IsSequence() || eps.size() == 0) r.fail(eps, path + ".endpoints", "expected a non-empty list");
      for (std::size_t j = 0; j < eps.size(); ++j) {
        const std::string ep_path = fmt::format("{}.endpoints[{}]", path, j);
        const YAML::Node en = eps[j];
        r.only_keys(en, ep_path, {"ipv4", "ipv6", "mac", "identity", "labels", "namespace", "name"});
        LocalEndpointConfig ec;
        if (en["ipv4"]) ec.ipv4 = r.ip4(en["ipv4"], ep_path + ".ipv4");
        if (en["ipv6"]) ec.ipv6 = r.ip6(en["ipv6"], ep_path + ".ipv6");
        if (!ec.ipv4 && !ec.ipv6) r.fail(en, ep_path, "an endpoint needs ipv4 or ipv6");
        if (ec.ipv4 && !ep_v4.insert(ec.ipv4->be).second)
          r.fail(en["ipv4"], ep_path + ".ipv4", "address used by another endpoint");
        if (ec.ipv6 && !ep_v6.insert(ec.ipv6->bytes).second)
          r.fail(en["ipv6"], ep_path + ".ipv6", "address used by another endpoint");
        ec.mac = r.mac(r.required(en, ep_path, "mac"), ep_path + ".mac");
        if (const YAML::Node idn = en["identity"]) {
          ec.identity = static_cast<uint32_t>(r.uint(idn, ep_path + ".identity", 0, 0xffffff));
          check_identity(r, idn, ep_path + ".identity", ec.identity, c.cluster_id);
        } else if (!root["clustermesh"] || !root["clustermesh"]["etcd"] || !en["labels"]) {
          r.fail(en, ep_path, "identity missing: set identity, or give labels and clustermesh.etcd so that one is "
                              "allocated in the cluster's etcd");
        }
        if (en["namespace"]) ec.namespace_ = r.str(en["namespace"], ep_path + ".namespace");
        ec.name = en["name"] ? r.str(en["name"], ep_path + ".name") : fmt::format("{}-{}", c.node_name, j);
        if (const YAML::Node ln = en["labels"]) {
          if (!ln.IsMap()) r.fail(ln, ep_path + ".labels", "expected a mapping of label: value");
          for (const auto& kv : ln) ec.labels[kv.first.as<std::string>()] = r.str(kv.second, ep_path + ".labels");
        }
        pc.endpoints.push_back(std::move(ec));
      }
      c.pods.push_back(std::move(pc));
    }
  }

  if (const YAML::Node cm = root["clustermesh"]) {
    r.only_keys(cm, "clustermesh", {"config_dir", "etcd", "pod_cidrs", "failure_timeout", "heartbeat_timeout",
                                    "status_check_interval", "request_timeout", "lease_ttl", "heartbeat_interval",
                                    "poll_interval_ms"});
    ClusterMeshConfig m;
    if (cm["config_dir"]) m.config_dir = r.str(cm["config_dir"], "clustermesh.config_dir");
    if (cm["etcd"]) m.etcd_config = r.str(cm["etcd"], "clustermesh.etcd");
    if (m.config_dir.empty() && m.etcd_config.empty())
      r.fail(cm, "clustermesh", "needs config_dir (remote clusters), etcd (our cluster's etcd), or both");
    if (const YAML::Node cidrs = cm["pod_cidrs"]) {
      if (!cidrs.IsSequence()) r.fail(cidrs, "clustermesh.pod_cidrs", "expected a list");
      for (std::size_t j = 0; j < cidrs.size(); ++j) {
        const std::string k = fmt::format("clustermesh.pod_cidrs[{}]", j);
        if (Reader::looks_v6(cidrs[j]))
          m.pod_cidrs6.push_back(r.prefix<Ipv6Prefix>(cidrs[j], k));
        else
          m.pod_cidrs4.push_back(r.prefix<Ipv4Prefix>(cidrs[j], k));
      }
    }
    auto secs = [&](const char* key, uint32_t& out, uint64_t lo, uint64_t hi) {
      if (cm[key]) out = static_cast<uint32_t>(r.uint(cm[key], std::string("clustermesh.") + key, lo, hi));
    };
    secs("failure_timeout", m.failure_timeout, 0, 86400);
    secs("heartbeat_timeout", m.heartbeat_timeout, 1, 3600);
    secs("status_check_interval", m.status_check_interval, 1, 300);
    secs("request_timeout", m.request_timeout, 1, 300);
    secs("lease_ttl", m.lease_ttl, 5, 86400);
    secs("heartbeat_interval", m.heartbeat_interval, 1, 3600);
    secs("poll_interval_ms", m.poll_interval_ms, 50, 60000);
    c.clustermesh = std::move(m);
  }

  if (const YAML::Node lb = root["loadbalancer"]) {
    r.only_keys(lb, "loadbalancer", {"maglev_table_size"});
    if (lb["maglev_table_size"]) {
      const auto m = static_cast<uint32_t>(r.uint(lb["maglev_table_size"], "loadbalancer.maglev_table_size", 251, 65521));
      bool prime = m > 1;
      for (uint32_t d = 2; d * d <= m && prime; ++d) prime = m % d != 0;
      if (!prime) r.fail(lb["maglev_table_size"], "loadbalancer.maglev_table_size",
                         fmt::format("{} is not prime (Maglev needs a prime table size, e.g. 16381 or 65521)", m));
      c.maglev_table_size = m;
    }
  }
  if (const YAML::Node ct = root["conntrack"]) {
    r.only_keys(ct, "conntrack", {"max_flows", "tcp_syn_timeout", "tcp_established_timeout", "tcp_closing_timeout",
                                  "udp_timeout", "icmp_timeout"});
    if (ct["max_flows"]) c.conntrack.ct_capacity = static_cast<uint32_t>(r.uint(ct["max_flows"], "conntrack.max_flows", 64, 1u << 24));
    auto secs = [&](const char* key, uint32_t& out) {
      if (ct[key]) out = static_cast<uint32_t>(r.uint(ct[key], std::string("conntrack.") + key, 1, 7 * 86400));
    };
    secs("tcp_syn_timeout", c.conntrack.timeouts.tcp_syn);
    secs("tcp_established_timeout", c.conntrack.timeouts.tcp_established);
    secs("tcp_closing_timeout", c.conntrack.timeouts.tcp_closing);
    secs("udp_timeout", c.conntrack.timeouts.udp);
    secs("icmp_timeout", c.conntrack.timeouts.icmp);
  }
  if (const YAML::Node enc = root["encryption"]) {
    r.only_keys(enc, "encryption", {"type", "strict", "wireguard", "ipsec"});
    const std::string type = r.str(r.required(enc, "encryption", "type"), "encryption.type");
    EncryptionConfig& e = c.encryption;
    if (type == "wireguard") e.mode = EncryptionMode::wireguard;
    else if (type == "ipsec") e.mode = EncryptionMode::ipsec;
    else if (type != "none") r.fail(enc["type"], "encryption.type", "expected wireguard, ipsec or none");
    if (enc["strict"]) e.strict = r.boolean(enc["strict"], "encryption.strict");
    if (const YAML::Node w = enc["wireguard"]) {
      r.only_keys(w, "encryption.wireguard", {"private_key_file", "port", "persistent_keepalive", "cookie_threshold_per_s"});
      if (w["private_key_file"]) e.wireguard_private_key_file = r.str(w["private_key_file"], "encryption.wireguard.private_key_file");
      if (w["port"]) e.wireguard_port = static_cast<uint16_t>(r.uint(w["port"], "encryption.wireguard.port", 1, 65535));
      if (w["persistent_keepalive"])
        e.persistent_keepalive = static_cast<uint32_t>(r.uint(w["persistent_keepalive"], "encryption.wireguard.persistent_keepalive", 0, 65535));
      if (w["cookie_threshold_per_s"])
        e.cookie_threshold_per_s = static_cast<uint32_t>(r.uint(w["cookie_threshold_per_s"], "encryption.wireguard.cookie_threshold_per_s", 1, 1000000));
    }
    if (const YAML::Node i = enc["ipsec"]) {
      r.only_keys(i, "encryption.ipsec", {"key_file", "key_rotation_duration", "outbound_delay_ms", "poll_interval_ms"});
      if (i["key_file"]) e.ipsec_key_file = r.str(i["key_file"], "encryption.ipsec.key_file");
      if (i["key_rotation_duration"])
        e.ipsec_key_rotation_duration = static_cast<uint32_t>(r.uint(i["key_rotation_duration"], "encryption.ipsec.key_rotation_duration", 1, 86400));
      if (i["outbound_delay_ms"])
        e.ipsec_outbound_delay_ms = static_cast<uint32_t>(r.uint(i["outbound_delay_ms"], "encryption.ipsec.outbound_delay_ms", 0, 600000));
      if (i["poll_interval_ms"])
        e.ipsec_poll_interval_ms = static_cast<uint32_t>(r.uint(i["poll_interval_ms"], "encryption.ipsec.poll_interval_ms", 50, 60000));
    }
    if (e.mode == EncryptionMode::wireguard && e.wireguard_private_key_file.empty())
      r.fail(enc, "encryption.wireguard.private_key_file", "required with type wireguard");
    if (e.mode == EncryptionMode::ipsec && e.ipsec_key_file.empty())
      r.fail(enc, "encryption.ipsec.key_file", "required with type ipsec");
  }

  if (const YAML::Node pol = root["policy"]) {
    r.only_keys(pol, "policy", {"directory", "poll_interval_ms"});
    PolicyConfig pc;
    pc.directory = r.str(r.required(pol, "policy", "directory"), "policy.directory");
    if (pol["poll_interval_ms"]) pc.poll_interval_ms = static_cast<uint32_t>(r.uint(pol["poll_interval_ms"], "policy.poll_interval_ms", 50, 60000));
    c.policy = pc;
  }
  if (const YAML::Node svcs = root["services"]) {
    if (!svcs.IsSequence()) r.fail(svcs, "services", "expected a list");
    std::set<std::tuple<uint32_t, uint16_t, uint8_t>> frontends;
    for (std::size_t i = 0; i < svcs.size(); ++i) {
      const YAML::Node n = svcs[i];
      const std::string path = fmt::format("services[{}]", i);
      r.only_keys(n, path, {"name", "namespace", "frontend", "ports", "selector", "global", "shared", "affinity",
                            "min_local_backends", "cluster_weights", "session_affinity", "session_affinity_timeout",
                            "gateway"});
      ServiceConfig sc;
      sc.name = r.str(r.required(n, path, "name"), path + ".name");
      if (n["namespace"]) sc.namespace_ = r.str(n["namespace"], path + ".namespace");
      sc.frontend = r.ip4(r.required(n, path, "frontend"), path + ".frontend");
      const YAML::Node ports = r.required(n, path, "ports");
      if (!ports.IsSequence() || ports.size() == 0) r.fail(ports, path + ".ports", "expected a non-empty list");
      for (std::size_t j = 0; j < ports.size(); ++j) {
        const std::string pp = fmt::format("{}.ports[{}]", path, j);
        r.only_keys(ports[j], pp, {"name", "port", "protocol", "target_port"});
        ServicePortConfig spc;
        if (ports[j]["name"]) spc.name = r.str(ports[j]["name"], pp + ".name");
        spc.port = static_cast<uint16_t>(r.uint(r.required(ports[j], pp, "port"), pp + ".port", 1, 65535));
        if (ports[j]["protocol"]) {
          const std::string proto = r.str(ports[j]["protocol"], pp + ".protocol");
          if (proto == "TCP") spc.proto = 6;
          else if (proto == "UDP") spc.proto = 17;
          else r.fail(ports[j]["protocol"], pp + ".protocol", fmt::format("'{}': expected TCP or UDP", proto));
        }
        spc.target_port = spc.port;
        if (ports[j]["target_port"]) spc.target_port = static_cast<uint16_t>(r.uint(ports[j]["target_port"], pp + ".target_port", 1, 65535));
        if (!frontends.insert({sc.frontend.be, spc.port, spc.proto}).second)
          r.fail(ports[j], pp, "this frontend address, port and protocol is already another service's");
        sc.ports.push_back(spc);
      }
      if (const YAML::Node sel = n["selector"]) {
        if (!sel.IsMap()) r.fail(sel, path + ".selector", "expected a mapping of labels");
        for (const auto& kv : sel) sc.selector[kv.first.as<std::string>()] = r.str(kv.second, path + ".selector");
      }
      if (n["global"]) sc.global = r.boolean(n["global"], path + ".global");
      if (n["shared"]) sc.shared = r.boolean(n["shared"], path + ".shared");
      if (n["affinity"]) {
        sc.affinity = r.str(n["affinity"], path + ".affinity");
        if (sc.affinity == "none") sc.affinity.clear();
        if (!sc.affinity.empty() && sc.affinity != "local" && sc.affinity != "remote")
          r.fail(n["affinity"], path + ".affinity", fmt::format("'{}': expected local, remote or none", sc.affinity));
      }
      if (n["min_local_backends"]) sc.min_local_backends = static_cast<uint32_t>(r.uint(n["min_local_backends"], path + ".min_local_backends", 0, 1000000));
      if (const YAML::Node w = n["cluster_weights"]) {
        if (!w.IsMap()) r.fail(w, path + ".cluster_weights", "expected a mapping cluster: weight");
        for (const auto& kv : w)
          sc.cluster_weights[kv.first.as<std::string>()] = static_cast<uint32_t>(r.uint(kv.second, path + ".cluster_weights", 0, 100));
      }
      if (n["session_affinity"]) sc.session_affinity = r.boolean(n["session_affinity"], path + ".session_affinity");
      if (n["session_affinity_timeout"]) sc.session_affinity_timeout = static_cast<uint32_t>(r.uint(n["session_affinity_timeout"], path + ".session_affinity_timeout", 1, 86400));
      if (n["gateway"]) sc.gateway = r.boolean(n["gateway"], path + ".gateway");
      c.services.push_back(std::move(sc));
    }
  }

  if (const YAML::Node nodes = root["remote_nodes"]) {
    if (!nodes.IsSequence()) r.fail(nodes, "remote_nodes", "expected a list");
    std::set<uint32_t> node_ips;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const std::string path = fmt::format("remote_nodes[{}]", i);
      const YAML::Node nn = nodes[i];
      r.only_keys(nn, path, {"name", "cluster", "ip", "pod_cidrs", "endpoints", "inner_dst_mac", "wireguard_public_key",
                             "wireguard_port", "boot_id"});
      RemoteNodeConfig rc;
      rc.name = r.str(r.required(nn, path, "name"), path + ".name");
      rc.cluster = nn["cluster"] ? r.str(nn["cluster"], path + ".cluster") : c.cluster_name;
      rc.ip = r.ip4(r.required(nn, path, "ip"), path + ".ip");
      if (!node_ips.insert(rc.ip.be).second) r.fail(nn["ip"], path + ".ip", "two remote nodes share this IP");
      if (nn["inner_dst_mac"]) rc.inner_dst_mac = r.mac(nn["inner_dst_mac"], path + ".inner_dst_mac");
      if (nn["wireguard_public_key"]) {
        rc.wireguard_public_key = r.str(nn["wireguard_public_key"], path + ".wireguard_public_key");
        if (rc.wireguard_public_key.size() != 44 || rc.wireguard_public_key.back() != '=')
          r.fail(nn["wireguard_public_key"], path + ".wireguard_public_key",
                 "expected a base64 WireGuard public key (44 characters, as `wg pubkey` prints)");
      }
      if (nn["wireguard_port"])
        rc.wireguard_port = static_cast<uint16_t>(r.uint(nn["wireguard_port"], path + ".wireguard_port", 1, 65535));
      if (nn["boot_id"]) rc.boot_id = r.str(nn["boot_id"], path + ".boot_id");
      if (const YAML::Node cidrs = nn["pod_cidrs"]) {
        if (!cidrs.IsSequence()) r.fail(cidrs, path + ".pod_cidrs", "expected a list");
        for (std::size_t j = 0; j < cidrs.size(); ++j) {
          const std::string k = fmt::format("{}.pod_cidrs[{}]", path, j);
          if (Reader::looks_v6(cidrs[j]))
            rc.pod_cidrs6.push_back(r.prefix<Ipv6Prefix>(cidrs[j], k));
          else
            rc.pod_cidrs4.push_back(r.prefix<Ipv4Prefix>(cidrs[j], k));
        }
      }
      if (const YAML::Node eps = nn["endpoints"]) {
        if (!eps.IsSequence()) r.fail(eps, path + ".endpoints", "expected a list");
        for (std::size_t j = 0; j < eps.size(); ++j) {
          const std::string ep_path = fmt::format("{}.endpoints[{}]", path, j);
          const YAML::Node en = eps[j];
          r.only_keys(en, ep_path, {"ipv4", "ipv6", "identity"});
          RemoteEndpointConfig ec;
          if (en["ipv4"]) ec.ipv4 = r.prefix<Ipv4Prefix>(en["ipv4"], ep_path + ".ipv4");
          if (en["ipv6"]) ec.ipv6 = r.prefix<Ipv6Prefix>(en["ipv6"], ep_path + ".ipv6");
          if (!ec.ipv4 && !ec.ipv6) r.fail(en, ep_path, "an endpoint needs ipv4 or ipv6");
          const YAML::Node idn = r.required(en, ep_path, "identity");
          ec.identity = static_cast<uint32_t>(r.uint(idn, ep_path + ".identity", 2, 0xffffff));
          rc.endpoints.push_back(ec);
        }
      }
      c.remote_nodes.push_back(std::move(rc));
    }
  }
  return c;
}

}  // namespace

Config load_config_string(const std::string& yaml, const std::string& source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}:{}: YAML syntax: {}", source_name, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return parse(root, source_name);
}

Config load_config_file(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot open the config file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}:{}: YAML syntax: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return parse(root, path);
}

}  // namespace xdpmesh
