// How long to coalesce mesh changes before the next snapshot publish: 5 ms
// normally, longer when publishing itself is expensive (an initial sync of
// 250k entries dirties every shard, and rebuilding them every 5 ms would
// spend the control thread on rebuilds instead of reading etcd).
// Threading: control thread.
#pragma once

#include <algorithm>
#include <chrono>

namespace xdpmesh {

class PublishPacer {
 public:
  using ms = std::chrono::milliseconds;
  // Next coalescing delay: at least 5 ms, at most 200 ms, and at least four
  // times the last build+publish (so publishing stays under ~20% of the thread).
  ms delay() const {
    const auto four = std::chrono::duration_cast<ms>(last_ * 4);
    return std::clamp(four, ms(5), ms(200));
  }
  void record(std::chrono::steady_clock::duration took) { last_ = took; }

 private:
  std::chrono::steady_clock::duration last_{};
};

}  // namespace xdpmesh
