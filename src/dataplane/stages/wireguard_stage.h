// WireGuard transport data messages on the workers, batched: the decrypt
// stage runs over an uplink batch before the pipeline (a decrypted packet
// becomes an Ethernet frame of its inner IP packet and goes on through the
// pipeline as if it had arrived so), the encrypt stage after it over the
// packets that encapsulation addressed to a WireGuard peer. Handshakes,
// cookies and timers are the control thread's (control/wireguard); a worker
// only raises Peer::wants_handshake.
// Threading: worker-local; reads the Snapshot and the peers' atomics.
#pragma once

#include <cstdint>

#include "dataplane/stages/pipeline.h"

namespace xdpmesh {

// True when the frame is a WireGuard data message to this node (any IPv4
// UDP to our node IP and WireGuard port: a bad one is the stage's to count).
bool is_wireguard_data(const Snapshot& snap, const Packet& p);

// Decrypts the n packets (all is_wireguard_data). Each ends with crypto =
// kCryptoDecrypted (data/len now the inner frame) or kCryptoDone (a drop,
// counted, or a keepalive, consumed).
void wireguard_open_batch(const Snapshot& snap, WorkerCounters& c, FlowState& fs, Packet** pkts, uint32_t n);

// Encrypts the n packets (Ethernet + the IP packet to carry, seal_peer a
// wg::Peer) into data messages to the peer's endpoint; failures are dropped
// and counted per reason and per peer.
void wireguard_seal_batch(const Snapshot& snap, WorkerCounters& c, FlowState& fs, Packet** pkts, uint32_t n);

}  // namespace xdpmesh
