// What a worker keeps between batches for stateful forwarding: connection
// tracking of both families, client-IP session affinity, the SNAT port
// cursor, and the drop events it hands to the control thread for
// `xdpmeshctl monitor`. Threading: owned by one worker; the control thread
// only pops events and asks for dumps through the worker.
#pragma once

#include <atomic>
#include <cstdint>

#include "dataplane/core/drop_reason.h"
#include "dataplane/stages/crypto_worker_state.h"
#include "dataplane/tables/conntrack.h"
#include "dataplane/tables/spsc_ring.h"

namespace xdpmesh {

struct DropEvent {
  uint64_t time_ns = 0;  // CLOCK_REALTIME
  DropReason reason = DropReason::count_;
  uint8_t family = 4, proto = 0;
  uint16_t in_port = 0;
  uint32_t src_identity = 0, dst_identity = 0;
  uint8_t saddr[16] = {}, daddr[16] = {};
  uint16_t sport = 0, dport = 0;  // host order
  uint32_t rule = 0xffffffffu;    // the policy rule involved, when one is
};
using DropEvents = SpscRing<DropEvent, 1024>;

// Client IP + service -> backend, remembered per worker for services with
// session affinity. Set-associative and overwriting: losing an entry only
// means the client is placed by Maglev again.
class AffinityCache {
 public:
  struct Entry {
    uint32_t client_be = 0, service = 0, backend = 0, expires = 0;
  };
  Entry* find(uint32_t client_be, uint32_t service, uint32_t now) {
    Entry* set = set_of(client_be, service);
    for (int i = 0; i < kWays; ++i)
      if (set[i].service == service && set[i].client_be == client_be && static_cast<int32_t>(set[i].expires - now) >= 0)
        return &set[i];
    return nullptr;
  }
  void put(uint32_t client_be, uint32_t service, uint32_t backend, uint32_t expires) {
    Entry* set = set_of(client_be, service);
    Entry* victim = &set[0];
    for (int i = 0; i < kWays; ++i) {
      if (set[i].service == service && set[i].client_be == client_be) {
        victim = &set[i];
        break;
      }
      if (set[i].expires < victim->expires) victim = &set[i];
    }
    *victim = Entry{client_be, service, backend, expires};
  }

 private:
  static constexpr int kWays = 4;
  static constexpr uint32_t kSets = 16384;
  Entry* set_of(uint32_t client_be, uint32_t service) {
    const uint64_t h = mix64((static_cast<uint64_t>(service) << 32) | client_be);
    return &table_[(h & (kSets - 1)) * kWays];
  }
  std::vector<Entry> table_ = std::vector<Entry>(kSets * kWays);
};

struct FlowStateOptions {
  uint32_t ct_capacity = 262144;  // flows per worker and family
  CtTimeouts timeouts;
};

struct FlowState {
  explicit FlowState(const FlowStateOptions& o = {})
      : ct4(o.ct_capacity, o.timeouts), ct6(o.ct_capacity / 4, o.timeouts) {}
  Conntrack<Ip4> ct4;
  Conntrack<Ip6> ct6;
  AffinityCache affinity;
  uint16_t next_snat_port = 0;  // cursor in this worker's slice of the SNAT range
  uint32_t snat_slice = 0, snat_slices = 1;  // this worker's slice: worker index, worker count
  uint32_t now = 0;             // seconds, CLOCK_MONOTONIC_COARSE; set per batch
  uint64_t now_ns = 0;          // the same clock in nanoseconds (encryption timers)
  CryptoWorkerState crypto;     // this worker's cipher contexts
  DropEvents events;
  std::atomic<bool> monitor{false};  // set by the control thread while someone listens
};

}  // namespace xdpmesh
