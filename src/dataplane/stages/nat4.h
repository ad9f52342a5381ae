// IPv4 address and port translation in place, with incremental checksum
// updates (RFC 1624) of the IP header and of the TCP/UDP checksum, which
// covers the addresses through the pseudo header.
// Threading: pure functions over one packet.
#pragma once

#include <cstdint>
#include <cstring>

#include "dataplane/core/checksum.h"
#include "dataplane/core/net_headers.h"

namespace xdpmesh {

inline uint16_t csum_replace4(uint16_t check, uint32_t old_be, uint32_t new_be) {
  check = csum::update16(check, static_cast<uint16_t>(old_be), static_cast<uint16_t>(new_be));
  return csum::update16(check, static_cast<uint16_t>(old_be >> 16), static_cast<uint16_t>(new_be >> 16));
}

// Offset of the checksum inside the L4 header, or -1 when there is none to fix.
inline int l4_check_offset(uint8_t proto) { return proto == net::kProtoTcp ? 16 : proto == net::kProtoUdp ? 6 : -1; }

// Adds a 32-bit field's change (old -> new, network order) to an RFC 1624
// accumulator: ~m + m' per 16-bit word, folded once at the end.
inline void csum_acc4(uint32_t& acc, uint32_t old_be, uint32_t new_be) {
  acc += static_cast<uint16_t>(~old_be) + static_cast<uint16_t>(~(old_be >> 16)) + static_cast<uint16_t>(new_be) +
         static_cast<uint16_t>(new_be >> 16);
}
inline uint16_t csum_finish(uint32_t acc) {
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

// l4 may be null (a non-first fragment): then only the IP header changes.
// One accumulator per checksum, folded once: the addresses count in both
// (the pseudo header), the ports in the L4 one only.
inline void nat4_rewrite(net::Ipv4Hdr* ip, uint8_t* l4, uint32_t saddr, uint16_t sport, uint32_t daddr,
                         uint16_t dport) {
  uint32_t addr_acc = 0;
  csum_acc4(addr_acc, ip->saddr, saddr);
  csum_acc4(addr_acc, ip->daddr, daddr);
  ip->check = csum_finish(static_cast<uint16_t>(~ip->check) + addr_acc);
  ip->saddr = saddr;
  ip->daddr = daddr;
  const int off = l4 ? l4_check_offset(ip->protocol) : -1;
  if (off < 0) return;
  uint32_t old_ports, new_ports;
  std::memcpy(&old_ports, l4, 4);
  new_ports = static_cast<uint32_t>(sport) | static_cast<uint32_t>(dport) << 16;
  std::memcpy(l4, &new_ports, 4);
  uint16_t l4check;
  std::memcpy(&l4check, l4 + off, 2);
  if (ip->protocol == net::kProtoUdp && l4check == 0) return;  // "no checksum" stays so
  uint32_t acc = static_cast<uint16_t>(~l4check) + addr_acc;
  csum_acc4(acc, old_ports, new_ports);
  l4check = csum_finish(acc);
  if (ip->protocol == net::kProtoUdp && l4check == 0) l4check = 0xffff;
  std::memcpy(l4 + off, &l4check, 2);
}

}  // namespace xdpmesh
