// xdpmeshctl: talks to xdpmeshd over its Unix-socket JSON API.
// Exit codes: 0 ok; 1 the daemon answered but is unhealthy or refused the
// request; 2 the daemon is unreachable.
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace json = boost::json;

namespace {

constexpr int kExitUnhealthy = 1;
constexpr int kExitUnreachable = 2;

struct Unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

json::object call(const std::string& path, const json::object& req) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) throw Unreachable("socket path too long: " + path);
  std::copy(path.begin(), path.end(), sa.sun_path);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    throw Unreachable(fmt::format("cannot reach xdpmeshd at {}: {} (is it running? --socket PATH)", path, why));
  }
  const std::string line = json::serialize(req) + "\n";
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    close(fd);
    throw Unreachable("write to " + path + " failed");
  }
  std::string buf;
  char chunk[65536];
  for (;;) {
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
    if (!buf.empty() && buf.back() == '\n') break;
  }
  close(fd);
  if (buf.empty()) throw Unreachable("xdpmeshd at " + path + " closed the connection without an answer");
  return json::parse(buf).as_object();
}

std::string s(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out.append(sep);
    out.append(parts[i]);
  }
  return out;
}

void print_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (std::size_t i = 0; i < r.size(); ++i) out += fmt::format("{:<{}}", r[i], i + 1 < r.size() ? w[i] + 3 : 0);
    fmt::print("{}\n", out);
  };
  line(head);
  for (auto& r : rows) line(r);
}

void print_status(const json::object& o) {
  fmt::print("xdpmeshd {}  node {}/{} (cluster id {})  {}  up {}s\n", s(o.at("version")), s(o.at("cluster")),
             s(o.at("node")), s(o.at("cluster_id")), o.at("healthy").as_bool() ? "healthy" : "UNHEALTHY",
             s(o.at("uptime_seconds")));
  const auto& t = o.at("tunnel").as_object();
  fmt::print("node IP {}  tunnel {} port {}  uplink MTU {} -> pod MTU {}\n", s(o.at("node_ip")), s(t.at("mode")),
             s(t.at("port")), s(t.at("uplink_mtu")), s(t.at("pod_mtu")));
  std::vector<std::vector<std::string>> rows;
  for (auto& i : o.at("interfaces").as_array()) {
    const auto& io = i.as_object();
    rows.push_back({s(io.at("name")), s(io.at("role")), s(io.at("xdp_mode")),
                    io.at("zero_copy").as_bool() ? "zero-copy" : "copy", s(io.at("mtu"))});
  }
  print_table({"INTERFACE", "ROLE", "XDP", "AF_XDP", "MTU"}, rows);
  const auto& tot = o.at("totals").as_object();
  const auto& tab = o.at("tables").as_object();
  fmt::print("workers {}  rx {}  tx {}  drops {}\n", s(o.at("workers")), s(tot.at("rx_packets")),
             s(tot.at("tx_packets")), s(tot.at("drops")));
  fmt::print("tables v{}: {} ipcache, {} endpoints, {} tunnels\n", s(tab.at("version")), s(tab.at("ipcache")),
             s(tab.at("endpoints")), s(tab.at("tunnels")));
  for (auto& w : o.at("warnings").as_array()) fmt::print("WARNING: {}\n", s(w));
}

void print_stats(const json::object& o) {
  for (auto& wv : o.at("workers").as_array()) {
    const auto& w = wv.as_object();
    fmt::print("worker {}: rx {} pkts / {} B, tx {} pkts / {} B\n", s(w.at("id")), s(w.at("rx_packets")),
               s(w.at("rx_bytes")), s(w.at("tx_packets")), s(w.at("tx_bytes")));
    fmt::print("  encapsulated {}  decapsulated {}  delivered_local {}  arp_replies {}  nd_replies {}  "
               "icmp_errors_sent {}\n",
               s(w.at("encapsulated")), s(w.at("decapsulated")), s(w.at("delivered_local")), s(w.at("arp_replies")),
               s(w.at("nd_replies")), s(w.at("icmp_errors_sent")));
    fmt::print("  drops:\n");
    for (auto& [k, v] : w.at("drops").as_object())
      if (v.to_number<uint64_t>() != 0) fmt::print("    {:<24} {}\n", std::string(k), s(v));
    for (auto& pv : w.at("ports").as_array()) {
      const auto& p = pv.as_object();
      fmt::print("  port {:<16} q{}  rx {}  tx {}  kernel: rx_dropped {} rx_ring_full {} fill_ring_empty {}\n",
                 s(p.at("interface")), s(p.at("queue")), s(p.at("rx_packets")), s(p.at("tx_packets")),
                 s(p.at("kernel_rx_dropped")), s(p.at("kernel_rx_ring_full")), s(p.at("kernel_fill_ring_empty")));
    }
  }
  fmt::print("xdp actions:\n");
  for (auto& [k, v] : o.at("xdp_actions").as_object()) fmt::print("  {:<20} {}\n", std::string(k), s(v));
}

