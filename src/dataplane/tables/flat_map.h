// Immutable open-addressing hash map, built once by the control thread and
// then only read. Threading: read-only after publish (any number of readers).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "dataplane/tables/addr.h"

namespace xdpmesh {

template <typename K, typename V>
class FlatMap {
 public:
  FlatMap() = default;

  // Later duplicates of a key replace earlier ones.
  explicit FlatMap(const std::vector<std::pair<K, V>>& items) {
    std::size_t cap = 8;
    unsigned bits = 3;
    while (cap < items.size() * 2) {
      cap <<= 1;
      ++bits;
    }
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    shift_ = 64 - bits;
    for (const auto& [k, v] : items) insert(k, v);
  }

  const V* find(const K& key) const {
    if (size_ == 0) return nullptr;
    for (std::size_t i = hash_key(key) >> shift_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.key == key) return &s.value;
    }
  }

  std::size_t size() const { return size_; }

  template <typename F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.used) f(s.key, s.value);
  }

 private:
  struct Slot {
    K key{};
    V value{};
    bool used = false;
  };

  void insert(const K& key, const V& value) {
    for (std::size_t i = hash_key(key) >> shift_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!s.used) {
        s = Slot{key, value, true};
        ++size_;
        return;
      }
      if (s.key == key) {
        s.value = value;
        return;
      }
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 63;
  std::size_t size_ = 0;
};

}  // namespace xdpmesh
