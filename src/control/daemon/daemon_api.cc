// The daemon's API handlers: JSON views of status, counters and tables, and
// run-time ipcache edits.
#include <fmt/format.h>

#include "control/daemon/daemon.h"
#include "dataplane/core/drop_reason.h"

namespace xdpmesh {

namespace json = boost::json;

void Daemon::register_api() {
  api_->on("status", [this](const json::object&) { return status_json(); });
  api_->on("stats", [this](const json::object&) { return stats_json(); });
  api_->on("ipcache.list", [this](const json::object&) { return ipcache_json(); });
  api_->on("node.list", [this](const json::object&) { return nodes_json(); });
  api_->on("endpoint.list", [this](const json::object&) { return endpoints_json(); });
  api_->on("ipcache.upsert", [this](const json::object& r) { return ipcache_upsert(r); });
  api_->on("ipcache.delete", [this](const json::object& r) { return ipcache_delete(r); });
  api_->on("clustermesh.status", [this](const json::object&) { return clustermesh_json(); });
  api_->on("identity.list", [this](const json::object&) { return identities_json(); });
  api_->on("service.list", [this](const json::object& r) { return service_list(r); });
  api_->on("service.get", [this](const json::object& r) { return service_get(r); });
  api_->on("lb.list", [this](const json::object& r) { return lb_list(r); });
  api_->on("ct.list", [this](const json::object& r) { return ct_list(r); });
  api_->on("policy.get", [this](const json::object& r) { return policy_get(r); });
  api_->on("encrypt.status", [this](const json::object& r) { return encrypt_status(r); });
  api_->on("encrypt.rekey", [this](const json::object& r) { return encrypt_rekey(r); });
  api_->on("policy.selectors", [this](const json::object& r) { return policy_selectors(r); });
  api_->on("monitor.poll", [this](const json::object& r) { return monitor_poll(r); });
  api_->on("explain", [this](const json::object& r) { return explain(r); });
}

json::object Daemon::status_json() {
  json::object o;
  std::vector<std::string> problems;
  o["healthy"] = healthy(&problems);
  json::array warnings;
  for (auto& p : problems) warnings.emplace_back(p);
  o["version"] = XDPMESH_VERSION;
  o["uptime_seconds"] =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
  o["node"] = cfg_.node_name;
  o["cluster"] = cfg_.cluster_name;
  o["cluster_id"] = cfg_.cluster_id;
  o["node_ip"] = format_ip4(facts_.node_ip);
  o["tunnel"] = json::object{{"mode", tunnel_mode_name(cfg_.tunnel_mode)},
                             {"port", cfg_.effective_tunnel_port()},
                             {"uplink_mtu", facts_.uplink_mtu},
                             {"pod_mtu", inner_mtu_for(facts_.uplink_mtu)}};
  json::array ifaces;
  for (std::size_t i = 0; i < links_.size(); ++i) {
    const AttachedIface& a = steering_->attached().at(i);
    bool zc = true;
    for (auto& w : workers_) zc = zc && w->ports().at(i)->zero_copy();
    json::object io;
    io["name"] = a.ifname;
    io["ifindex"] = a.ifindex;
    io["role"] = i == 0 ? "uplink" : "pod";
    io["xdp_mode"] = a.mode == AttachedMode::native ? "native" : "skb";
    io["zero_copy"] = zc;
    io["mtu"] = links_[i].mtu;
    if (a.mode == AttachedMode::skb) {
      io["xdp_fallback_reason"] = a.fallback_reason;
      warnings.emplace_back(a.ifname + ": XDP in SKB (generic) mode, not native: " + a.fallback_reason);
    }
    ifaces.push_back(io);
  }
  o["interfaces"] = ifaces;
  o["warnings"] = warnings;
  o["workers"] = workers_.size();
  uint64_t rx = 0, tx = 0, drops = 0;
  for (auto& w : workers_) {
    rx += w->counters().rx_packets.get();
    tx += w->counters().tx_packets.get();
    drops += w->counters().drops_total();
  }
  o["totals"] = json::object{{"rx_packets", rx}, {"tx_packets", tx}, {"drops", drops}};
  const Snapshot* s = published_->load();
  o["tables"] = json::object{{"version", s ? s->version : 0},
                             {"ipcache", s ? s->ipcache4.size() + s->ipcache6.size() : 0},
                             {"endpoints", s ? s->endpoints4.size() + s->endpoints6.size() : 0},
                             {"tunnels", s ? s->tunnels.size() : 0}};
  return o;
}

json::object Daemon::stats_json() {
  json::object o;
  json::array ws;
  for (auto& w : workers_) {
    const WorkerCounters& c = w->counters();
    json::object wo;
    wo["id"] = w->id();
    wo["rx_packets"] = c.rx_packets.get();
    wo["rx_bytes"] = c.rx_bytes.get();
    wo["tx_packets"] = c.tx_packets.get();
    wo["tx_bytes"] = c.tx_bytes.get();
    wo["encapsulated"] = c.encapsulated.get();
    wo["decapsulated"] = c.decapsulated.get();
    wo["delivered_local"] = c.delivered_local.get();
    wo["arp_replies"] = c.arp_replies.get();
    wo["nd_replies"] = c.nd_replies.get();
    wo["icmp_errors_sent"] = c.icmp_errors_sent.get();
    wo["ct_created"] = c.ct_created.get();
    wo["ct_hits"] = c.ct_hits.get();
    wo["ct_replies"] = c.ct_replies.get();
    wo["dnat"] = c.dnat.get();
    wo["rev_nat"] = c.rev_nat.get();
    wo["snat"] = c.snat.get();
    wo["lb_new_flows"] = c.lb_new_flows.get();
    wo["tcp_resets_sent"] = c.tcp_resets_sent.get();
    wo["icmp_related"] = c.icmp_related.get();
    wo["policy_allowed"] = c.policy_allowed.get();
    wo["wg_encrypted"] = c.wg_encrypted.get();
    wo["wg_decrypted"] = c.wg_decrypted.get();
    wo["wg_keepalives_rx"] = c.wg_keepalives_rx.get();
    wo["esp_encrypted"] = c.esp_encrypted.get();
    wo["esp_decrypted"] = c.esp_decrypted.get();
    wo["drop_events_lost"] = c.drop_events_lost.get();
    wo["slow_path_requests"] = c.slow_path_requests.get();
    wo["slow_path_full"] = c.slow_path_full.get();
    wo["idle_sleeps"] = c.polls_idle.get();
    wo["wakeups"] = c.wakeups.get();
    json::object drops;
    for (std::size_t r = 0; r < kDropReasonCount; ++r)
      drops[drop_reason_name(static_cast<DropReason>(r))] = c.drops[r].get();
    wo["drops"] = drops;
    json::array ports;
    for (std::size_t i = 0; i < w->ports().size(); ++i) {
      const xdp_statistics k = w->ports()[i]->kernel_stats();
      ports.push_back(json::object{{"interface", w->ports()[i]->ifname()},
                                   {"queue", w->ports()[i]->queue()},
                                   {"rx_packets", c.port_rx[i].get()},
                                   {"tx_packets", c.port_tx[i].get()},
                                   // Frames steered to us that the kernel had to drop.
                                   {"kernel_rx_dropped", k.rx_dropped},
                                   {"kernel_rx_ring_full", k.rx_ring_full},
                                   {"kernel_fill_ring_empty", k.rx_fill_ring_empty_descs},
                                   {"kernel_rx_invalid_descs", k.rx_invalid_descs},
                                   {"kernel_tx_invalid_descs", k.tx_invalid_descs}});
    }
    wo["ports"] = ports;
    ws.push_back(wo);
  }
  o["workers"] = ws;
  json::object steer;
  const auto acts = steering_->action_counters();
  for (unsigned i = 0; i < acts.size(); ++i) steer[SteeringProgram::action_name(i)] = acts[i];
  o["xdp_actions"] = steer;
  return o;
}

json::object Daemon::ipcache_json() {
  json::array entries;
  mesh_.for_each_ipcache([&](const IpcachePrefix& prefix, const IpcacheValue& v) {
    json::object e;
    e["prefix"] = prefix.str();
    e["identity"] = v.identity;
    e["tunnel_endpoint"] = v.tunnel_endpoint ? format_ip4(*v.tunnel_endpoint) : "";
    e["encrypt_key"] = v.encrypt_key;
    json::array flags;
    if (v.tunnel_endpoint && v.tunnel_endpoint->be != facts_.node_ip.be) flags.emplace_back("hastunnel");
    if (v.source != "config" && v.source != "api") flags.emplace_back("remotecluster");
    e["flags"] = flags;
    e["source"] = v.source;
    entries.push_back(e);
  });
  return json::object{{"entries", entries}};
}

json::object Daemon::nodes_json() {
  json::array nodes;
  nodes.push_back(json::object{{"name", cfg_.cluster_name + "/" + cfg_.node_name},
                               {"ipv4", format_ip4(facts_.node_ip)},
                               {"local", true},
                               {"next_hop_mac", ""},
                               {"source", "local"}});
  for (const auto& [key, n] : mesh_.nodes()) {
    auto mac = facts_.next_hop_macs.find(n.ip.be);
    json::array cidrs, addrs;
    for (const std::string& c : n.pod_cidrs) cidrs.emplace_back(c);
    for (const std::string& a : n.addresses) addrs.emplace_back(a);
    nodes.push_back(json::object{
        {"name", key},
        {"ipv4", n.ip.be ? format_ip4(n.ip) : ""},
        {"local", false},
        {"pod_cidrs", cidrs},
        {"addresses", addrs},
        {"next_hop_mac", mac == facts_.next_hop_macs.end() ? "" : format_mac(mac->second.data())},
        {"source", n.source}});
  }
  return json::object{{"nodes", nodes}};
}

json::object Daemon::endpoints_json() {
  json::array eps;
  for (const PodInterfaceConfig& p : cfg_.pods)
    for (const LocalEndpointConfig& e : p.endpoints) {
      json::object o;
      o["interface"] = p.interface;
      o["ipv4"] = e.ipv4 ? format_ip4(*e.ipv4) : "";
      o["ipv6"] = e.ipv6 ? format_ip6(*e.ipv6) : "";
      o["mac"] = format_mac(e.mac.data());
      o["identity"] = e.identity;
      json::object labels;
      for (const auto& [k, v] : e.labels) labels[k] = v;
      o["labels"] = labels;
      eps.push_back(o);
    }
  return json::object{{"endpoints", eps}};
}

namespace {
std::string req_str(const json::object& r, const char* key) {
  auto it = r.find(key);
  if (it == r.end() || !it->value().is_string()) throw std::runtime_error(std::string("missing string field ") + key);
  return std::string(it->value().as_string());
}
json::object error(const std::string& why) { return json::object{{"ok", false}, {"error", why}}; }
}  // namespace

json::object Daemon::ipcache_upsert(const json::object& r) {
  auto prefix = parse_ipcache_prefix(req_str(r, "prefix"));
  if (!prefix) return error("prefix is not an IPv4/IPv6 prefix without host bits");
  const auto* id = r.if_contains("identity");
  if (!id || !id->is_int64() || id->as_int64() < 1 || id->as_int64() > 0xffffff)
    return error("identity must be an integer in [1, 16777215]");
  IpcacheValue v;
  v.identity = static_cast<uint32_t>(id->as_int64());
  v.source = "api";
  if (r.contains("tunnel_endpoint")) {
    auto ip = parse_ip4(req_str(r, "tunnel_endpoint"));
    if (!ip) return error("tunnel_endpoint is not an IPv4 address");
    v.tunnel_endpoint = *ip;
  }
  mesh_.set_ipcache(*prefix, IpcacheOwner{IpcacheRank::api, ""}, v);
  if (v.tunnel_endpoint && !facts_.next_hop_macs.count(v.tunnel_endpoint->be)) resolve_next_hops();
  rebuild_now();  // synchronous so the caller sees its change applied on return
  return json::object{{"version", version_}};
}

json::object Daemon::ipcache_delete(const json::object& r) {
  auto prefix = parse_ipcache_prefix(req_str(r, "prefix"));
  if (!prefix) return error("prefix is not an IPv4/IPv6 prefix without host bits");
  // The operator may remove what the API or the static config set; what a
  // cluster publishes in etcd is that cluster's to delete.
  const bool api = mesh_.erase_ipcache(*prefix, IpcacheOwner{IpcacheRank::api, ""});
  const bool config = mesh_.erase_ipcache(*prefix, IpcacheOwner{IpcacheRank::config, ""});
  if (!api && !config)
    return error("no prefix " + prefix->str() + " set through the API or the config (etcd entries are deleted in etcd)");
  rebuild_now();
  return json::object{{"version", version_}};
}

json::object Daemon::clustermesh_json() {
  json::object o;
  if (clustermesh_) {
    o = clustermesh_->status();
  } else {
    o["clusters"] = json::array();
    o["ready"] = 0;
    o["total"] = 0;
  }
  o["all_ready"] = !clustermesh_ || clustermesh_->all_ready();
  if (own_state_) o["local"] = own_state_->status();
  o["local_cluster"] = cfg_.cluster_name;
  return o;
}

json::object Daemon::identities_json() {
  std::map<uint32_t, json::object> by_id;
  for (const PodInterfaceConfig& p : cfg_.pods)
    for (const LocalEndpointConfig& e : p.endpoints) {
      if (!e.identity || by_id.count(e.identity)) continue;
      json::array labels;
      for (const auto& [k, v] : e.labels) labels.emplace_back("k8s:" + k + "=" + v);
      by_id[e.identity] = json::object{{"id", e.identity}, {"cluster", cfg_.cluster_name}, {"labels", labels},
                                       {"source", "local"}};
    }
  for (const auto& [id, ident] : mesh_.identities) {
    json::array labels;
    for (const std::string& l : ident.labels) labels.emplace_back(l);
    by_id[id] = json::object{{"id", id}, {"cluster", ident.cluster}, {"labels", labels}, {"source", "clustermesh"}};
  }
  json::array out;
  for (auto& [id, o] : by_id) out.push_back(std::move(o));
  return json::object{{"identities", out}};
}

}  // namespace xdpmesh
