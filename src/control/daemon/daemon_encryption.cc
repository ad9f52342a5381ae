// The daemon's encryption wiring: which nodes are peers (node records with a
// WireGuard key, or config), the workers' crypto tables, and the API.
#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include "control/daemon/daemon.h"

namespace xdpmesh {

namespace json = boost::json;

void Daemon::start_encryption() {
  const EncryptionConfig& e = cfg_.encryption;
  if (e.mode != EncryptionMode::none) {
    // A core file would hold the private key and the session keys.
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
      spdlog::info("encryption: core dumps of xdpmeshd disabled (they would contain keys)");
  }
  if (e.mode == EncryptionMode::wireguard) {
    WireguardOptions o;
    o.private_key_file = e.wireguard_private_key_file;
    o.listen_ip = facts_.node_ip;
    o.listen_port = e.wireguard_port;
    o.persistent_keepalive_s = e.persistent_keepalive;
    o.cookie_threshold_per_s = e.cookie_threshold_per_s;
    wireguard_ = std::make_unique<WireguardDevice>(io_, *qsbr_, o);
  } else if (e.mode == EncryptionMode::ipsec) {
    IpsecOptions o;
    o.key_file = e.ipsec_key_file;
    o.local_ip = facts_.node_ip;
    o.local_boot_id = read_boot_id();
    o.lanes = cfg_.queues;
    o.outbound_delay = std::chrono::milliseconds(e.ipsec_outbound_delay_ms);
    o.rotation_duration = std::chrono::seconds(e.ipsec_key_rotation_duration);
    o.poll_interval = std::chrono::milliseconds(e.ipsec_poll_interval_ms);
    ipsec_ = std::make_unique<IpsecManager>(io_, *qsbr_, o);
  }
}

void Daemon::refresh_encryption(Snapshot& snap) {
  const EncryptionConfig& e = cfg_.encryption;
  if (e.mode == EncryptionMode::none) return;
  auto t = std::make_shared<CryptoTables>();
  t->mode = e.mode;
  t->strict = e.strict;
  t->max_plaintext = facts_.uplink_mtu - e.overhead();
  snap.inner_mtu -= e.overhead();
  if (wireguard_) {
    // Every node with a key is a peer (Cilium's updatePeer): endpoint = its
    // node IP and the port it listens on (51871 unless configured).
    std::vector<WireguardPeerSpec> specs;
    std::string fp;
    for (const auto& [key, n] : mesh_.nodes()) {
      if (n.wireguard_pub_key.empty() || !n.ip.be) continue;
      WireguardPeerSpec s;
      s.name = n.cluster + "/" + n.name;
      s.node_ip = n.ip;
      s.public_key = n.wireguard_pub_key;
      for (const RemoteNodeConfig& rc : cfg_.remote_nodes)
        if (rc.ip.be == n.ip.be) s.port = rc.wireguard_port;
      fp += s.name + "|" + format_ip4(s.node_ip) + "|" + std::to_string(s.port) + "|" + s.public_key + ";";
      specs.push_back(std::move(s));
    }
    if (fp != wireguard_peers_fp_) {
      wireguard_->set_peers(specs);
      wireguard_peers_fp_ = fp;
    }
    wireguard_->fill_tables(*t);
  }
  if (ipsec_) {
    // Every node is an IPsec peer (Cilium encrypts to all nodes); its key
    // is derived from the global key, both node IPs and both boot IDs.
    std::vector<IpsecPeerSpec> specs;
    std::string fp;
    for (const auto& [key, n] : mesh_.nodes()) {
      if (!n.ip.be) continue;
      specs.push_back(IpsecPeerSpec{n.cluster + "/" + n.name, n.ip, n.boot_id});
      fp += specs.back().name + "|" + format_ip4(n.ip) + "|" + n.boot_id + ";";
    }
    if (fp != ipsec_peers_fp_) {
      ipsec_->set_peers(specs);
      ipsec_peers_fp_ = fp;
    }
    ipsec_->fill_tables(*t);
  }
  snap.crypto = std::move(t);
}

json::object Daemon::encrypt_status(const json::object&) {
  json::object o;
  const EncryptionConfig& e = cfg_.encryption;
  o["mode"] = e.mode == EncryptionMode::wireguard ? "wireguard" : e.mode == EncryptionMode::ipsec ? "ipsec" : "disabled";
  o["strict"] = e.strict;
  o["overhead_bytes"] = e.overhead();
  if (wireguard_) o["wireguard"] = wireguard_->status_json();
  if (ipsec_) o["ipsec"] = ipsec_->status_json();
  return o;
}

// Starts new key exchanges now (WireGuard: a handshake with each peer named,
// or all; IPsec: not applicable, rotation is by key file).
json::object Daemon::encrypt_rekey(const json::object& req) {
  if (!wireguard_) throw std::runtime_error("rekey needs WireGuard (IPsec rotates by a new key in the key file)");
  std::string peer;
  if (const json::value* v = req.if_contains("peer")) peer = json::value_to<std::string>(*v);
  const std::size_t n = wireguard_->initiate(peer);
  if (!n) throw std::runtime_error(peer.empty() ? "no WireGuard peers" : "no WireGuard peer named " + peer);
  json::object o;
  o["handshakes_started"] = n;
  return o;
}

}  // namespace xdpmesh