void print_ipcache(const json::object& o) {
  std::vector<std::vector<std::string>> rows;
  for (auto& ev : o.at("entries").as_array()) {
    const auto& e = ev.as_object();
    std::vector<std::string> parts;
    for (auto& f : e.at("flags").as_array()) parts.push_back(s(f));
    const std::string flags = join(parts, ",");
    rows.push_back({s(e.at("prefix")),
                    fmt::format("identity={} encryptkey={} tunnelendpoint={} flags={}", s(e.at("identity")),
                                s(e.at("encrypt_key")),
                                s(e.at("tunnel_endpoint")).empty() ? "0.0.0.0" : s(e.at("tunnel_endpoint")),
                                flags.empty() ? "<none>" : flags)});
  }
  print_table({"IP PREFIX/ADDRESS", "IDENTITY"}, rows);
}

void print_nodes(const json::object& o) {
  std::vector<std::vector<std::string>> rows;
  for (auto& nv : o.at("nodes").as_array()) {
    const auto& n = nv.as_object();
    std::vector<std::string> cidrs;
    if (n.contains("pod_cidrs"))
      for (auto& c : n.at("pod_cidrs").as_array()) cidrs.push_back(s(c));
    rows.push_back({s(n.at("name")), s(n.at("ipv4")), cidrs.empty() ? "-" : join(cidrs, ","),
                    s(n.at("next_hop_mac")).empty() ? "-" : s(n.at("next_hop_mac")), s(n.at("source"))});
  }
  print_table({"Name", "IPv4 Address", "Endpoint CIDR", "Next-hop MAC", "Source"}, rows);
}

void print_endpoints(const json::object& o) {
  std::vector<std::vector<std::string>> rows;
  for (auto& ev : o.at("endpoints").as_array()) {
    const auto& e = ev.as_object();
    std::vector<std::string> parts;
    for (auto& [k, v] : e.at("labels").as_object()) parts.push_back(fmt::format("{}={}", std::string(k), s(v)));
    const std::string labels = join(parts, ",");
    rows.push_back({s(e.at("interface")), s(e.at("ipv4")), s(e.at("ipv6")), s(e.at("mac")), s(e.at("identity")),
                    labels});
  }
  print_table({"INTERFACE", "IPv4", "IPv6", "MAC", "IDENTITY", "LABELS"}, rows);
}

void print_identities(const json::object& o) {
  std::vector<std::vector<std::string>> rows;
  for (auto& iv : o.at("identities").as_array()) {
    const auto& i = iv.as_object();
    const auto& labels = i.at("labels").as_array();
    // As cilium-dbg identity list: one label per line, the ID on the first.
    if (labels.empty()) rows.push_back({s(i.at("id")), ""});
    for (std::size_t k = 0; k < labels.size(); ++k) rows.push_back({k == 0 ? s(i.at("id")) : "", s(labels[k])});
  }
  print_table({"ID", "LABELS"}, rows);
}

void print_clustermesh(const json::object& o) {
  const auto& clusters = o.at("clusters").as_array();
  fmt::print("ClusterMesh:   {}/{} remote clusters ready\n", s(o.at("ready")), s(o.at("total")));
  for (auto& cv : clusters) {
    const auto& c = cv.as_object();
    auto num = [&](const char* k) { return c.contains(k) ? s(c.at(k)) : std::string("0"); };
    fmt::print("   {}: {}, {} nodes, {} endpoints, {} identities, {} services, {} reconnections, {} failures\n",
               s(c.at("name")), c.at("ready").as_bool() ? "ready" : "not-ready", num("num-nodes"),
               num("num-endpoints"), num("num-identities"), num("num-shared-services"), num("reconnections"),
               num("num-failures"));
    fmt::print("   └  status: {}, connected={}\n", s(c.at("status")), c.at("connected").as_bool() ? "true" : "false");
    if (c.contains("config")) {
      const auto& cfg = c.at("config").as_object();
      fmt::print("   └  remote configuration: retrieved={}, cluster-id={}, kvstoremesh={}, sync-canaries={}\n",
                 s(cfg.at("retrieved")), s(cfg.at("cluster-id")), s(cfg.at("kvstoremesh")), s(cfg.at("sync-canaries")));
    }
    if (c.contains("synced")) {
      const auto& sy = c.at("synced").as_object();
      fmt::print("   └  synchronization status: nodes={}, endpoints={}, identities={}, services={}\n",
                 s(sy.at("nodes")), s(sy.at("endpoints")), s(sy.at("identities")), s(sy.at("services")));
    }
    if (c.contains("rejected")) {
      const auto& r = c.at("rejected").as_object();
      fmt::print("   └  rejected entries: nodes={}, endpoints={}, identities={}, services={}{}\n", s(r.at("nodes")),
                 s(r.at("endpoints")), s(r.at("identities")), s(r.at("services")),
                 c.contains("last-rejection") && !s(c.at("last-rejection")).empty()
                     ? " (last: " + s(c.at("last-rejection")) + ")"
                     : "");
    }
    if (c.contains("last-failure") && !s(c.at("last-failure")).empty())
      fmt::print("   └  last failure: {} {}\n", c.contains("last-failure-time") ? s(c.at("last-failure-time")) : "",
                 s(c.at("last-failure")));
  }
  if (o.contains("local")) {
    const auto& l = o.at("local").as_object();
    fmt::print("Local cluster {}: connected={}, published={}, lease {}, {} endpoint(s){}\n", s(l.at("cluster")),
               s(l.at("connected")), s(l.at("published")), s(l.at("lease")), s(l.at("endpoints")),
               s(l.at("last-failure")).empty() ? "" : ", last failure: " + s(l.at("last-failure")));
  }
}


