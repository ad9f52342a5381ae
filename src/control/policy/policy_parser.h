// CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy YAML (the L3/L4 subset
// xdpmesh enforces) -> Policy values. Strict: anything the dataplane would
// not enforce exactly as Cilium does (L7, deny rules, FQDNs, named ports,
// unknown keys, wrong types) is an error, never silently dropped.
// Threading: pure functions; call from the control thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/policy/policy_model.h"

namespace xdpmesh {

// Multi-document YAML; empty documents are skipped. Each `spec:` (or each
// `specs:` entry) becomes one Policy, in file order. Throws PolicyError
// "file:line:col: reason" pointing at the offending node.
//
// Implicit requirements, as Cilium adds them when it imports the resource:
// - CNP in namespace N: the endpointSelector gets k8s:io.kubernetes.pod.namespace=N
//   (a different namespace constraint there is an error);
// - peer selectors that neither constrain io.kubernetes.pod.namespace (any
//   source) nor use a reserved: key get the same match (CNP), or an Exists
//   requirement on k8s:io.kubernetes.pod.namespace (CCNP: only pods).
// No cluster requirement is added (Cilium <= 1.17).
std::vector<Policy> parse_policy_string(const std::string& yaml, const std::string& source_name);
// Same, reading `path` (used as the file name in messages and rules).
std::vector<Policy> parse_policy_file(const std::string& path);

// The CIDR grammar of fromCIDR/toCIDR, also used for "cidr:" identity labels.
struct CidrPrefix {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4
  uint8_t len = 0;
  friend bool operator==(const CidrPrefix&, const CidrPrefix&) = default;
};
// "10.0.0.0/8", a bare address (full length), "2001:db8::/32", or Cilium's
// label form with '-' for ':' ("2001-db8--/32"). Host bits are cleared.
std::optional<CidrPrefix> parse_cidr(std::string_view text);
std::string to_string(const CidrPrefix& p);  // "10.0.0.0/8", "2001:db8::/32"
// inner lies within outer: same family, not shorter, equal under outer's mask.
bool contains(const CidrPrefix& outer, const CidrPrefix& inner);

}  // namespace xdpmesh
