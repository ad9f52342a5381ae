// Quiescent-state-based reclamation between the control thread (writer) and
// the workers (readers). A worker reports a quiescent state at the top of its
// poll loop, when it holds no snapshot pointer, and goes offline while it
// sleeps. The writer waits in synchronize() until every worker has either
// reported after the call began or is offline, then frees what it replaced.
// Threading: report_*() from the owning worker only; synchronize() from one writer.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace xdpmesh {

class Qsbr {
 public:
  explicit Qsbr(std::size_t readers);

  void report_quiescent(std::size_t reader) {
    slots_[reader].seen.store(epoch_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
  }
  void go_offline(std::size_t reader) { slots_[reader].seen.store(kOffline, std::memory_order_seq_cst); }
  void go_online(std::size_t reader) { report_quiescent(reader); }

  // Blocks until every reader passed a quiescent point or was offline.
  // Returns false when timeout elapsed first (a stuck worker).
  bool synchronize(std::chrono::milliseconds timeout = std::chrono::seconds(5));


 private:
  static constexpr uint64_t kOffline = 0;
  struct alignas(64) Slot {
    std::atomic<uint64_t> seen{kOffline};
  };
  alignas(64) std::atomic<uint64_t> epoch_{1};
  std::vector<Slot> slots_;
};

// The one atomic pointer through which workers see the current tables.
template <typename T>
class Published {
 public:
  explicit Published(Qsbr& qsbr) : qsbr_(qsbr) {}
  ~Published() { delete current_.load(); }
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  const T* load() const { return current_.load(std::memory_order_acquire); }

  // Swaps in next and frees the previous value after a grace period.
  // Returns false if a grace period timed out (the old value is then leaked,
  // never freed under a reader).
  bool publish(std::unique_ptr<const T> next) {
    const T* old = current_.exchange(next.release(), std::memory_order_acq_rel);
    if (!old) return true;
    if (!qsbr_.synchronize()) return false;
    delete old;
    return true;
  }

 private:
  Qsbr& qsbr_;
  std::atomic<const T*> current_{nullptr};
};

}  // namespace xdpmesh
