#include "control/policy/policy_compiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "control/policy/label_selector.h"
#include "control/policy/policy_parser.h"

namespace xdpmesh {
namespace {

constexpr std::string_view kClusterLabelPrefix = "k8s:io.cilium.k8s.policy.cluster=";
constexpr uint32_t kWorld = 2;

bool has_label(const LabelSet& labels, std::string_view label) {
  return std::find(labels.begin(), labels.end(), label) != labels.end();
}

// Resolves peers against one identity set; remembers every selector it
// evaluated, and for whom, for the `policy selectors` view.
class Resolver {
 public:
  explicit Resolver(const PolicyInputs& in) {
    for (const ReservedIdentity& r : kReservedIdentities) {
      LabelSet l{fmt::format("reserved:{}", r.name)};
      if (r.name == "kube-apiserver") l.push_back("reserved:remote-node");
      universe_.emplace_back(r.id, std::move(l));
    }
    for (const auto& [id, labels] : in.identities) {
      universe_.emplace_back(id, labels);
      for (const std::string& l : labels)
        if (l.starts_with("cidr:"))
          if (auto p = parse_cidr(std::string_view(l).substr(5))) cidr_ids_.emplace_back(id, *p);
    }
    local_cluster_label_ = fmt::format("{}{}", kClusterLabelPrefix, in.local_cluster);
  }

  const std::vector<uint32_t>& select(const LabelSelector& s, const std::string& user) {
    auto [it, fresh] = uses_.try_emplace(to_string(s));
    SelectorUse& u = it->second;
    if (fresh) {
      u.selector = it->first;
      for (const auto& [id, labels] : universe_)
        if (matches(s, labels)) u.identities.push_back(id);
      std::sort(u.identities.begin(), u.identities.end());
      u.identities.erase(std::unique(u.identities.begin(), u.identities.end()), u.identities.end());
    }
    if (std::find(u.users.begin(), u.users.end(), user) == u.users.end()) u.users.push_back(user);
    return u.identities;
  }

  std::set<uint32_t> peers(const PolicyRule& r, const std::string& user) {
    std::set<uint32_t> out;
    const bool no_peers = r.endpoints.empty() && r.cidrs.empty() && r.entities.empty();
    if (no_peers) out.insert(kAnyIdentity);  // an L4-only rule
    for (const LabelSelector& s : r.endpoints) {
      const auto& ids = select(s, user);
      if (s.empty()) out.insert(kAnyIdentity);  // also identities we do not know yet
      out.insert(ids.begin(), ids.end());
    }
    for (const std::string& e : r.entities) entity(e, out);
    for (const std::string& c : r.cidrs) cidr(c, out);
    if (out.contains(kAnyIdentity)) return {kAnyIdentity};  // the rest would be redundant
    return out;
  }

  std::vector<SelectorUse> uses() && {
    std::vector<SelectorUse> out;
    for (auto& kv : uses_) out.push_back(std::move(kv.second));
    return out;
  }

 private:
  void with_label(std::string_view label, std::set<uint32_t>& out) const {
    for (const auto& [id, labels] : universe_)
      if (has_label(labels, label)) out.insert(id);
  }

  void entity(const std::string& e, std::set<uint32_t>& out) const {
    if (e == "all") {
      out.insert(kAnyIdentity);
    } else if (e == "cluster") {
      for (const ReservedIdentity& r : kReservedIdentities)
        if (r.id != kWorld) with_label(fmt::format("reserved:{}", r.name), out);
      with_label(local_cluster_label_, out);
    } else {
      with_label(fmt::format("reserved:{}", e), out);
    }
  }

  void cidr(const std::string& text, std::set<uint32_t>& out) const {
    const std::optional<CidrPrefix> outer = parse_cidr(text);
    if (!outer) return;  // the parser only lets normalized CIDRs through
    if (outer->len == 0) out.insert(kWorld);
    for (const auto& [id, inner] : cidr_ids_)
      if (contains(*outer, inner)) out.insert(id);
  }

  std::vector<std::pair<uint32_t, LabelSet>> universe_;  // reserved first, then in.identities
  std::vector<std::pair<uint32_t, CidrPrefix>> cidr_ids_;
  std::string local_cluster_label_;
  std::map<std::string, SelectorUse> uses_;
};

std::vector<PolicyPortRange> port_ranges(const PolicyRule& r, uint32_t rule) {
  if (r.ports.empty()) return {PolicyPortRange{0, 0, 65535, rule}};
  std::vector<PolicyPortRange> out;
  for (const PolicyPort& p : r.ports) {
    if (p.proto != 0) {
      out.push_back({p.proto, p.lo, p.hi, rule});
      continue;
    }
    for (const uint8_t proto : {uint8_t{6}, uint8_t{17}, uint8_t{132}}) out.push_back({proto, p.lo, p.hi, rule});
  }
  return out;
}

std::string policy_name(const Policy& p) {
  return p.namespace_.empty() ? p.name : fmt::format("{}/{}", p.namespace_, p.name);
}

}  // namespace

CompiledPolicy compile_policy(const std::vector<Policy>& policies, const PolicyInputs& in) {
  Resolver resolver(in);
  PolicyTableBuilder b;
  for (const auto& kv : in.identities) b.know(kv.first);
  CompiledPolicy out;
  const LabelSet no_labels;
  for (const Policy& p : policies) {
    resolver.select(p.endpoint_selector, fmt::format("{}:{} {} endpointSelector", p.file, p.line, policy_name(p)));
    std::vector<uint32_t> subjects;
    for (const uint32_t s : in.subjects) {
      const auto it = in.identities.find(s);
      if (matches(p.endpoint_selector, it == in.identities.end() ? no_labels : it->second)) subjects.push_back(s);
    }
    auto direction = [&](bool present, const std::vector<PolicyRule>& rules, PolicyDirection d, const char* what) {
      if (!present) return;
      for (const uint32_t s : subjects) b.enforce(s, d);
      for (std::size_t i = 0; i < rules.size(); ++i) {
        const PolicyRule& r = rules[i];
        std::string desc = fmt::format("{}:{} {} {}[{}]", r.file, r.line, policy_name(p), what, i);
        const std::set<uint32_t> peers = resolver.peers(r, desc);
        const std::vector<PolicyPortRange> ranges = port_ranges(r, b.add_rule(std::move(desc)));
        ++out.rules;
        for (const uint32_t s : subjects)
          for (const uint32_t peer : peers)
            for (const PolicyPortRange& range : ranges) b.allow(s, peer, d, range);
      }
    };
    direction(p.has_ingress, p.ingress, PolicyDirection::ingress, "ingress");
    direction(p.has_egress, p.egress, PolicyDirection::egress, "egress");
  }
  out.table = b.build();
  out.selectors = std::move(resolver).uses();
  return out;
}

std::vector<std::string> policy_cidrs(const std::vector<Policy>& policies) {
  std::set<std::string> all;
  for (const Policy& p : policies)
    for (const auto* rules : {&p.ingress, &p.egress})
      for (const PolicyRule& r : *rules) all.insert(r.cidrs.begin(), r.cidrs.end());
  return {all.begin(), all.end()};
}

}  // namespace xdpmesh
