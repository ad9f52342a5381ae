// The daemon's services and policy: the service table and the compiled policy
// go into every snapshot; policies reload from their directory; flows, drop
// events and `explain` are served to xdpmeshctl.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <ctime>

#include "control/daemon/daemon.h"
#include "control/mesh/mesh_reflector.h"
#include "control/policy/label_selector.h"
#include "dataplane/core/net_headers.h"

namespace xdpmesh {

namespace json = boost::json;
namespace asio = boost::asio;

namespace {

// First local-scope identity (Cilium: 1<<24 | n for node-local CIDR identities).
constexpr uint32_t kLocalIdentityBase = 1u << 24;

std::string proto_name(uint8_t p) {
  switch (p) {
    case 1: return "ICMP";
    case 6: return "TCP";
    case 17: return "UDP";
    case 58: return "ICMPv6";
    default: return std::to_string(p);
  }
}

std::string ep4(Ip4 a, uint16_t port_be) { return fmt::format("{}:{}", format_ip4(a), net::ntoh16(port_be)); }
std::string ep6(const Ip6& a, uint16_t port_be) { return fmt::format("[{}]:{}", format_ip6(a), net::ntoh16(port_be)); }

const char* state_name(CtState s) {
  switch (s) {
    case CtState::syn_sent: return "SYN_SENT";
    case CtState::established: return "ESTABLISHED";
    case CtState::closing: return "CLOSING";
    case CtState::udp: return "UDP";
    case CtState::icmp: return "ICMP";
    default: return "OTHER";
  }
}

uint64_t fingerprint_identities(const std::map<uint32_t, LabelSet>& ids) {
  uint64_t h = ids.size();
  for (const auto& [id, labels] : ids) {
    h = mix64(h ^ id);
    for (const std::string& l : labels) h = mix64(h ^ std::hash<std::string>{}(l));
  }
  return h;
}

}  // namespace

std::vector<cilium::LabelSet> Daemon::local_endpoint_labels() const {
  std::vector<cilium::LabelSet> out;
  for (const PodInterfaceConfig& pod : cfg_.pods)
    for (const LocalEndpointConfig& e : pod.endpoints) {
      cilium::LabelSet l = cilium::labels_from_map(e.labels);
      l.push_back("k8s:io.kubernetes.pod.namespace=" + e.namespace_);
      l.push_back(std::string(cilium::kClusterLabel) + "=" + cfg_.cluster_name);
      out.push_back(std::move(l));
    }
  return out;
}

void Daemon::load_policies(bool initial) {
  if (!cfg_.policy) return;
  const std::string fp = policy_directory_fingerprint(cfg_.policy->directory);
  if (!initial && fp == policy_fingerprint_) return;
  try {
    PolicySet set = load_policy_directory(cfg_.policy->directory);
    policies_ = std::move(set);
    policy_fingerprint_ = fp;
    policy_error_.clear();
    policy_loaded_ = true;
    policy_changed_ = true;
    ++policy_revision_;
    apply_policy_cidrs();
    spdlog::info("policy: loaded {} polic{} from {} file(s) in {}", policies_.policies.size(),
                 policies_.policies.size() == 1 ? "y" : "ies", policies_.files.size(), cfg_.policy->directory);
    schedule_rebuild();
  } catch (const std::exception& e) {
    policy_fingerprint_ = fp;  // report once per change, not once per poll
    if (initial) throw std::runtime_error(fmt::format("policy: {}", e.what()));
    policy_error_ = e.what();
    spdlog::error("policy: rejected, the running policy stays in force: {}", e.what());
  }
}

void Daemon::poll_policies() {
  if (!cfg_.policy) return;
  policy_timer_.expires_after(std::chrono::milliseconds(cfg_.policy->poll_interval_ms));
  policy_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    try {
      load_policies(false);
    } catch (const std::exception& e) {
      spdlog::error("policy: {}", e.what());
    }
    poll_policies();
  });
}

