// Control-side twin of ShardedPrefixTable: holds every entry by shard and
// rebuilds only the shards touched since the last publish.
// Threading: control thread only.
#pragma once

#include <bitset>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "dataplane/tables/sharded_prefix_table.h"

namespace xdpmesh {

template <typename A, typename V>
class ShardedPrefixTableBuilder {
 public:
  // Sets addr/len (host bits cleared); returns the value it replaced.
  std::optional<V> set(const A& addr, uint8_t len, const V& v) {
    const A key = mask_prefix(addr, len);
    LevelState& l = level(len);
    const unsigned s = prefix_shard_of(key);
    auto [it, fresh] = l.entries[s].try_emplace(key, v);
    std::optional<V> old;
    if (!fresh) {
      old = it->second;
      it->second = v;
    } else {
      ++size_;
    }
    l.dirty.set(s);
    return old;
  }

  std::optional<V> erase(const A& addr, uint8_t len) {
    const A key = mask_prefix(addr, len);
    if (!levels_[len]) return std::nullopt;
    LevelState& l = *levels_[len];
    const unsigned s = prefix_shard_of(key);
    auto it = l.entries[s].find(key);
    if (it == l.entries[s].end()) return std::nullopt;
    V old = it->second;
    l.entries[s].erase(it);
    --size_;
    l.dirty.set(s);
    return old;
  }

  const V* find(const A& addr, uint8_t len) const {
    const A key = mask_prefix(addr, len);
    if (!levels_[len]) return nullptr;
    const auto& m = levels_[len]->entries[prefix_shard_of(key)];
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }

  // Rebuilds dirty shards; everything else is shared with the previous table.
  ShardedPrefixTable<A, V> publish(std::size_t* rebuilt_shards = nullptr) {
    std::vector<typename ShardedPrefixTable<A, V>::Level> out;
    std::size_t rebuilt = 0;
    for (int len = kAddrBits<A>; len >= 0; --len) {
      if (!levels_[len]) continue;
      LevelState& l = *levels_[len];
      bool any = false;
      for (unsigned s = 0; s < kPrefixShards; ++s) {
        if (l.dirty.test(s)) {
          ++rebuilt;
          if (l.entries[s].empty()) {
            l.built[s].reset();
          } else {
            std::vector<std::pair<A, V>> items(l.entries[s].begin(), l.entries[s].end());
            l.built[s] = std::make_shared<const FlatMap<A, V>>(items);
          }
        }
        any |= l.built[s] != nullptr;
      }
      l.dirty.reset();
      if (!any) continue;
      typename ShardedPrefixTable<A, V>::Level level;
      level.len = static_cast<uint8_t>(len);
      level.shards = l.built;
      out.push_back(std::move(level));
    }
    if (rebuilt_shards) *rebuilt_shards = rebuilt;
    return ShardedPrefixTable<A, V>(std::move(out), size_);
  }

  std::size_t size() const { return size_; }

 private:
  struct Hash {
    std::size_t operator()(const A& a) const { return static_cast<std::size_t>(hash_key(a) >> 32); }
  };
  struct LevelState {
    std::array<std::unordered_map<A, V, Hash>, kPrefixShards> entries;
    std::array<std::shared_ptr<const FlatMap<A, V>>, kPrefixShards> built;
    std::bitset<kPrefixShards> dirty;
  };
  LevelState& level(uint8_t len) {
    if (!levels_[len]) levels_[len] = std::make_unique<LevelState>();
    return *levels_[len];
  }

  std::array<std::unique_ptr<LevelState>, kAddrBits<A> + 1> levels_;
  std::size_t size_ = 0;
};

}  // namespace xdpmesh
