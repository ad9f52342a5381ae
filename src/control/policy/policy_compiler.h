// Policies + the current identity set -> the PolicyTable the workers enforce.
// Rerun whenever either changes (identities arrive from remote clusters and
// CIDR identities are allocated on demand). Threading: pure function; call
// from the control thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "control/policy/policy_model.h"
#include "dataplane/tables/policy_table.h"

namespace xdpmesh {

struct PolicyInputs {
  std::string local_cluster;                // for the `cluster` entity
  // Every known identity and its labels: local, remote and CIDR ones (with
  // "cidr:<prefix>" labels). Not the reserved ones: the compiler adds
  // kReservedIdentities itself, labelled "reserved:<name>".
  std::map<uint32_t, LabelSet> identities;
  std::set<uint32_t> subjects;              // identities of local endpoints (only they get policy)
};

// One distinct selector (endpointSelector or peer selector, by canonical
// text) for `policy selectors`: what it matches now and who uses it.
struct SelectorUse {
  std::string selector;              // to_string(LabelSelector)
  std::vector<uint32_t> identities;  // sorted, reserved ones included
  std::vector<std::string> users;    // rule descriptions / "<policy> endpointSelector"
};

struct CompiledPolicy {
  std::shared_ptr<const PolicyTable> table;
  std::vector<SelectorUse> selectors;  // sorted by selector text
  std::size_t rules = 0;               // rule items compiled (== table->rules().size())
};

// A subject selected by a policy's endpointSelector is enforced in each
// direction whose key the policy has; each rule item then allows its peers
// (union of selector, entity and CIDR matches; none given = every peer) on
// its ports (none given = everything, ICMP included; ANY = TCP, UDP and SCTP,
// so ICMP stays denied, as in Cilium). Every rule item is one entry of
// table->rules(): "<file>:<line> <namespace>/<name> ingress[<i>]" (the bare
// name for a clusterwide policy), reported in PolicyVerdict::rule.
//
// Entities: world = 2 and identities labelled reserved:world; host,
// remote-node, health, init, unmanaged, kube-apiserver, ingress = identities
// labelled reserved:<entity> (so remote-node also selects 7, as in Cilium);
// cluster = those seven plus identities labelled
// k8s:io.cilium.k8s.policy.cluster=<local_cluster>; all = kAnyIdentity.
// A CIDR selects identities with a label cidr:<p> where p lies within it;
// 0.0.0.0/0 and ::/0 also select world (2). An empty selector is kAnyIdentity.
CompiledPolicy compile_policy(const std::vector<Policy>& policies, const PolicyInputs& in);

// Every CIDR the policies name, normalized, sorted, without duplicates (the
// daemon allocates a CIDR identity for each).
std::vector<std::string> policy_cidrs(const std::vector<Policy>& policies);

}  // namespace xdpmesh
