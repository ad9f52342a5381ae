// The compiled identity policy the workers enforce: for a local endpoint's
// identity (the subject), a direction and a peer identity, which protocols
// and destination ports are allowed and by which rule. Built by the control
// thread's policy compiler from the policies and the current identity set;
// published in the Snapshot. Threading: read-only after publish.
//
// Semantics (Kubernetes/Cilium): a subject no policy selects in a direction
// is allowed everything in that direction; once selected, only what a rule
// allows passes (default deny).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/tables/flat_map.h"

namespace xdpmesh {

enum class PolicyDirection : uint8_t { ingress = 0, egress = 1 };

// A peer key that matches every identity (entity "all", an empty selector).
inline constexpr uint32_t kAnyIdentity = 0xffffffffu;
inline constexpr uint32_t kNoRule = 0xffffffffu;

// One allowed port range of one protocol (proto 0 = any protocol, any port).
struct PolicyPortRange {
  uint8_t proto = 0;
  uint16_t lo = 0, hi = 65535;
  uint32_t rule = kNoRule;  // index into PolicyTable::rules()
  friend bool operator==(const PolicyPortRange&, const PolicyPortRange&) = default;
};

struct PolicyVerdict {
  bool enforced = false;  // a policy selects the subject in this direction
  bool allowed = true;
  uint32_t rule = kNoRule;  // the rule that allowed it (kNoRule: default allow or deny)
};

struct PolicyPeerKey {
  uint32_t subject = 0, peer = 0;
  uint8_t dir = 0;
  friend bool operator==(const PolicyPeerKey&, const PolicyPeerKey&) = default;
};
inline uint64_t hash_key(const PolicyPeerKey& k) {
  const uint64_t a = (static_cast<uint64_t>(k.subject) << 32) | k.peer;
  return ((a ^ (a >> 29) ^ k.dir) + 1) * 0x9e3779b97f4a7c15ULL;
}
struct PolicySubjectKey {
  uint32_t subject = 0;
  uint8_t dir = 0;
  friend bool operator==(const PolicySubjectKey&, const PolicySubjectKey&) = default;
};
inline uint64_t hash_key(const PolicySubjectKey& k) {
  return ((static_cast<uint64_t>(k.subject) << 1 | k.dir) + 1) * 0x9e3779b97f4a7c15ULL;
}

class PolicyTable {
 public:
  struct Span {
    uint32_t begin = 0, count = 0;
  };

  PolicyTable() = default;
  PolicyTable(FlatMap<PolicySubjectKey, uint8_t> enforced, FlatMap<PolicyPeerKey, Span> peers,
              std::vector<PolicyPortRange> ranges, std::vector<std::string> rules,
              FlatMap<PolicySubjectKey, uint8_t> known)
      : enforced_(std::move(enforced)), peers_(std::move(peers)), ranges_(std::move(ranges)),
        rules_(std::move(rules)), known_(std::move(known)) {}

  // proto: IP protocol number; dport: destination port (0 for ICMP etc.).
  PolicyVerdict check(uint32_t subject, uint32_t peer, PolicyDirection d, uint8_t proto, uint16_t dport) const {
    const uint8_t dir = static_cast<uint8_t>(d);
    if (enforced_.size() == 0 || !enforced_.find(PolicySubjectKey{subject, dir})) return {};
    PolicyVerdict v{true, false, kNoRule};
    if (match(PolicyPeerKey{subject, peer, dir}, proto, dport, v)) return v;
    match(PolicyPeerKey{subject, kAnyIdentity, dir}, proto, dport, v);
    return v;
  }

  bool enforced(uint32_t subject, PolicyDirection d) const {
    return enforced_.find(PolicySubjectKey{subject, static_cast<uint8_t>(d)}) != nullptr;
  }
  // Reserved identities (< 256) and every identity the compiler was given.
  bool knows(uint32_t identity) const {
    return identity < 256 || known_.find(PolicySubjectKey{identity, 0}) != nullptr;
  }
  bool any_enforced() const { return enforced_.size() != 0; }
  const std::vector<std::string>& rules() const { return rules_; }
  std::size_t entries() const { return peers_.size(); }
  template <typename F>
  void for_each(F&& f) const {  // f(subject, peer, dir, const PolicyPortRange&)
    peers_.for_each([&](const PolicyPeerKey& k, const Span& s) {
      for (uint32_t i = 0; i < s.count; ++i) f(k.subject, k.peer, static_cast<PolicyDirection>(k.dir), ranges_[s.begin + i]);
    });
  }

 private:
  bool match(const PolicyPeerKey& k, uint8_t proto, uint16_t dport, PolicyVerdict& v) const {
    const Span* s = peers_.find(k);
    if (!s) return false;
    for (uint32_t i = 0; i < s->count; ++i) {
      const PolicyPortRange& r = ranges_[s->begin + i];
      if ((r.proto == 0 || r.proto == proto) && dport >= r.lo && dport <= r.hi) {
        v.allowed = true;
        v.rule = r.rule;
        return true;
      }
    }
    return false;
  }

  FlatMap<PolicySubjectKey, uint8_t> enforced_;
  FlatMap<PolicyPeerKey, Span> peers_;
  std::vector<PolicyPortRange> ranges_;
  std::vector<std::string> rules_;
  FlatMap<PolicySubjectKey, uint8_t> known_;
};

// Collects what the compiler decided and freezes it into a PolicyTable.
class PolicyTableBuilder {
 public:
  // Returns the index to use in PolicyPortRange::rule.
  uint32_t add_rule(std::string description) {
    rules_.push_back(std::move(description));
    return static_cast<uint32_t>(rules_.size() - 1);
  }
  void enforce(uint32_t subject, PolicyDirection d) { enforced_.emplace_back(PolicySubjectKey{subject, static_cast<uint8_t>(d)}, 1); }
  void allow(uint32_t subject, uint32_t peer, PolicyDirection d, PolicyPortRange r) {
    allowed_.push_back({PolicyPeerKey{subject, peer, static_cast<uint8_t>(d)}, r});
  }
  void know(uint32_t identity) { known_.emplace_back(PolicySubjectKey{identity, 0}, 1); }
  std::shared_ptr<const PolicyTable> build();

 private:
  std::vector<std::pair<PolicySubjectKey, uint8_t>> known_;
  std::vector<std::pair<PolicySubjectKey, uint8_t>> enforced_;
  std::vector<std::pair<PolicyPeerKey, PolicyPortRange>> allowed_;
  std::vector<std::string> rules_;
};

}  // namespace xdpmesh
