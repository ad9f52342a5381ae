// The forwarding pipeline over one batch of frames from one input port:
// ARP/ND answers, conntrack, service DNAT and reverse NAT (with gateway
// SNAT), identity policy at egress and ingress, local delivery, VXLAN/Geneve
// encapsulation toward remote nodes, decapsulation, ICMP too-big errors. Frames are
// rewritten in place (headers are prepended into the frame's headroom).
// Threading: worker-local; reads an immutable Snapshot.
#pragma once

#include <cstdint>

#include "dataplane/core/drop_reason.h"
#include "dataplane/stages/flow_state.h"
#include "dataplane/stats/counters.h"
#include "dataplane/tables/snapshot.h"
#include "dataplane/tables/spsc_ring.h"

namespace xdpmesh {

inline constexpr uint32_t kMaxBatch = 64;
inline constexpr uint16_t kDropPort = 0xffff;

struct Packet {
  uint8_t* data = nullptr;   // first byte of the Ethernet header
  uint32_t len = 0;          // frame length
  uint32_t headroom = 0;     // writable bytes before data
  uint32_t tailroom = 0;     // writable bytes after data + len
  uint16_t in_port = 0;
  uint16_t out_port = kDropPort;  // set by the pipeline: a port index or kDropPort
  DropReason reason = DropReason::count_;
  // Encryption: the decrypt stage marks what it did before the pipeline runs;
  // encapsulation toward an encryption peer names the peer for the encrypt
  // stage that runs after it.
  uint8_t crypto = 0;      // kCryptoNone, kCryptoDecrypted or kCryptoDone (dropped or consumed)
  uint8_t seal_kind = 0;   // kSealNone, kSealWireguard or kSealEsp
  void* seal_peer = nullptr;
};
inline constexpr uint8_t kCryptoNone = 0, kCryptoDecrypted = 1, kCryptoDone = 2;
inline constexpr uint8_t kSealNone = 0, kSealWireguard = 1, kSealEsp = 2;

// Tunnel indices whose next hop must be resolved (worker -> control thread).
using NeighborRequests = SpscRing<uint32_t, 256>;

// Runs every packet of the batch through the pipeline. Sets out_port (and for
// drops the reason, already counted); data/len/headroom reflect any rewrite.
// All packets of one call come from the same input port. flows is the
// worker's own state; the caller sets flows.now (seconds) before the call.
void run_pipeline(const Snapshot& snap, Packet* pkts, uint32_t n, WorkerCounters& counters,
                  NeighborRequests* neighbor_requests, FlowState& flows);

}  // namespace xdpmesh
