// Bounded exponential backoff with full jitter (AWS architecture blog's
// "full jitter"): reconnect storms of many nodes spread out instead of
// arriving in lockstep. Threading: one owner.
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace xdpmesh {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max) : initial_(initial), max_(max) {}

  // The next delay: uniform in [ceiling/2, ceiling], ceiling doubling up to max.
  std::chrono::milliseconds next() {
    const std::chrono::milliseconds ceiling =
        std::min(max_, std::chrono::milliseconds(initial_.count() * (1LL << std::min(attempt_, 30))));
    ++attempt_;
    std::uniform_int_distribution<long long> d(ceiling.count() / 2, ceiling.count());
    return std::chrono::milliseconds(d(rng_));
  }
  void reset() { attempt_ = 0; }

 private:
  std::chrono::milliseconds initial_, max_;
  int attempt_ = 0;
  std::minstd_rand rng_{std::random_device{}()};
};

}  // namespace xdpmesh