// As cilium-dbg service list: "N => address (active)", the state for unused ones.
std::string backend_line(std::size_t n, const json::object& b) {
  const std::string state = s(b.at("state"));
  std::string tag = b.at("used").as_bool() ? "(active)" : "(" + state + ")";
  if (b.at("used").as_bool() && state != "selected") tag += " (" + state + ")";
  return fmt::format("{} => {} @{} {}", n, s(b.at("address")), s(b.at("cluster")), tag);
}

void print_services(const json::object& o) {
  std::vector<std::vector<std::string>> rows;
  for (auto& sv : o.at("services").as_array()) {
    const auto& svc = sv.as_object();
    const auto& bs = svc.at("backends").as_array();
    std::vector<std::string> row{s(svc.at("id")), s(svc.at("frontend")), s(svc.at("name")), s(svc.at("type")), ""};
    if (bs.empty()) rows.push_back(row);
    for (std::size_t k = 0; k < bs.size(); ++k) {
      if (k) row = {"", "", "", "", ""};
      row[4] = backend_line(k + 1, bs[k].as_object());
      rows.push_back(row);
    }
  }
  print_table({"ID", "FRONTEND", "SERVICE", "TYPE", "BACKEND"}, rows);
}

void print_service(const json::object& o) {
  bool first = true;
  for (auto& fv : o.at("frontends").as_array()) {
    const auto& f = fv.as_object();
    if (!first) fmt::print("\n");
    first = false;
    const std::string port = s(f.at("port_name"));
    fmt::print("Service:           {} (id {}{})\n", s(f.at("name")), s(f.at("id")),
               port.empty() ? "" : ", port " + port);
    fmt::print("Frontend:          {} [{}]\n", s(f.at("frontend")), s(f.at("type")));
    fmt::print("Global:            {}\n", !f.at("global").as_bool() ? "no"
                                           : f.at("shared").as_bool() ? "yes, shared"
                                                                      : "yes, not shared");
    fmt::print("Affinity:          {} (min local backends {})\n", s(f.at("affinity")), s(f.at("min_local_backends")));
    fmt::print("Session affinity:  {}\n", f.at("session_affinity").as_bool() ? "client IP" : "none");
    fmt::print("Maglev table size: {}\n", s(f.at("maglev_table_size")));
    std::vector<std::vector<std::string>> rows;
    for (auto& bv : f.at("backends").as_array()) {
      const auto& b = bv.as_object();
      rows.push_back({b.contains("id") ? s(b.at("id")) : "-", s(b.at("address")),
                      s(b.at("cluster")) + (b.at("local").as_bool() ? " (local)" : ""), s(b.at("state")),
                      b.at("used").as_bool() ? "yes" : "no", s(b.at("weight")),
                      b.contains("maglev_entries") ? s(b.at("maglev_entries")) : "-", s(b.at("reason"))});
    }
    print_table({"ID", "BACKEND", "CLUSTER", "STATE", "USED", "WEIGHT", "MAGLEV", "REASON"}, rows);
  }
}

