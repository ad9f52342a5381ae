#include "dataplane/tables/policy_table.h"

#include <algorithm>
#include <tuple>

namespace xdpmesh {

std::shared_ptr<const PolicyTable> PolicyTableBuilder::build() {
  auto key_of = [](const PolicyPeerKey& k) { return std::tie(k.subject, k.peer, k.dir); };
  std::stable_sort(allowed_.begin(), allowed_.end(),
                   [&](const auto& a, const auto& b) { return key_of(a.first) < key_of(b.first); });
  std::vector<std::pair<PolicyPeerKey, PolicyTable::Span>> spans;
  std::vector<PolicyPortRange> ranges;
  ranges.reserve(allowed_.size());
  for (std::size_t i = 0; i < allowed_.size();) {
    const PolicyPeerKey k = allowed_[i].first;
    const auto begin = static_cast<uint32_t>(ranges.size());
    for (; i < allowed_.size() && allowed_[i].first == k; ++i) {
      const PolicyPortRange& r = allowed_[i].second;
      // The first rule that allows a port is the one reported; drop exact repeats.
      if (std::find(ranges.begin() + begin, ranges.end(), r) == ranges.end()) ranges.push_back(r);
    }
    spans.push_back({k, PolicyTable::Span{begin, static_cast<uint32_t>(ranges.size()) - begin}});
  }
  return std::make_shared<const PolicyTable>(FlatMap<PolicySubjectKey, uint8_t>(enforced_),
                                             FlatMap<PolicyPeerKey, PolicyTable::Span>(spans), std::move(ranges),
                                             std::move(rules_),
                                             FlatMap<PolicySubjectKey, uint8_t>(known_));
}

}  // namespace xdpmesh
