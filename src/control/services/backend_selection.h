// Which of a service's backends get traffic on this node, and with what
// Maglev weight: Cilium's ClusterMesh backend selection (main's
// `ClusterMeshSelectBackends.SelectBackends`, ../shared/CILIUM-FORMATS.md
// §5.4) plus two extensions of ours: a minimum number of local backends before
// local affinity stops spilling over to remote clusters, and per-cluster
// weights. Every candidate gets a state and a reason so that
// `xdpmeshctl service get` can say why a backend is (not) used.
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xdpmesh {

// service.cilium.io/affinity (alias io.cilium/service-affinity).
enum class ServiceAffinity { none, local, remote };

// Parses the annotation value the way Cilium main does: case-insensitive
// "local" | "remote" | "none" | "" ("" and "none" both mean none; the
// annotation being absent is also none). Anything else: nullopt; the caller
// should warn and use none, which is what Cilium does with an unrecognised
// value. (Older Cilium releases passed "none" through verbatim, which then
// selected local backends only; we follow main and the documentation.)
std::optional<ServiceAffinity> parse_affinity(std::string_view value);
std::string_view to_string(ServiceAffinity a);

struct SelectionPolicy {
  // Ignored unless `global`, as Cilium ignores the annotation then.
  ServiceAffinity affinity = ServiceAffinity::none;
  // service.cilium.io/global: remote backends may be used at all.
  bool global = false;
  // Beyond Cilium. With affinity local, remote backends are added (as
  // fallback) while fewer than this many local backends are usable; 0 and 1
  // both give Cilium's rule: only when there is none. Does not apply to
  // affinity remote, which keeps Cilium's mirror rule (local backends only
  // when no remote backend is usable): the knob protects local capacity, and
  // under remote affinity the operator asked for traffic to leave.
  uint32_t min_local_backends = 0;
  // Beyond Cilium. Cluster name -> Maglev weight of its backends; clusters
  // not listed weigh 1; 0 = never used (a drained cluster).
  std::map<std::string, uint32_t> cluster_weights;
};

struct CandidateBackend {
  std::string cluster;  // the cluster it lives in (ours too, for local ones)
  bool local = false;   // in our own cluster (false: learnt through ClusterMesh)
  bool healthy = true;
};

enum class Eligibility {
  selected,       // used: no affinity applies
  preferred,      // used: on the side the affinity prefers
  fallback,       // used: on the other side, because the preferred side is short
  not_preferred,  // not used: the preferred side has enough backends
  unhealthy,      // not used: failed its health check / not active
  not_global,     // not used: remote backend of a service that is not global
  weight_zero,    // not used: would be used, but its cluster's weight is 0
};
std::string_view to_string(Eligibility e);
// selected, preferred and fallback: the backend goes into the Maglev table.
constexpr bool is_used(Eligibility e) {
  return e == Eligibility::selected || e == Eligibility::preferred || e == Eligibility::fallback;
}

struct BackendChoice {
  Eligibility state = Eligibility::selected;
  uint32_t weight = 0;  // Maglev weight: the cluster's weight when used, else 0
  std::string reason;   // one line for humans, never empty
};

// One choice per candidate, in the candidates' order.
//
// Rules, in order, for each candidate:
// 1. remote and not p.global -> not_global.
// 2. unhealthy -> unhealthy.
// 3. affinity (none when !p.global):
//    none   -> selected.
//    local  -> local: preferred. remote: fallback when the usable local count
//              is 0 or < min_local_backends, else not_preferred.
//    remote -> remote: preferred. local: fallback when no remote backend is
//              usable, else not_preferred.
// 4. used but its cluster's weight is 0 -> weight_zero.
// "Usable" = healthy with a non-zero cluster weight: a side whose backends all
// sit in weight-0 clusters cannot take traffic, so the other side must (else
// draining the local cluster under local affinity would black-hole the service).
std::vector<BackendChoice> select_backends(const std::vector<CandidateBackend>& candidates,
                                           const SelectionPolicy& p);

}  // namespace xdpmesh
