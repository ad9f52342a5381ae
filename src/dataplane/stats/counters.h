// Per-worker counters. Threading: written by the owning worker only (plain
// load+store, no locked instruction), read by the control thread at any time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "dataplane/core/drop_reason.h"

namespace xdpmesh {

class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

inline constexpr std::size_t kMaxPorts = 64;

struct alignas(64) WorkerCounters {
  Counter rx_packets, tx_packets, rx_bytes, tx_bytes;
  Counter encapsulated, decapsulated, delivered_local;
  Counter arp_replies, nd_replies, icmp_errors_sent;
  Counter slow_path_requests, slow_path_full;
  Counter polls_idle, wakeups;
  Counter ct_created, ct_hits, ct_replies, dnat, rev_nat, snat, lb_new_flows, tcp_resets_sent, icmp_related;
  Counter policy_allowed, drop_events_lost;
  Counter wg_encrypted, wg_decrypted, wg_keepalives_rx, esp_encrypted, esp_decrypted;
  std::array<Counter, kDropReasonCount> drops;
  std::array<Counter, kMaxPorts> port_rx, port_tx;

  void drop(DropReason r) { drops[static_cast<std::size_t>(r)].add(); }
  uint64_t drops_total() const {
    uint64_t t = 0;
    for (const Counter& c : drops) t += c.get();
    return t;
  }
};

}  // namespace xdpmesh