// Each CIDR a policy names gets a node-local identity labelled cidr:<prefix>
// and reserved:world, and an ipcache entry below every other source, so that
// addresses outside the mesh are told apart by prefix (as Cilium does).
void Daemon::apply_policy_cidrs() {
  std::set<std::string> wanted;
  for (const std::string& c : policy_cidrs(policies_.policies)) wanted.insert(c);
  const IpcacheOwner owner{IpcacheRank::policy_cidr, ""};
  for (auto it = cidr_identities_.begin(); it != cidr_identities_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    if (auto p = parse_ipcache_prefix(it->first)) mesh_.erase_ipcache(*p, owner);
    it = cidr_identities_.erase(it);
  }
  // Never reuse an identity a removed CIDR had: flows judged under it must
  // not pass as another prefix.
  if (next_cidr_identity_ == 0) next_cidr_identity_ = kLocalIdentityBase + 1;
  for (const std::string& c : wanted) {
    if (cidr_identities_.count(c)) continue;
    auto p = parse_ipcache_prefix(c);
    if (!p) continue;
    cidr_identities_[c] = next_cidr_identity_;
    IpcacheValue v;
    v.identity = next_cidr_identity_++;
    v.source = "policy";
    mesh_.set_ipcache(*p, owner, v);
  }
}

void Daemon::refresh_services_and_policy(Snapshot& snap) {
  RemoteServices remote;
  if (clustermesh_)
    clustermesh_->for_each([&](const std::string& name, RemoteClusterSink& sink) {
      if (auto* r = dynamic_cast<MeshReflector*>(&sink)) remote.emplace_back(name, &r->services());
    });
  snap.services = services_->build(remote);
  if (cfg_.clustermesh && !cfg_.clustermesh->pod_cidrs4.empty())
    snap.snat_ip_be = router_ip(cfg_.clustermesh->pod_cidrs4.front()).be;

  if (!policy_loaded_) return;
  PolicyInputs in;
  in.local_cluster = cfg_.cluster_name;
  for (const auto& [id, ident] : mesh_.identities) in.identities[id] = ident.labels;
  const auto labels = local_endpoint_labels();
  std::size_t k = 0;
  for (const PodInterfaceConfig& pod : cfg_.pods)
    for (const LocalEndpointConfig& e : pod.endpoints) {
      if (e.identity) {
        in.identities[e.identity] = labels[k];
        in.subjects.insert(e.identity);
      }
      ++k;
    }
  for (const auto& [c, id] : cidr_identities_) in.identities[id] = {"cidr:" + c, "reserved:world"};
  const uint64_t fp = fingerprint_identities(in.identities) ^ mix64(in.subjects.size());
  if (policy_changed_ || fp != compiled_identities_fp_ || !compiled_.table) {
    compiled_ = compile_policy(policies_.policies, in);
    compiled_identities_fp_ = fp;
    policy_changed_ = false;
  }
  snap.policy = compiled_.table;
}

void Daemon::poll_monitor() {
  monitor_timer_.expires_after(std::chrono::milliseconds(100));
  monitor_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const bool active = std::chrono::steady_clock::now() < monitor_until_;
    for (auto& w : workers_) {
      w->flows().monitor.store(active, std::memory_order_relaxed);
      DropEvent e;
      while (w->flows().events.pop(e)) {
        monitor_events_.emplace_back(++monitor_seq_, e);
        if (monitor_events_.size() > 4096) monitor_events_.pop_front();
      }
    }
    poll_monitor();
  });
}

json::object Daemon::service_list(const json::object&) {
  json::object o;
  o["services"] = services_->list_json();
  return o;
}

json::object Daemon::service_get(const json::object& req) {
  const json::value* which = req.if_contains("service");
  if (!which || !which->is_string()) throw std::runtime_error("service get needs a service: ns/name or frontend ip:port");
  auto r = services_->get_json(std::string(which->as_string()));
  if (!r) throw std::runtime_error(fmt::format("no service {}", std::string(which->as_string())));
  return *r;
}

json::object Daemon::lb_list(const json::object&) {
  json::object o;
  o["frontends"] = services_->lb_json();
  return o;
}

