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
#include <iostream>
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
  };
  std::vector<Read> reads;
  auto add_read = [&](CLI::App* parent, const char* name, const char* help, std::string api,
                      void (*print)(const json::object&)) {
    CLI::App* c = parent->add_subcommand(name, help);
    c->add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
    reads.push_back({c, std::move(api), print});
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
    for (const Read& r : reads) {
      if (!r.cmd->parsed()) continue;
      json::object reply = call(socket_path, json::object{{"cmd", r.api}});
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