// As cilium-dbg bpf lb list: a master entry (slot 0) per frontend, then its slots.
void print_lb(const json::object& o) {
  std::vector<std::vector<std::string>> rows;
  for (auto& fv : o.at("frontends").as_array()) {
    const auto& f = fv.as_object();
    const std::string fe = s(f.at("frontend")), revnat = s(f.at("rev_nat_id"));
    rows.push_back({fe + " (0)", fmt::format("0.0.0.0:0 ({}) (0) [{}]", revnat, s(f.at("type")))});
    for (auto& sv : f.at("slots").as_array()) {
      const auto& sl = sv.as_object();
      rows.push_back({fmt::format("{} ({})", fe, s(sl.at("slot"))),
                      fmt::format("{} ({}) ({})", s(sl.at("backend")), revnat, s(sl.at("slot")))});
    }
  }
  print_table({"SERVICE ADDRESS", "BACKEND ADDRESS (REVNAT_ID) (SLOT)"}, rows);
}

void print_ct(const json::object& o) {
  std::vector<std::vector<std::string>> rows;
  for (auto& fv : o.at("flows").as_array()) {
    const auto& f = fv.as_object();
    std::string xlat = f.contains("xlat_src") ? s(f.at("xlat_src")) + " -> " + s(f.at("xlat_dst")) : "-";
    if (f.contains("service_id")) xlat += " svc " + s(f.at("service_id"));
    if (f.contains("gateway")) xlat += " gateway";
    rows.push_back({s(f.at("proto")), s(f.at("src")), s(f.at("dst")), xlat, s(f.at("state")),
                    s(f.at("expires_in")) + "s", s(f.at("src_identity")) + "->" + s(f.at("dst_identity")),
                    s(f.at("packets_orig")) + "/" + s(f.at("packets_reply")), s(f.at("worker"))});
  }
  print_table({"PROTO", "SRC", "DST", "XLAT", "STATE", "EXPIRES", "IDENTITIES", "PACKETS", "WORKER"}, rows);
  for (auto& wv : o.at("workers").as_array()) {
    const auto& w = wv.as_object();
    if (w.contains("error"))
      fmt::print("worker {}: error: {}\n", s(w.at("worker")), s(w.at("error")));
    else
      fmt::print("worker {}: {}/{} flows, {} created, {} expired\n", s(w.at("worker")), s(w.at("flows")),
                 s(w.at("capacity")), s(w.at("created")), s(w.at("expired")));
  }
}

void print_policy(const json::object& o) {
  if (!o.at("enabled").as_bool()) {
    fmt::print("Policy enforcement disabled (no policy directory in the config)\n");
    return;
  }
  if (!s(o.at("last_error")).empty())
    fmt::print("ERROR: the last policy change was rejected, the previous policy stays in force:\n  {}\n\n",
               s(o.at("last_error")));
  fmt::print("Policy revision {} from {} ({} file(s))\n\n", s(o.at("revision")), s(o.at("directory")),
             o.at("files").as_array().size());
  std::vector<std::vector<std::string>> rows;
  for (auto& pv : o.at("policies").as_array()) {
    const auto& p = pv.as_object();
    const std::string ns = s(p.at("namespace"));
    auto rules = [&](const char* enforces, const char* n) {
      return p.at(enforces).as_bool() ? fmt::format("{} rule(s)", s(p.at(n))) : std::string("-");
    };
    rows.push_back({ns.empty() ? s(p.at("name")) : ns + "/" + s(p.at("name")), s(p.at("source")),
                    s(p.at("endpoint_selector")), rules("enforces_ingress", "ingress_rules"),
                    rules("enforces_egress", "egress_rules")});
  }
  print_table({"POLICY", "SOURCE", "ENDPOINT SELECTOR", "INGRESS", "EGRESS"}, rows);
  rows.clear();
  auto on = [](const json::value& v) { return std::string(v.as_bool() ? "Enabled" : "Disabled"); };
  for (auto& ev : o.at("endpoints").as_array()) {
    const auto& e = ev.as_object();
    rows.push_back({s(e.at("endpoint")), s(e.at("identity")), on(e.at("ingress")), on(e.at("egress"))});
  }
  fmt::print("\n");
  print_table({"ENDPOINT", "IDENTITY", "INGRESS ENFORCEMENT", "EGRESS ENFORCEMENT"}, rows);
  rows.clear();
  for (auto& ev : o.at("entries").as_array()) {
    const auto& e = ev.as_object();
    rows.push_back({s(e.at("subject")), s(e.at("peer")), s(e.at("direction")), s(e.at("proto")), s(e.at("ports")),
                    e.contains("rule") ? s(e.at("rule")) : "-"});
  }
  fmt::print("\n");
  print_table({"SUBJECT", "PEER", "DIRECTION", "PROTO", "PORTS", "RULE"}, rows);
}

