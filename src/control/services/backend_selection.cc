#include "control/services/backend_selection.h"

#include <algorithm>
#include <cctype>

namespace xdpmesh {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

uint32_t cluster_weight(const SelectionPolicy& p, const std::string& cluster) {
  const auto it = p.cluster_weights.find(cluster);
  return it == p.cluster_weights.end() ? 1 : it->second;
}

// Healthy backends on one side, split by whether their cluster may take
// traffic: the fallback decision and its explanation both need the split.
struct SideCount {
  uint32_t usable = 0;       // healthy, non-zero cluster weight
  uint32_t weight_zero = 0;  // healthy, but in a weight-0 cluster
};

// Why the non-preferred side is used, or "" when it is not.
std::string fallback_reason(std::string_view side, const SideCount& n, uint32_t minimum) {
  const std::string s(side);
  if (n.usable == 0)
    return n.weight_zero == 0 ? "no healthy " + s + " backend"
                              : "no healthy " + s + " backend in a cluster with non-zero weight";
  if (n.usable < minimum) {
    std::string r = "only " + std::to_string(n.usable) + " healthy " + s + " backend(s), minimum " + std::to_string(minimum);
    if (n.weight_zero != 0) r += " (" + std::to_string(n.weight_zero) + " more in weight-0 clusters)";
    return r;
  }
  return {};
}

}  // namespace

std::optional<ServiceAffinity> parse_affinity(std::string_view value) {
  if (value.empty() || iequals(value, "none")) return ServiceAffinity::none;
  if (iequals(value, "local")) return ServiceAffinity::local;
  if (iequals(value, "remote")) return ServiceAffinity::remote;
  return std::nullopt;
}

std::string_view to_string(ServiceAffinity a) {
  switch (a) {
    case ServiceAffinity::none: return "none";
    case ServiceAffinity::local: return "local";
    case ServiceAffinity::remote: return "remote";
  }
  return "?";
}

std::string_view to_string(Eligibility e) {
  switch (e) {
    case Eligibility::selected: return "selected";
    case Eligibility::preferred: return "preferred";
    case Eligibility::fallback: return "fallback";
    case Eligibility::not_preferred: return "not_preferred";
    case Eligibility::unhealthy: return "unhealthy";
    case Eligibility::not_global: return "not_global";
    case Eligibility::weight_zero: return "weight_zero";
  }
  return "?";
}

std::vector<BackendChoice> select_backends(const std::vector<CandidateBackend>& candidates, const SelectionPolicy& p) {
  // Cilium ignores the affinity annotation unless the service is global; a
  // non-global service only ever has local backends to choose from anyway.
  const ServiceAffinity affinity = p.global ? p.affinity : ServiceAffinity::none;

  SideCount local, remote;
  for (const CandidateBackend& c : candidates) {
    if (!c.healthy || (!c.local && !p.global)) continue;
    SideCount& side = c.local ? local : remote;
    (cluster_weight(p, c.cluster) == 0 ? side.weight_zero : side.usable)++;
  }
  // Reasons for using the non-preferred side; empty: it stays unused.
  const std::string local_short =
      affinity == ServiceAffinity::local ? fallback_reason("local", local, p.min_local_backends) : "";
  const std::string remote_short = affinity == ServiceAffinity::remote ? fallback_reason("remote", remote, 0) : "";

  std::vector<BackendChoice> out;
  out.reserve(candidates.size());
  for (const CandidateBackend& c : candidates) {
    BackendChoice ch;
    if (!c.local && !p.global) {
      ch = {Eligibility::not_global, 0, "service is not global"};
    } else if (!c.healthy) {
      ch = {Eligibility::unhealthy, 0, "backend is unhealthy"};
    } else {
      switch (affinity) {
        case ServiceAffinity::none:
          ch = {Eligibility::selected, 0,
                p.global ? "no affinity: local and remote backends" : "local backend of a non-global service"};
          break;
        case ServiceAffinity::local:
          if (c.local)
            ch = {Eligibility::preferred, 0, "affinity local"};
          else if (!local_short.empty())
            ch = {Eligibility::fallback, 0, local_short};
          else
            ch = {Eligibility::not_preferred, 0, "local backends available"};
          break;
        case ServiceAffinity::remote:
          if (!c.local)
            ch = {Eligibility::preferred, 0, "affinity remote"};
          else if (!remote_short.empty())
            ch = {Eligibility::fallback, 0, remote_short};
          else
            ch = {Eligibility::not_preferred, 0, "remote backends available"};
          break;
      }
      if (is_used(ch.state)) {
        ch.weight = cluster_weight(p, c.cluster);
        if (ch.weight == 0) ch = {Eligibility::weight_zero, 0, "cluster \"" + c.cluster + "\" has weight 0"};
      }
    }
    out.push_back(std::move(ch));
  }
  return out;
}

}  // namespace xdpmesh
