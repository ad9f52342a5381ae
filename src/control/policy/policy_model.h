// Identity policy as parsed from CiliumNetworkPolicy YAML: plain value types
// shared by the parser, the compiler and the CLI. Selectors already carry the
// implicit namespace requirements Cilium adds, so matching needs no context.
// Threading: value types.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace xdpmesh {

// "source:key=value" strings, e.g. "k8s:app=frontend", "reserved:host",
// "cidr:10.0.0.0/8" (the same shape as cilium::LabelSet).
using LabelSet = std::vector<std::string>;

class PolicyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SelectorRequirement {
  enum class Op : uint8_t { in, not_in, exists, does_not_exist };
  std::string key;  // "k8s:app", "any:app" or "app" (any source)
  Op op = Op::exists;
  std::vector<std::string> values;  // non-empty for in/not_in, empty otherwise
  friend bool operator==(const SelectorRequirement&, const SelectorRequirement&) = default;
};

// A Kubernetes label selector; all terms must hold. Empty selects everything.
struct LabelSelector {
  std::map<std::string, std::string> match_labels;
  std::vector<SelectorRequirement> match_expressions;
  bool empty() const { return match_labels.empty() && match_expressions.empty(); }
  friend bool operator==(const LabelSelector&, const LabelSelector&) = default;
};

// One allowed destination port range. proto: 0 = ANY (TCP, UDP and SCTP; the
// compiler expands it), 6, 17 or 132. Port "0"/absent is lo=0, hi=65535.
struct PolicyPort {
  uint8_t proto = 0;
  uint16_t lo = 0, hi = 65535;
  friend bool operator==(const PolicyPort&, const PolicyPort&) = default;
};

// One item of `ingress:` or `egress:`. At most one peer list is non-empty
// (Cilium rejects combinations); no peers at all means every peer, which the
// parser only accepts together with ports.
struct PolicyRule {
  std::vector<LabelSelector> endpoints;  // fromEndpoints / toEndpoints
  std::vector<std::string> cidrs;        // normalized "a.b.c.d/n" or "x::/n"
  std::vector<std::string> entities;     // "world", "cluster", ...
  std::vector<PolicyPort> ports;         // empty: every protocol and port, ICMP included
  std::string file;
  int line = 0;  // 1-based line of the rule item
};

// One rule object (`spec:` or one entry of `specs:`) of a policy resource.
struct Policy {
  std::string file;
  int line = 0;            // 1-based line of the spec object
  std::string namespace_;  // empty for CiliumClusterwideNetworkPolicy
  std::string name;
  LabelSelector endpoint_selector;
  // The key's presence alone enforces a direction (even `ingress: []`).
  bool has_ingress = false, has_egress = false;
  std::vector<PolicyRule> ingress, egress;
};

// Reserved identities a policy can name (../shared/CILIUM-FORMATS.md §2);
// identity 7 also carries reserved:remote-node, as in Cilium.
struct ReservedIdentity {
  std::string_view name;
  uint32_t id;
};
inline constexpr std::array<ReservedIdentity, 8> kReservedIdentities{{{"host", 1},
                                                                       {"world", 2},
                                                                       {"unmanaged", 3},
                                                                       {"health", 4},
                                                                       {"init", 5},
                                                                       {"remote-node", 6},
                                                                       {"kube-apiserver", 7},
                                                                       {"ingress", 8}}};

}  // namespace xdpmesh