void print_selectors(const json::object& o) {
  std::vector<std::vector<std::string>> rows;
  for (auto& sv : o.at("selectors").as_array()) {
    const auto& sel = sv.as_object();
    std::vector<std::string> ids;
    for (auto& i : sel.at("identities").as_array()) ids.push_back(s(i));
    const auto& users = sel.at("users").as_array();
    // One user per line, the selector and its identities on the first.
    std::vector<std::string> row{s(sel.at("selector")), ids.empty() ? "-" : join(ids, ","), ""};
    if (users.empty()) rows.push_back(row);
    for (std::size_t k = 0; k < users.size(); ++k) {
      if (k) row = {"", "", ""};
      row[2] = s(users[k]);
      rows.push_back(row);
    }
  }
  print_table({"SELECTOR", "IDENTITIES", "USERS"}, rows);
}

// As cilium-dbg monitor: "xx drop (reason) src -> dst PROTO identity a->b".
void print_event(const json::object& e) {
  const bool ports = s(e.at("proto")) == "TCP" || s(e.at("proto")) == "UDP";
  auto ep = [&](const char* a, const char* p) { return ports ? s(e.at(a)) + ":" + s(e.at(p)) : s(e.at(a)); };
  fmt::print("xx {} ({}) {} -> {} {} identity {}->{}{}\n", s(e.at("type")), s(e.at("reason")), ep("src", "sport"),
             ep("dst", "dport"), s(e.at("proto")), s(e.at("src_identity")), s(e.at("dst_identity")),
             e.contains("rule") ? " rule " + s(e.at("rule")) : "");
}

std::string age_text(const json::value& v) {
  if (v.is_null()) return "never";
  const double s = v.to_number<double>();
  if (s < 120) return fmt::format("{:.1f}s ago", s);
  if (s < 7200) return fmt::format("{:.0f}m ago", s / 60);
  return fmt::format("{:.1f}h ago", s / 3600);
}

std::string epoch_text(const json::value& v) { return v.is_null() ? "-" : std::to_string(v.to_number<uint64_t>()); }

void print_encrypt_status(const json::object& o) {
  fmt::print("Encryption: {}{}\n", json::value_to<std::string>(o.at("mode")),
             o.at("strict").as_bool() ? " (strict ingress)" : "");
  if (const json::value* w = o.if_contains("wireguard")) {
    const json::object& wg = w->as_object();
    fmt::print("WireGuard public key: {}  listen port: {}{}\n", json::value_to<std::string>(wg.at("public_key")),
               wg.at("listen_port").to_number<uint64_t>(), wg.at("under_load").as_bool() ? "  UNDER LOAD (cookies)" : "");
    const json::object& hs = wg.at("handshakes").as_object();
    fmt::print("Handshakes:");
    for (const auto& [k, v] : hs) fmt::print(" {}={}", std::string(k), v.to_number<uint64_t>());
    fmt::print("\n\n{:<24} {:<46} {:<21} {:<12} {:>12} {:>12} {:>5} {:>5}  {}\n", "PEER", "PUBLIC KEY", "ENDPOINT",
               "HANDSHAKE", "RX BYTES", "TX BYTES", "KEY", "PREV", "ERRORS");
    for (const auto& pv : wg.at("peers").as_array()) {
      const json::object& p = pv.as_object();
      std::string errs;
      for (const auto& [k, v] : p.at("errors").as_object())
        if (v.to_number<uint64_t>()) errs += fmt::format("{}{}={}", errs.empty() ? "" : " ", std::string(k), v.to_number<uint64_t>());
      fmt::print("{:<24} {:<46} {:<21} {:<12} {:>12} {:>12} {:>5} {:>5}  {}\n", json::value_to<std::string>(p.at("name")),
                 json::value_to<std::string>(p.at("public_key")), json::value_to<std::string>(p.at("endpoint")),
                 age_text(p.at("last_handshake_age_s")), p.at("rx_bytes").to_number<uint64_t>(),
                 p.at("tx_bytes").to_number<uint64_t>(), epoch_text(p.at("current_epoch")),
                 epoch_text(p.at("previous_epoch")), errs.empty() ? "-" : errs);
    }
  }
  if (const json::value* i = o.if_contains("ipsec")) {
    const json::object& ip = i->as_object();
    fmt::print("IPsec: key file {}  current SPI {}  outbound SPI {}\n", json::value_to<std::string>(ip.at("key_file")),
               ip.at("current_spi").to_number<uint64_t>(), ip.at("outbound_spi").to_number<uint64_t>());
    fmt::print("\n{:<24} {:<16} {:>4} {:<12} {:>12} {:>12} {:>14}  {}\n", "PEER", "NODE IP", "OUT", "IN SPIS", "RX BYTES",
               "TX BYTES", "OUT SEQ", "ERRORS");
    for (const auto& pv : ip.at("peers").as_array()) {
      const json::object& p = pv.as_object();
      std::string spis;
      for (const auto& s : p.at("inbound_spis").as_array()) {
        if (!spis.empty()) spis += ',';
        spis += std::to_string(s.to_number<uint64_t>());
      }
      std::string errs;
      for (const auto& [k, v] : p.at("errors").as_object())
        if (v.to_number<uint64_t>()) errs += fmt::format("{}{}={}", errs.empty() ? "" : " ", std::string(k), v.to_number<uint64_t>());
      fmt::print("{:<24} {:<16} {:>4} {:<12} {:>12} {:>12} {:>14}  {}\n", json::value_to<std::string>(p.at("name")),
                 json::value_to<std::string>(p.at("node_ip")), p.at("outbound_spi").to_number<uint64_t>(), spis,
                 p.at("rx_bytes").to_number<uint64_t>(), p.at("tx_bytes").to_number<uint64_t>(),
                 p.at("outbound_seq").to_number<uint64_t>(), errs.empty() ? "-" : errs);
    }
  }
}

