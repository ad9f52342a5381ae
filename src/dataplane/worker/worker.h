// A poll-mode worker: owns one UMEM and the sockets of one queue index on
// every interface, and runs rx -> pipeline -> tx to completion per batch.
// Adaptive polling: spins while traffic flows, then sleeps in poll() and goes
// offline for QSBR so an idle daemon costs ~0% CPU.
// Threading: run() on the worker's own thread; counters() and request_stop()
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "dataplane/io/xsk_port.h"
#include "dataplane/stages/pipeline.h"
#include "dataplane/stats/counters.h"
#include "dataplane/tables/qsbr.h"
#include "dataplane/tables/snapshot.h"

namespace xdpmesh {

struct WorkerOptions {
  uint32_t id = 0;
  uint32_t workers = 1;  // of this daemon (each takes a slice of the SNAT ports)
  FlowStateOptions flows;
  uint32_t spin_iterations = 2000;  // empty polls before sleeping
  int sleep_timeout_ms = 100;       // upper bound of one sleep (stop flag checked after)
};

class alignas(64) Worker {
 public:
  // ports[i] carries the traffic of Snapshot::ports[i]; ports[0] is the uplink.
  Worker(WorkerOptions opts, std::unique_ptr<Umem> umem, std::vector<std::unique_ptr<XskPort>> ports,
         const Published<Snapshot>& snapshot, Qsbr& qsbr);

  void run();
  void request_stop() { stop_.store(true, std::memory_order_relaxed); }

  const WorkerCounters& counters() const { return counters_; }
  FlowState& flows() { return *flows_; }  // events and monitor flag only, from other threads

  // A copy of the worker's IPv4 flows, taken by the worker between batches
  // (the table is the worker's alone). Blocks the caller up to timeout.
  struct FlowDump {
    std::vector<CtEntry<Ip4>> flows4;
    std::vector<CtEntry<Ip6>> flows6;
    uint32_t now = 0, size4 = 0, size6 = 0, capacity4 = 0, capacity6 = 0;
    uint64_t created = 0, expired = 0;
  };
  bool dump_flows(FlowDump& out, std::size_t max_flows, std::chrono::milliseconds timeout);
  NeighborRequests& neighbor_requests() { return neighbor_requests_; }
  const std::vector<std::unique_ptr<XskPort>>& ports() const { return ports_; }
  uint32_t id() const { return opts_.id; }

 private:
  uint32_t poll_port(uint16_t port_index, const Snapshot& snap);
  void reclaim_completions(XskPort& port);
  void refill(XskPort& port);
  void flush_tx();
  bool kick_tx(XskPort& port);  // true when the kernel took frames
  static uint32_t tx_pending(XskPort& port);
  void sleep_until_traffic();
  void serve_dump();

  WorkerOptions opts_;
  std::unique_ptr<Umem> umem_;
  std::vector<std::unique_ptr<XskPort>> ports_;
  const Published<Snapshot>& snapshot_;
  Qsbr& qsbr_;
  std::atomic<bool> stop_{false};

  WorkerCounters counters_;
  std::unique_ptr<FlowState> flows_;
  struct DumpRequest {
    FlowDump* out = nullptr;
    std::size_t max = 0;
    std::atomic<bool> done{false};
  };
  std::atomic<DumpRequest*> dump_request_{nullptr};
  NeighborRequests neighbor_requests_;

  // Per-batch scratch.
  Packet batch_[kMaxBatch];
  uint64_t batch_addr_[kMaxBatch];
  struct TxStage {
    uint32_t n = 0;
    xdp_desc descs[kMaxBatch];
  };
  std::vector<TxStage> tx_stage_;
};

}  // namespace xdpmesh
