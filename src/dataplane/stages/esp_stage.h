// IPsec ESP (RFC 4303 tunnel mode, AES-GCM per RFC 4106, ESN) on the
// workers, batched like the WireGuard stage: decryption before the pipeline
// over the uplink's ESP packets to this node, encryption after it over the
// packets that encapsulation addressed to an IPsec peer node.
// Threading: worker-local; reads the Snapshot and the SAs' atomics.
#pragma once

#include <cstdint>

#include "dataplane/stages/pipeline.h"

namespace xdpmesh {

// True for an IPv4 ESP packet (protocol 50) to our node IP with IPsec on.
bool is_esp_to_us(const Snapshot& snap, const Packet& p);

// Each packet ends with crypto = kCryptoDecrypted (the frame is now its
// inner packet) or kCryptoDone (dropped, counted).
void esp_open_batch(const Snapshot& snap, WorkerCounters& c, FlowState& fs, Packet** pkts, uint32_t n);

// Encrypts Ethernet + IP packet frames (seal_peer an esp::NodeSas) into ESP
// tunnel-mode packets between the node addresses.
void esp_seal_batch(const Snapshot& snap, WorkerCounters& c, FlowState& fs, Packet** pkts, uint32_t n);

}  // namespace xdpmesh