json::object Daemon::ct_list(const json::object& req) {
  std::string filter;
  if (const json::value* f = req.if_contains("flow"); f && f->is_string()) filter = f->as_string().c_str();
  std::size_t limit = 10000;
  if (const json::value* l = req.if_contains("limit"); l && l->is_int64())
    limit = static_cast<std::size_t>(std::clamp<int64_t>(l->as_int64(), 1, 1000000));
  json::array flows;
  json::array workers;
  for (auto& w : workers_) {
    Worker::FlowDump d;
    json::object wo;
    wo["worker"] = w->id();
    // A filter applies before the limit: copy the whole table then (bounded).
    if (!w->dump_flows(d, filter.empty() ? limit : 4000000, std::chrono::milliseconds(2000))) {
      wo["error"] = "worker did not answer within 2 s";
      workers.push_back(std::move(wo));
      continue;
    }
    wo["flows"] = d.size4 + d.size6;
    wo["capacity"] = d.capacity4;
    wo["created"] = d.created;
    wo["expired"] = d.expired;
    workers.push_back(std::move(wo));
    auto emit = [&](json::object f, const std::string& line) {
      if (!filter.empty() && line.find(filter) == std::string::npos) return;
      if (flows.size() >= limit) return;
      f["worker"] = w->id();
      flows.push_back(std::move(f));
    };
    for (const CtEntry<Ip4>& e : d.flows4) {
      json::object f;
      f["proto"] = proto_name(e.orig.proto);
      f["src"] = ep4(e.orig.saddr, e.orig.sport);
      f["dst"] = ep4(e.orig.daddr, e.orig.dport);
      const std::string xs = ep4(e.xlat.saddr, e.xlat.sport), xd = ep4(e.xlat.daddr, e.xlat.dport);
      if (e.flags & (kCtDnat | kCtSnat)) {
        f["xlat_src"] = xs;
        f["xlat_dst"] = xd;
      }
      f["state"] = state_name(e.state);
      f["expires_in"] = static_cast<int64_t>(static_cast<int32_t>(e.expires - d.now));
      f["src_identity"] = e.src_identity;
      f["dst_identity"] = e.dst_identity;
      f["packets_orig"] = e.packets_orig;
      f["packets_reply"] = e.packets_reply;
      f["seen_reply"] = (e.flags & kCtSeenReply) != 0;
      if (e.service) f["service_id"] = e.service;
      if (e.flags & kCtGateway) f["gateway"] = true;
      const std::string line = fmt::format("{} {} -> {} {} -> {}", proto_name(e.orig.proto), ep4(e.orig.saddr, e.orig.sport),
                                           ep4(e.orig.daddr, e.orig.dport), xs, xd);
      emit(std::move(f), line);
    }
    for (const CtEntry<Ip6>& e : d.flows6) {
      json::object f;
      f["proto"] = proto_name(e.orig.proto);
      f["src"] = ep6(e.orig.saddr, e.orig.sport);
      f["dst"] = ep6(e.orig.daddr, e.orig.dport);
      f["state"] = state_name(e.state);
      f["expires_in"] = static_cast<int64_t>(static_cast<int32_t>(e.expires - d.now));
      f["src_identity"] = e.src_identity;
      f["dst_identity"] = e.dst_identity;
      f["packets_orig"] = e.packets_orig;
      f["packets_reply"] = e.packets_reply;
      emit(std::move(f), fmt::format("{} {} -> {}", proto_name(e.orig.proto), f["src"].as_string().c_str(),
                                     f["dst"].as_string().c_str()));
    }
  }
  json::object o;
  o["workers"] = std::move(workers);
  o["flows"] = std::move(flows);
  return o;
}

