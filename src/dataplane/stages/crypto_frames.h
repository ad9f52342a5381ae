// Frame bookkeeping the decrypt/encrypt stages share: turning a decrypted
// inner packet into the frame the pipeline continues with, and a stage's drop.
// Threading: worker-local.
#pragma once

#include <cstring>

#include "dataplane/core/net_headers.h"
#include "dataplane/stages/pipeline.h"

namespace xdpmesh {

// The decrypted inner IP packet at l3 (len bytes, inside p's buffer, after
// the outer headers) becomes the frame, under the outer frame's Ethernet
// addresses; the ethertype follows the IP version.
inline void become_inner_frame(Packet& p, uint8_t* l3, uint32_t len) {
  uint8_t* eth = l3 - sizeof(net::EthHdr);
  std::memmove(eth, p.data, 12);
  const uint16_t type_be = net::hton16((l3[0] >> 4) == 6 ? net::kEthIpv6 : net::kEthIpv4);
  std::memcpy(eth + 12, &type_be, 2);
  const uint32_t shift = static_cast<uint32_t>(eth - p.data);
  p.tailroom += p.len - shift - (static_cast<uint32_t>(sizeof(net::EthHdr)) + len);
  p.headroom += shift;
  p.data = eth;
  p.len = static_cast<uint32_t>(sizeof(net::EthHdr)) + len;
  p.crypto = kCryptoDecrypted;
}

// The decrypted inner packet's source must be an address of the node whose
// key authenticated it (WireGuard's cryptokey routing; the same rule for
// ESP): that node's IP (tunnel traffic) or a prefix the ipcache places on
// that node (native routing). Otherwise one node could speak for another.
inline bool inner_source_is_node(const Snapshot& s, uint32_t node_ip_be, const uint8_t* inner, bool v6) {
  const IpcacheEntry* e;
  if (!v6) {
    uint32_t src;
    std::memcpy(&src, inner + 12, 4);
    if (src == node_ip_be) return true;
    e = s.ipcache4.lookup(Ip4{src});
  } else {
    e = s.ipcache6.lookup(Ip6::from(inner + 8));
  }
  return e && e->tunnel != kNoTunnel && e->tunnel < s.tunnels.size() && s.tunnels[e->tunnel].remote_ip_be == node_ip_be;
}

// A drop by an encryption stage: counted, and skipped by the pipeline.
inline void crypto_drop(WorkerCounters& c, Packet& p, DropReason r) {
  p.out_port = kDropPort;
  p.reason = r;
  p.crypto = kCryptoDone;
  c.drop(r);
}

}  // namespace xdpmesh
