// Longest-prefix match over a table that can be republished piece by piece:
// each prefix length is split into 4096 immutable shards (FlatMap) held by
// shared_ptr, so a new version shares every shard that did not change. A
// 250k-entry ipcache then republishes ~1/4096 of itself per changed entry
// instead of all of it (4096: ~80 entries per shard at 330k, so a publish
// with a hundred changes rebuilds ~8k entries, not 130k). Built by ShardedPrefixTableBuilder
// (control/publish/prefix_table_builder.h). Threading: read-only after publish.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/tables/addr.h"
#include "dataplane/tables/flat_map.h"

namespace xdpmesh {

inline constexpr unsigned kPrefixShardBits = 12;
inline constexpr unsigned kPrefixShards = 1u << kPrefixShardBits;

// FlatMap indexes by the top bits of the hash; shards use bits 24..35, which
// no FlatMap below 2^32 slots looks at.
template <typename A>
inline unsigned prefix_shard_of(const A& masked) {
  return static_cast<unsigned>(hash_key(masked) >> 24) & (kPrefixShards - 1);
}

template <typename A, typename V>
class ShardedPrefixTable {
 public:
  using Shard = FlatMap<A, V>;
  struct Level {
    uint8_t len = 0;
    std::array<std::shared_ptr<const Shard>, kPrefixShards> shards;
  };

  ShardedPrefixTable() = default;
  ShardedPrefixTable(std::vector<Level> levels, std::size_t size) : levels_(std::move(levels)), size_(size) {}

  // The value of the longest prefix containing addr, or nullptr.
  const V* lookup(const A& addr, uint8_t* matched_len = nullptr) const {
    for (const Level& l : levels_) {
      const A key = l.len == kAddrBits<A> ? addr : mask_prefix(addr, l.len);
      const Shard* s = l.shards[prefix_shard_of(key)].get();
      if (!s) continue;
      if (const V* v = s->find(key)) {
        if (matched_len) *matched_len = l.len;
        return v;
      }
    }
    return nullptr;
  }

  std::size_t size() const { return size_; }

  template <typename F>
  void for_each(F&& f) const {
    for (const Level& l : levels_)
      for (const auto& s : l.shards)
        if (s) s->for_each([&](const A& a, const V& v) { f(a, l.len, v); });
  }

 private:
  std::vector<Level> levels_;  // longest prefix first, only non-empty lengths
  std::size_t size_ = 0;
};

}  // namespace xdpmesh
