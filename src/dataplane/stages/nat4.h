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

// l4 may be null (a non-first fragment): then only the IP header changes.
inline void nat4_rewrite(net::Ipv4Hdr* ip, uint8_t* l4, uint32_t saddr, uint16_t sport, uint32_t daddr,
                         uint16_t dport) {
  const int off = l4 ? l4_check_offset(ip->protocol) : -1;
  uint16_t l4check = 0;
  if (off >= 0) std::memcpy(&l4check, l4 + off, 2);
  // A UDP checksum of 0 means "none" and stays so.
  const bool fix_l4 = off >= 0 && !(ip->protocol == net::kProtoUdp && l4check == 0);
  if (ip->saddr != saddr) {
    ip->check = csum_replace4(ip->check, ip->saddr, saddr);
    if (fix_l4) l4check = csum_replace4(l4check, ip->saddr, saddr);
    ip->saddr = saddr;
  }
  if (ip->daddr != daddr) {
    ip->check = csum_replace4(ip->check, ip->daddr, daddr);
    if (fix_l4) l4check = csum_replace4(l4check, ip->daddr, daddr);
    ip->daddr = daddr;
  }
  if (off >= 0) {
    uint16_t old_sport, old_dport;
    std::memcpy(&old_sport, l4, 2);
    std::memcpy(&old_dport, l4 + 2, 2);
    if (old_sport != sport) {
      if (fix_l4) l4check = csum::update16(l4check, old_sport, sport);
      std::memcpy(l4, &sport, 2);
    }
    if (old_dport != dport) {
      if (fix_l4) l4check = csum::update16(l4check, old_dport, dport);
      std::memcpy(l4 + 2, &dport, 2);
    }
    if (fix_l4) {
      if (ip->protocol == net::kProtoUdp && l4check == 0) l4check = 0xffff;
      std::memcpy(l4 + off, &l4check, 2);
    }
  }
}

}  // namespace xdpmesh
