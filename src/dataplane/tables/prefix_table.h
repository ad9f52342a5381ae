// Longest-prefix-match table: one exact-match hash per prefix length present,
// searched from the longest length down. Cilium's ipcache holds mostly /32
// (/128) pod IPs and a few CIDRs, so a lookup usually costs one or two probes.
// Threading: read-only after publish.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "dataplane/tables/addr.h"
#include "dataplane/tables/flat_map.h"

namespace xdpmesh {

template <typename A, typename V>
class PrefixTable {
 public:
  struct Prefix {
    A addr;
    uint8_t len;
    V value;
  };

  PrefixTable() = default;

  // Host bits of each prefix are cleared; a repeated prefix keeps the last value.
  explicit PrefixTable(const std::vector<Prefix>& prefixes) {
    std::vector<std::vector<std::pair<A, V>>> by_len(kAddrBits<A> + 1);
    for (const Prefix& p : prefixes) by_len.at(p.len).emplace_back(mask_prefix(p.addr, p.len), p.value);
    for (int len = kAddrBits<A>; len >= 0; --len) {
      if (by_len[len].empty()) continue;
      levels_.push_back(Level{static_cast<uint8_t>(len), FlatMap<A, V>(by_len[len])});
      size_ += levels_.back().map.size();
    }
  }

  // Returns the value of the longest prefix containing addr, or nullptr.
  const V* lookup(const A& addr, uint8_t* matched_len = nullptr) const {
    for (const Level& l : levels_) {
      const A key = l.len == kAddrBits<A> ? addr : mask_prefix(addr, l.len);
      if (const V* v = l.map.find(key)) {
        if (matched_len) *matched_len = l.len;
        return v;
      }
    }
    return nullptr;
  }

  std::size_t size() const { return size_; }

  template <typename F>
  void for_each(F&& f) const {
    for (const Level& l : levels_) l.map.for_each([&](const A& a, const V& v) { f(a, l.len, v); });
  }

 private:
  struct Level {
    uint8_t len;
    FlatMap<A, V> map;
  };
  std::vector<Level> levels_;  // longest first
  std::size_t size_ = 0;
};

}  // namespace xdpmesh