json::object Daemon::policy_get(const json::object&) {
  json::object o;
  o["enabled"] = cfg_.policy.has_value();
  if (cfg_.policy) o["directory"] = cfg_.policy->directory;
  o["revision"] = policy_revision_;
  o["last_error"] = policy_error_;
  json::array files;
  for (const auto& f : policies_.files) files.emplace_back(f);
  o["files"] = std::move(files);
  json::array pols;
  for (const Policy& p : policies_.policies) {
    json::object j;
    j["name"] = p.name;
    j["namespace"] = p.namespace_;
    j["source"] = fmt::format("{}:{}", p.file, p.line);
    j["endpoint_selector"] = to_string(p.endpoint_selector);
    j["ingress_rules"] = p.ingress.size();
    j["egress_rules"] = p.egress.size();
    j["enforces_ingress"] = p.has_ingress;
    j["enforces_egress"] = p.has_egress;
    pols.push_back(std::move(j));
  }
  o["policies"] = std::move(pols);
  json::array rules, entries;
  if (compiled_.table) {
    for (const std::string& r : compiled_.table->rules()) rules.emplace_back(r);
    compiled_.table->for_each([&](uint32_t subject, uint32_t peer, PolicyDirection d, const PolicyPortRange& r) {
      json::object e;
      e["subject"] = subject;
      e["peer"] = peer == kAnyIdentity ? json::value("any") : json::value(peer);
      e["direction"] = d == PolicyDirection::ingress ? "ingress" : "egress";
      e["proto"] = r.proto == 0 ? "ANY" : proto_name(r.proto);
      e["ports"] = r.lo == r.hi ? std::to_string(r.lo) : fmt::format("{}-{}", r.lo, r.hi);
      if (r.rule != kNoRule && r.rule < compiled_.table->rules().size()) e["rule"] = compiled_.table->rules()[r.rule];
      entries.push_back(std::move(e));
    });
  }
  json::array enforced;
  for (const PodInterfaceConfig& pod : cfg_.pods)
    for (const LocalEndpointConfig& e : pod.endpoints) {
      if (!e.identity) continue;
      json::object j;
      j["endpoint"] = e.ipv4 ? format_ip4(*e.ipv4) : e.ipv6 ? format_ip6(*e.ipv6) : "";
      j["identity"] = e.identity;
      j["ingress"] = compiled_.table && compiled_.table->enforced(e.identity, PolicyDirection::ingress);
      j["egress"] = compiled_.table && compiled_.table->enforced(e.identity, PolicyDirection::egress);
      enforced.push_back(std::move(j));
    }
  o["endpoints"] = std::move(enforced);
  o["rules"] = std::move(rules);
  o["entries"] = std::move(entries);
  return o;
}

json::object Daemon::policy_selectors(const json::object&) {
  json::array a;
  for (const SelectorUse& s : compiled_.selectors) {
    json::object j;
    j["selector"] = s.selector;
    json::array ids, users;
    for (uint32_t id : s.identities) ids.emplace_back(id);
    for (const auto& u : s.users) users.emplace_back(u);
    j["identities"] = std::move(ids);
    j["users"] = std::move(users);
    a.push_back(std::move(j));
  }
  json::object o;
  o["selectors"] = std::move(a);
  return o;
}

json::object Daemon::monitor_poll(const json::object& req) {
  uint64_t after = 0;
  if (const json::value* a = req.if_contains("after"); a && a->is_int64()) after = static_cast<uint64_t>(a->as_int64());
  // A listener keeps event capture on; without one the workers skip it.
  monitor_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (auto& w : workers_) w->flows().monitor.store(true, std::memory_order_relaxed);
  json::array events;
  const auto& rules = compiled_.table ? compiled_.table->rules() : std::vector<std::string>{};
  for (const auto& [seq, e] : monitor_events_) {
    if (seq <= after) continue;
    json::object j;
    j["seq"] = seq;
    j["type"] = "drop";
    j["reason"] = std::string(drop_reason_name(e.reason));
    j["proto"] = proto_name(e.proto);
    j["src"] = format_ip4(Ip4{*reinterpret_cast<const uint32_t*>(e.saddr)});
    j["dst"] = format_ip4(Ip4{*reinterpret_cast<const uint32_t*>(e.daddr)});
    j["sport"] = e.sport;
    j["dport"] = e.dport;
    j["src_identity"] = e.src_identity;
    j["dst_identity"] = e.dst_identity;
    if (e.rule != kNoRule && e.rule < rules.size()) j["rule"] = rules[e.rule];
    events.push_back(std::move(j));
  }
  json::object o;
  o["events"] = std::move(events);
  o["last"] = monitor_seq_;
  return o;
}