void print_explain(const json::object& o) {
  auto who = [](const json::object& e) {
    std::string out = fmt::format("{}  identity {} ({})", s(e.at("address")), s(e.at("identity")), s(e.at("source")));
    if (e.contains("tunnel_endpoint")) out += "  via tunnel endpoint " + s(e.at("tunnel_endpoint"));
    if (e.contains("labels")) {
      std::vector<std::string> labels;
      for (auto& l : e.at("labels").as_array()) labels.push_back(s(l));
      out += "\n             labels " + join(labels, ", ");
    }
    return out;
  };
  fmt::print("Source:      {}\n", who(o.at("source").as_object()));
  if (const json::value* sv = o.if_contains("service")) {
    const auto& svc = sv->as_object();
    fmt::print("Service:     {} (id {}, {} backend(s))\n", s(svc.at("frontend")), s(svc.at("service_id")),
               s(svc.at("backends")));
    if (svc.contains("verdict"))
      fmt::print("             {}\n", s(svc.at("verdict")));
    else
      fmt::print("             -> {} (Maglev entry {}, source port {})\n", s(svc.at("backend")),
                 s(svc.at("maglev_entry")), s(svc.at("source_port")));
  } else {
    fmt::print("Service:     none (the destination is no service frontend)\n");
  }
  fmt::print("Destination: {}\n", who(o.at("destination").as_object()));
  std::vector<std::vector<std::string>> rows;
  for (auto& vv : o.at("policy").as_array()) {
    const auto& v = vv.as_object();
    rows.push_back({s(v.at("direction")), s(v.at("at")),
                    s(v.at("subject_identity")) + (s(v.at("direction")) == "egress" ? " -> " : " <- ") +
                        s(v.at("peer_identity")),
                    s(v.at("verdict")), v.contains("why") ? s(v.at("why")) : "-"});
  }
  fmt::print("\n");
  print_table({"DIRECTION", "AT", "IDENTITIES", "VERDICT", "WHY"}, rows);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xdpmeshctl: inspect and steer a running xdpmeshd"};
  app.require_subcommand(1);
  std::string socket_path = "/run/xdpmesh/xdpmeshd.sock";
  std::string output = "table";
  app.add_option("-s,--socket", socket_path, "xdpmeshd API socket")->envname("XDPMESH_SOCKET");
  app.add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));

  struct Read {
    CLI::App* cmd;
    std::string api;
    void (*print)(const json::object&);
    std::function<void(json::object&)> args;  // request fields from the command's options
  };
  std::vector<Read> reads;
  auto add_read = [&](CLI::App* parent, const char* name, const char* help, std::string api,
                      void (*print)(const json::object&), std::function<void(json::object&)> args = {}) {
    CLI::App* c = parent->add_subcommand(name, help);
    c->add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
    reads.push_back({c, std::move(api), print, std::move(args)});
    return c;
  };
  add_read(&app, "status", "daemon health, interfaces, workers, totals", "status", print_status);
  add_read(&app, "stats", "per-worker counters and drops by reason", "stats", print_stats);
  CLI::App* ipcache = app.add_subcommand("ipcache", "IP -> identity / tunnel endpoint table");
  ipcache->require_subcommand(1);
  add_read(ipcache, "list", "list ipcache entries", "ipcache.list", print_ipcache);
  CLI::App* node = app.add_subcommand("node", "mesh nodes");
  node->require_subcommand(1);
  add_read(node, "list", "list nodes", "node.list", print_nodes);
  CLI::App* endpoint = app.add_subcommand("endpoint", "local endpoints");
  endpoint->require_subcommand(1);
  add_read(endpoint, "list", "list local endpoints", "endpoint.list", print_endpoints);

  CLI::App* identity_cmd = app.add_subcommand("identity", "security identities (local and from the mesh)");
  identity_cmd->require_subcommand(1);
  add_read(identity_cmd, "list", "list identities and their labels", "identity.list", print_identities);

  CLI::App* service = app.add_subcommand("service", "services: frontends and the backends each one uses");
  service->require_subcommand(1);
  add_read(service, "list", "list services and their backends", "service.list", print_services);
  std::string service_name;
  add_read(service, "get", "one service: affinity, Maglev, each backend and why it is (not) used", "service.get",
           print_service, [&](json::object& r) { r["service"] = service_name; })
      ->add_option("service", service_name, "ns/name or frontend ip:port")
      ->required();
  CLI::App* lb = app.add_subcommand("lb", "the datapath's load-balancing table");
  lb->require_subcommand(1);
  add_read(lb, "list", "frontends and their backend slots (as cilium-dbg bpf lb list)", "lb.list", print_lb);
  CLI::App* ct = app.add_subcommand("ct", "connection tracking");
  ct->require_subcommand(1);
  std::string ct_flow;
  int64_t ct_limit = 0;
  CLI::App* ct_list = add_read(ct, "list", "tracked flows and per-worker table use", "ct.list", print_ct,
                               [&](json::object& r) {
                                 if (!ct_flow.empty()) r["flow"] = ct_flow;
                                 if (ct_limit > 0) r["limit"] = ct_limit;
                               });
  ct_list->add_option("--flow", ct_flow, "only flows whose \"PROTO src -> dst xsrc -> xdst\" contains this text");
  ct_list->add_option("--limit", ct_limit, "at most N flows (daemon default 10000)")->check(CLI::PositiveNumber);
  CLI::App* policy = app.add_subcommand("policy", "network policy");
  policy->require_subcommand(1);
  add_read(policy, "get", "loaded policies, enforcement per endpoint, compiled entries", "policy.get", print_policy);
  add_read(policy, "selectors", "selectors, the identities they match and the rules using them", "policy.selectors",
           print_selectors);

  CLI::App* encrypt = app.add_subcommand("encrypt", "transparent encryption (WireGuard or IPsec)");
  encrypt->require_subcommand(1);
  add_read(encrypt, "status", "our key, each peer: endpoint, handshake age, bytes, key epochs/SPIs, errors",
           "encrypt.status", print_encrypt_status);
  std::string rekey_peer;
  add_read(encrypt, "rekey", "start a WireGuard handshake now (all peers, or --peer cluster/node)", "encrypt.rekey",
           [](const json::object& o) { fmt::print("{} handshake(s) started\n", o.at("handshakes_started").to_number<uint64_t>()); },
           [&](json::object& r) {
             if (!rekey_peer.empty()) r["peer"] = rekey_peer;
           })
      ->add_option("--peer", rekey_peer, "cluster/node of the peer");

  std::string ex_src, ex_dst, ex_proto = "tcp";
  int64_t ex_dport = 0, ex_sport = 0;
  CLI::App* explain = add_read(&app, "explain", "how a flow would be handled: identities, service, policy", "explain",
                               print_explain, [&](json::object& r) {
                                 r["src"] = ex_src;
                                 r["dst"] = ex_dst;
                                 r["dport"] = ex_dport;
                                 r["proto"] = ex_proto;
                                 if (ex_sport > 0) r["sport"] = ex_sport;
                               });
  explain->add_option("--src", ex_src, "source IPv4")->required();
  explain->add_option("--dst", ex_dst, "destination IPv4 (a pod, a node or a service frontend)")->required();
  explain->add_option("--dport", ex_dport, "destination port (0 for icmp)")->required()->check(CLI::Range(0, 65535));
  explain->add_option("--proto", ex_proto, "tcp, udp or icmp (default tcp)")
      ->check(CLI::IsMember({"tcp", "udp", "icmp"}));
  explain->add_option("--sport", ex_sport, "source port, picks the Maglev entry (daemon default 40000)")
      ->check(CLI::Range(1, 65535));

  CLI::App* monitor = app.add_subcommand("monitor", "print datapath events as they happen (one line each)");
  monitor->add_option("-o,--output", output, "table or json (one object per line)")
      ->check(CLI::IsMember({"table", "json"}));
  std::string monitor_type = "drop";
  double monitor_timeout = 0;
  bool since_start = false;
  monitor->add_option("-t,--type", monitor_type, "event type: drop (the only one)")
      ->check([](const std::string& t) { return t == "drop" ? "" : "only drop events exist, not '" + t + "'"; });
  monitor->add_option("--timeout", monitor_timeout, "stop after SECONDS (default: until Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  monitor->add_flag("--since-start", since_start, "first print the recent events the daemon still holds");

  CLI::App* cm = app.add_subcommand("clustermesh", "remote clusters");
  cm->require_subcommand(1);
  CLI::App* cm_status = cm->add_subcommand("status", "per remote cluster: connection, config, sync, counts; exit 1 "
                                                     "unless all are ready");
  cm_status->add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
  bool wait = false;
  double wait_timeout = 60;
  cm_status->add_flag("--wait", wait, "wait until every remote cluster is ready");
  cm_status->add_option("--timeout", wait_timeout, "seconds to wait with --wait (default 60)");

  std::string prefix, tunnel_endpoint;
  int64_t identity = 0;
  CLI::App* upsert = ipcache->add_subcommand("upsert", "add or replace an entry");
  upsert->add_option("--prefix", prefix, "IP or CIDR")->required();
  upsert->add_option("--identity", identity, "security identity")->required();
  upsert->add_option("--tunnel-endpoint", tunnel_endpoint, "node IPv4 that hosts the prefix");
  CLI::App* del = ipcache->add_subcommand("delete", "remove an entry");
  del->add_option("--prefix", prefix, "IP or CIDR")->required();

  CLI11_PARSE(app, argc, argv);

  try {
    if (cm_status->parsed()) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_timeout);
      for (;;) {
        json::object reply = call(socket_path, json::object{{"cmd", "clustermesh.status"}});
        const bool ready = reply.at("all_ready").as_bool();
        if (!ready && wait && std::chrono::steady_clock::now() < deadline) {
          usleep(200 * 1000);
          continue;
        }
        if (output == "json")
          fmt::print("{}\n", json::serialize(reply));
        else
          print_clustermesh(reply);
        if (!ready) fmt::print(stderr, "not all remote clusters are ready{}\n", wait ? " (timed out)" : "");
        return ready ? 0 : kExitUnhealthy;
      }
    }
    if (monitor->parsed()) {
      static volatile std::sig_atomic_t stop = 0;
      std::signal(SIGINT, [](int) { stop = 1; });
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(monitor_timeout);
      // Unless --since-start, a first poll past any sequence number only learns the current one.
      int64_t after = since_start ? 0 : std::numeric_limits<int64_t>::max();
      if (output == "table")
        fmt::print(stderr, "Listening for {} events on {}. Press Ctrl-C to quit\n", monitor_type, socket_path);
      while (!stop) {
        json::object reply = call(socket_path, json::object{{"cmd", "monitor.poll"}, {"after", after}});
        if (!reply.at("ok").as_bool()) {
          fmt::print(stderr, "error: {}\n", s(reply.at("error")));
          return kExitUnhealthy;
        }
        for (auto& ev : reply.at("events").as_array()) {
          if (s(ev.at("type")) != monitor_type) continue;
          if (output == "json")
            fmt::print("{}\n", json::serialize(ev));
          else
            print_event(ev.as_object());
          std::fflush(stdout);
        }
        after = reply.at("last").to_number<int64_t>();
        if (monitor_timeout > 0 && std::chrono::steady_clock::now() >= deadline) break;
        usleep(200 * 1000);
      }
      return 0;
    }
    for (const Read& r : reads) {
      if (!r.cmd->parsed()) continue;
      json::object req{{"cmd", r.api}};
      if (r.args) r.args(req);
      json::object reply = call(socket_path, req);
      if (!reply.at("ok").as_bool()) {
        fmt::print(stderr, "error: {}\n", s(reply.at("error")));
        return kExitUnhealthy;
      }
      const bool healthy = r.api == "status" ? reply.at("healthy").as_bool()
                                             : call(socket_path, json::object{{"cmd", "status"}}).at("healthy").as_bool();
      if (output == "json")
        fmt::print("{}\n", json::serialize(reply));
      else
        r.print(reply);
      if (!healthy) {
        fmt::print(stderr, "xdpmeshd is unhealthy (see `xdpmeshctl status`)\n");
        return kExitUnhealthy;
      }
      return 0;
    }
    json::object req;
    if (upsert->parsed()) {
      req = {{"cmd", "ipcache.upsert"}, {"prefix", prefix}, {"identity", identity}};
      if (!tunnel_endpoint.empty()) req["tunnel_endpoint"] = tunnel_endpoint;
    } else if (del->parsed()) {
      req = {{"cmd", "ipcache.delete"}, {"prefix", prefix}};
    }
    json::object reply = call(socket_path, req);
    if (!reply.at("ok").as_bool()) {
      fmt::print(stderr, "error: {}\n", s(reply.at("error")));
      return kExitUnhealthy;
    }
    if (output == "json") fmt::print("{}\n", json::serialize(reply));
    return 0;
  } catch (const Unreachable& e) {
    fmt::print(stderr, "{}\n", e.what());
    return kExitUnreachable;
  } catch (const std::exception& e) {
    fmt::print(stderr, "bad answer from xdpmeshd: {}\n", e.what());
    return kExitUnhealthy;
  }
}
