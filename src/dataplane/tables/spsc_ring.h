// Bounded single-producer/single-consumer ring (worker -> control slow path).
// Threading: push() from one thread, pop() from one other thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>

namespace xdpmesh {

template <typename T, std::size_t N>
class SpscRing {
  static_assert((N & (N - 1)) == 0, "N must be a power of two");

 public:
  // Returns false when full (the caller counts it).
  bool push(const T& v) {
    const std::size_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_.load(std::memory_order_acquire) == N) return false;
    items_[h & (N - 1)] = v;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  bool pop(T& out) {
    const std::size_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_.load(std::memory_order_acquire)) return false;
    out = items_[t & (N - 1)];
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

 private:
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  std::array<T, N> items_{};
};

}  // namespace xdpmesh