json::object Daemon::explain(const json::object& req) {
  auto str = [&](const char* k) -> std::string {
    const json::value* v = req.if_contains(k);
    if (!v || !v->is_string()) throw std::runtime_error(fmt::format("explain needs --{}", k));
    return std::string(v->as_string());
  };
  const auto src = parse_ip4(str("src"));
  const auto dst = parse_ip4(str("dst"));
  if (!src || !dst) throw std::runtime_error("explain: --src and --dst must be IPv4 addresses");
  const std::string proto_s = req.if_contains("proto") ? str("proto") : "tcp";
  const uint8_t proto = proto_s == "tcp" ? 6 : proto_s == "udp" ? 17 : proto_s == "icmp" ? 1 : 0;
  if (!proto) throw std::runtime_error("explain: --proto must be tcp, udp or icmp");
  auto num = [&](const char* k, int64_t def) -> int64_t {
    const json::value* v = req.if_contains(k);
    return v && v->is_int64() ? v->as_int64() : def;
  };
  const uint16_t dport = static_cast<uint16_t>(num("dport", 0));
  const uint16_t sport = static_cast<uint16_t>(num("sport", 40000));
  const Snapshot* s = published_->load();
  if (!s) throw std::runtime_error("no tables published yet");

  json::object o;
  auto identity_json = [&](Ip4 ip) {
    json::object j;
    uint32_t id = kIdentityWorldId;
    std::string where = "world (no ipcache entry)";
    std::string tunnel;
    if (const EndpointEntry* ep = s->endpoints4.find(ip)) {
      id = ep->identity;
      where = "local endpoint";
    } else if (const IpcacheEntry* e = s->ipcache4.lookup(ip)) {
      id = e->identity;
      where = "ipcache";
      if (e->tunnel != kNoTunnel && e->tunnel < s->tunnels.size())
        tunnel = format_ip4(Ip4{s->tunnels[e->tunnel].remote_ip_be});
    }
    j["address"] = format_ip4(ip);
    j["identity"] = id;
    j["source"] = where;
    if (!tunnel.empty()) j["tunnel_endpoint"] = tunnel;
    if (auto it = mesh_.identities.find(id); it != mesh_.identities.end()) {
      json::array l;
      for (const auto& x : it->second.labels) l.emplace_back(x);
      j["labels"] = std::move(l);
    }
    return std::pair{j, id};
  };
  auto [sj, src_id] = identity_json(*src);
  o["source"] = sj;

  Ip4 target = *dst;
  uint16_t target_port = dport;
  if (const ServiceLb* svc = s->services.find(dst->be, net::hton16(dport), proto)) {
    json::object sv;
    sv["frontend"] = fmt::format("{}:{}/{}", format_ip4(*dst), dport, proto_name(proto));
    sv["service_id"] = svc->id;
    sv["backends"] = svc->backends.size();
    if (svc->maglev.empty()) {
      sv["verdict"] = "no backend: new flows are dropped (no_service_backend)";
    } else {
      const CtTuple<Ip4> t{*src, *dst, net::hton16(sport), net::hton16(dport), proto};
      const uint64_t h = (svc->flags & kSvcSessionAffinity) ? hash_tuple(CtTuple<Ip4>{*src, {}, 0, 0, 0}) : hash_tuple(t);
      const LbBackend& b = svc->backends[svc->maglev[maglev_slot(h, svc->maglev.size())]];
      target = Ip4{b.ip_be};
      target_port = net::ntoh16(b.port_be);
      sv["maglev_entry"] = maglev_slot(h, svc->maglev.size());
      sv["backend"] = fmt::format("{}:{}", format_ip4(target), target_port);
      sv["source_port"] = sport;
    }
    o["service"] = std::move(sv);
  }
  auto [dj, dst_id] = identity_json(target);
  o["destination"] = dj;

  json::array verdicts;
  auto verdict = [&](uint32_t subject, uint32_t peer, PolicyDirection d, const char* who) {
    json::object v;
    v["direction"] = d == PolicyDirection::ingress ? "ingress" : "egress";
    v["at"] = who;
    v["subject_identity"] = subject;
    v["peer_identity"] = peer;
    if (!s->policy) {
      v["verdict"] = "allowed";
      v["why"] = "no policy loaded";
    } else {
      const PolicyVerdict pv = s->policy->check(subject, peer, d, proto, target_port);
      v["verdict"] = pv.allowed ? "allowed" : "denied (policy_denied)";
      if (!pv.enforced)
        v["why"] = "no policy selects the endpoint in this direction (default allow)";
      else if (pv.allowed && pv.rule < s->policy->rules().size())
        v["why"] = s->policy->rules()[pv.rule];
      else if (!pv.allowed)
        v["why"] = "selected by a policy, and no rule allows this peer, protocol and port (default deny)";
    }
    verdicts.push_back(std::move(v));
  };
  if (s->endpoints4.find(*src)) verdict(src_id, dst_id, PolicyDirection::egress, "source node (egress)");
  verdict(dst_id, src_id, PolicyDirection::ingress, s->endpoints4.find(target) ? "this node (ingress)" : "destination node (ingress)");
  o["policy"] = std::move(verdicts);
  return o;
}

}  // namespace xdpmesh
