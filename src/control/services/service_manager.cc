#include "control/services/service_manager.h"

#include <fmt/format.h>

#include <algorithm>

#include "control/services/maglev.h"
#include "dataplane/core/net_headers.h"

namespace xdpmesh {
namespace json = boost::json;

namespace {

std::string proto_name(uint8_t p) { return p == 6 ? "TCP" : p == 17 ? "UDP" : std::to_string(p); }

std::string addr_port(uint32_t ip_be, uint16_t port, uint8_t proto) {
  return fmt::format("{}:{}/{}", format_ip4(Ip4{ip_be}), port, proto_name(proto));
}

bool selector_matches(const std::map<std::string, std::string>& sel, const LocalEndpointConfig& e) {
  if (sel.empty()) return false;  // a Service without selector has no endpoints of ours
  for (const auto& [k, v] : sel) {
    auto it = e.labels.find(k);
    if (it == e.labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

ServiceManager::ServiceManager(const Config& cfg, Ip4 uplink_ip) : cfg_(cfg), uplink_ip_(uplink_ip) {}

uint32_t ServiceManager::backend_id(uint32_t ip_be, uint16_t port_be, uint8_t proto) {
  auto key = std::make_tuple(ip_be, port_be, proto);
  if (auto it = backend_ids_.find(key); it != backend_ids_.end()) return it->second;
  uint32_t id;
  if (!free_backend_ids_.empty()) {
    id = free_backend_ids_.back();
    free_backend_ids_.pop_back();
  } else {
    id = static_cast<uint32_t>(backends_.size());
    backends_.emplace_back();
  }
  backends_[id] = BackendSlot{ip_be, port_be, proto, false};
  backend_ids_.emplace(key, id);
  return id;
}

std::vector<ServiceManager::Candidate> ServiceManager::candidates_of(const ServiceConfig& s, const ServicePortConfig& p,
                                                                     const RemoteServices& remote) const {
  std::vector<Candidate> out;
  for (const PodInterfaceConfig& pod : cfg_.pods)
    for (const LocalEndpointConfig& e : pod.endpoints)
      if (e.ipv4 && e.namespace_ == s.namespace_ && selector_matches(s.selector, e))
        out.push_back(Candidate{e.ipv4->be, p.target_port, cfg_.cluster_name, true});
  const std::string key = s.namespace_ + "/" + s.name;
  const std::string want = proto_name(p.proto);
  for (const auto& [cluster, services] : remote) {
    auto it = services->find(key);
    if (it == services->end() || !it->second.shared) continue;  // not shared: not for us (§5.4)
    for (const auto& [ip, ports] : it->second.backends) {
      auto ip4 = parse_ip4(ip);
      if (!ip4) continue;  // IPv6 backends: services are IPv4 only for now
      for (const auto& [name, l4] : ports)
        if (name == p.name && (l4.protocol == want || l4.protocol == "ANY"))
          out.push_back(Candidate{ip4->be, l4.port, cluster, false});
    }
  }
  std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.cluster, a.ip_be, a.port) < std::tie(b.cluster, b.ip_be, b.port);
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const Candidate& a, const Candidate& b) { return a.ip_be == b.ip_be && a.port == b.port; }),
            out.end());
  return out;
}

ServiceTable ServiceManager::build(const RemoteServices& remote) {
  std::vector<View> views;
  std::vector<std::pair<ServiceKey, std::shared_ptr<const ServiceLb>>> frontends;
  std::vector<bool> used(backends_.size(), false);

  for (const ServiceConfig& s : cfg_.services) {
    SelectionPolicy pol;
    pol.global = s.global;
    pol.affinity = s.affinity == "local" ? ServiceAffinity::local : s.affinity == "remote" ? ServiceAffinity::remote
                                                                                            : ServiceAffinity::none;
    pol.min_local_backends = s.min_local_backends;
    pol.cluster_weights = s.cluster_weights;
    for (const ServicePortConfig& p : s.ports) {
      View v;
      v.svc = &s;
      v.port = &p;
      v.candidates = candidates_of(s, p, remote);
      std::vector<CandidateBackend> cands;
      for (const Candidate& c : v.candidates) cands.push_back(CandidateBackend{c.cluster, c.local, true});
      v.choices = select_backends(cands, pol);

      // What the table depends on; an unchanged signature keeps the old ServiceLb (and its Maglev table).
      std::string sig = fmt::format("{}|{}|{}|", s.session_affinity, s.session_affinity_timeout, cfg_.maglev_table_size);
      for (std::size_t i = 0; i < v.candidates.size(); ++i)
        if (is_used(v.choices[i].state))
          sig += fmt::format("{}:{}@{}*{},", v.candidates[i].ip_be, v.candidates[i].port, v.candidates[i].cluster,
                             v.choices[i].weight);
      const auto id_key = std::make_tuple(s.namespace_ + "/" + s.name, p.port, p.proto);
      auto& cached = cache_[id_key];
      if (!cached.second || cached.first != sig) {
        auto lb = std::make_shared<ServiceLb>();
        auto [it, fresh] = service_ids_.emplace(id_key, next_service_id_);
        if (fresh) ++next_service_id_;
        lb->id = it->second;
        lb->flags = s.session_affinity ? kSvcSessionAffinity : 0;
        lb->affinity_timeout = s.session_affinity_timeout;
        std::vector<MaglevBackend> mb;
        for (std::size_t i = 0; i < v.candidates.size(); ++i) {
          if (!is_used(v.choices[i].state)) continue;
          const Candidate& c = v.candidates[i];
          const uint16_t port_be = net::hton16(c.port);
          lb->backends.push_back(LbBackend{c.ip_be, port_be, backend_id(c.ip_be, port_be, p.proto)});
          mb.push_back(MaglevBackend{addr_port(c.ip_be, c.port, p.proto) + "@" + c.cluster, v.choices[i].weight});
        }
        if (!mb.empty()) {
          const std::vector<uint32_t> table = maglev_table(mb, cfg_.maglev_table_size);
          lb->maglev.assign(table.begin(), table.end());
        }
        cached = {sig, std::move(lb)};
      }
      v.lb = cached.second;
      used.resize(backends_.size(), false);
      for (const LbBackend& b : v.lb->backends) used[b.id] = true;
      frontends.push_back({ServiceKey{s.frontend.be, net::hton16(p.port), p.proto}, v.lb});
      views.push_back(v);
      if (s.gateway && uplink_ip_.be) {
        auto gw = std::make_shared<ServiceLb>(*v.lb);
        gw->flags |= kSvcGateway;
        View g = v;
        g.gateway = true;
        g.lb = gw;
        frontends.push_back({ServiceKey{uplink_ip_.be, net::hton16(p.port), p.proto}, gw});
        views.push_back(std::move(g));
      }
    }
  }
  // Backends no service uses any more are dead: flows that still name them are reset.
  for (std::size_t id = 0; id < backends_.size(); ++id) {
    const bool alive = id < used.size() && used[id];
    if (backends_[id].alive && !alive) {
      backend_ids_.erase(std::make_tuple(backends_[id].ip_be, backends_[id].port_be, backends_[id].proto));
      free_backend_ids_.push_back(static_cast<uint32_t>(id));
    }
    backends_[id].alive = alive;
  }
  // Drop cache entries of services no longer configured (config is fixed; kept for clarity).
  views_ = std::move(views);
  ServiceTable t;
  t.frontends = FlatMap<ServiceKey, std::shared_ptr<const ServiceLb>>(frontends);
  t.backends = backends_;
  return t;
}

json::object ServiceManager::view_json(const View& v) const {
  json::object o;
  const ServiceConfig& s = *v.svc;
  const uint32_t fip = v.gateway ? uplink_ip_.be : s.frontend.be;
  o["id"] = v.lb->id;
  o["name"] = s.namespace_ + "/" + s.name;
  o["frontend"] = addr_port(fip, v.port->port, v.port->proto);
  o["port_name"] = v.port->name;
  o["type"] = v.gateway ? "Gateway" : "ClusterIP";
  o["global"] = s.global;
  o["shared"] = s.global && s.shared;
  o["affinity"] = s.affinity.empty() ? "none" : s.affinity;
  o["min_local_backends"] = s.min_local_backends;
  o["session_affinity"] = s.session_affinity;
  o["maglev_table_size"] = v.lb->maglev.size();
  // Share of the Maglev table per backend (what new flows get).
  std::vector<uint32_t> share(v.lb->backends.size(), 0);
  for (uint16_t i : v.lb->maglev) ++share[i];
  json::array backends;
  for (std::size_t i = 0; i < v.candidates.size(); ++i) {
    const Candidate& c = v.candidates[i];
    json::object b;
    b["address"] = addr_port(c.ip_be, c.port, v.port->proto);
    b["cluster"] = c.cluster;
    b["local"] = c.local;
    b["state"] = std::string(to_string(v.choices[i].state));
    b["used"] = is_used(v.choices[i].state);
    b["preferred"] = v.choices[i].state == Eligibility::preferred;
    b["weight"] = v.choices[i].weight;
    b["reason"] = v.choices[i].reason;
    for (std::size_t j = 0; j < v.lb->backends.size(); ++j)
      if (v.lb->backends[j].ip_be == c.ip_be && v.lb->backends[j].port_be == net::hton16(c.port)) {
        b["id"] = v.lb->backends[j].id;
        b["maglev_entries"] = share[j];
      }
    backends.push_back(std::move(b));
  }
  o["backends"] = std::move(backends);
  return o;
}

json::array ServiceManager::list_json() const {
  json::array a;
  for (const View& v : views_) a.push_back(view_json(v));
  return a;
}

std::optional<json::object> ServiceManager::get_json(const std::string& which) const {
  json::array matches;
  for (const View& v : views_) {
    json::object o = view_json(v);
    const std::string fe = o["frontend"].as_string().c_str();
    if (o["name"].as_string() == which || fe == which || fe.rfind(which + "/", 0) == 0) matches.push_back(std::move(o));
  }
  if (matches.empty()) return std::nullopt;
  json::object r;
  r["frontends"] = std::move(matches);
  return r;
}

json::array ServiceManager::lb_json() const {
  json::array a;
  for (const View& v : views_) {
    json::object o;
    const uint32_t fip = v.gateway ? uplink_ip_.be : v.svc->frontend.be;
    o["frontend"] = addr_port(fip, v.port->port, v.port->proto);
    o["rev_nat_id"] = v.lb->id;
    o["type"] = v.gateway ? "Gateway" : "ClusterIP";
    json::array slots;
    for (std::size_t i = 0; i < v.lb->backends.size(); ++i) {
      const LbBackend& b = v.lb->backends[i];
      json::object s;
      s["slot"] = i + 1;
      s["backend"] = addr_port(b.ip_be, net::ntoh16(b.port_be), v.port->proto);
      s["backend_id"] = b.id;
      slots.push_back(std::move(s));
    }
    o["slots"] = std::move(slots);
    a.push_back(std::move(o));
  }
  return a;
}

std::vector<cilium::ClusterService> ServiceManager::exported() const {
  std::vector<cilium::ClusterService> out;
  for (const ServiceConfig& s : cfg_.services) {
    if (!s.global || !s.shared) continue;
    cilium::ClusterService cs;
    cs.cluster = cfg_.cluster_name;
    cs.namespace_ = s.namespace_;
    cs.name = s.name;
    cs.cluster_id = cfg_.cluster_id;
    cs.shared = true;
    cs.include_external = true;
    cs.selector = s.selector;
    for (const ServicePortConfig& p : s.ports) {
      cs.frontends[format_ip4(s.frontend)][p.name] = cilium::L4Addr{proto_name(p.proto), p.port};
      for (const PodInterfaceConfig& pod : cfg_.pods)
        for (const LocalEndpointConfig& e : pod.endpoints)
          if (e.ipv4 && e.namespace_ == s.namespace_ && selector_matches(s.selector, e))
            cs.backends[format_ip4(*e.ipv4)][p.name] = cilium::L4Addr{proto_name(p.proto), p.target_port};
    }
    out.push_back(std::move(cs));
  }
  return out;
}

}  // namespace xdpmesh
