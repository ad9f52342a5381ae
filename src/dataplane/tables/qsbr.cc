#include "dataplane/tables/qsbr.h"

#include <thread>

namespace xdpmesh {

Qsbr::Qsbr(std::size_t readers) : slots_(readers) {}

bool Qsbr::synchronize(std::chrono::milliseconds timeout) {
  const uint64_t target = epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (Slot& s : slots_) {
    for (;;) {
      uint64_t seen = s.seen.load(std::memory_order_seq_cst);
      if (seen == kOffline || seen >= target) break;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  return true;
}

}  // namespace xdpmesh
