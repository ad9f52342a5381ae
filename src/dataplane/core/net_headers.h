// Wire header layouts (network byte order fields) and protocol constants.
// Threading: types only.
#pragma once

#include <cstdint>
#include <cstring>

namespace xdpmesh::net {

inline constexpr uint16_t kEthIpv4 = 0x0800;
inline constexpr uint16_t kEthArp = 0x0806;
inline constexpr uint16_t kEthIpv6 = 0x86DD;
inline constexpr uint16_t kEthTeb = 0x6558;  // transparent Ethernet bridging (Geneve)
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;

inline constexpr uint16_t kVxlanPortDefault = 8472;  // Cilium's VXLAN port
inline constexpr uint16_t kGenevePortDefault = 6081;

using Mac = uint8_t[6];

struct [[gnu::packed]] EthHdr {
  uint8_t dst[6];
  uint8_t src[6];
  uint16_t type;
};
static_assert(sizeof(EthHdr) == 14);

struct [[gnu::packed]] Ipv4Hdr {
  uint8_t ver_ihl;
  uint8_t tos;
  uint16_t tot_len;
  uint16_t id;
  uint16_t frag_off;
  uint8_t ttl;
  uint8_t protocol;
  uint16_t check;
  uint32_t saddr;
  uint32_t daddr;
};
static_assert(sizeof(Ipv4Hdr) == 20);
inline constexpr uint16_t kIpv4DontFragment = 0x4000;  // host order
inline constexpr uint16_t kIpv4FragMask = 0x3FFF;      // MF + offset, host order

struct [[gnu::packed]] Ipv6Hdr {
  uint32_t ver_tc_flow;
  uint16_t payload_len;
  uint8_t nexthdr;
  uint8_t hop_limit;
  uint8_t saddr[16];
  uint8_t daddr[16];
};
static_assert(sizeof(Ipv6Hdr) == 40);

struct [[gnu::packed]] UdpHdr {
  uint16_t source;
  uint16_t dest;
  uint16_t len;
  uint16_t check;
};
static_assert(sizeof(UdpHdr) == 8);

struct [[gnu::packed]] IcmpHdr {
  uint8_t type;
  uint8_t code;
  uint16_t check;
  uint32_t rest;  // echo id/seq, next-hop MTU, ...
};
static_assert(sizeof(IcmpHdr) == 8);

struct [[gnu::packed]] VxlanHdr {
  uint32_t flags;  // 0x08000000: I flag
  uint32_t vni;    // VNI << 8
};
static_assert(sizeof(VxlanHdr) == 8);
inline constexpr uint32_t kVxlanFlagI = 0x08000000;  // host order

struct [[gnu::packed]] GeneveHdr {
  uint8_t ver_optlen;  // version (2 bits) | option length in 4-byte words (6 bits)
  uint8_t flags;       // O | C | reserved
  uint16_t protocol;   // 0x6558
  uint32_t vni;        // VNI << 8
};
static_assert(sizeof(GeneveHdr) == 8);

struct [[gnu::packed]] ArpIpv4 {
  uint16_t htype;
  uint16_t ptype;
  uint8_t hlen;
  uint8_t plen;
  uint16_t op;
  uint8_t sha[6];
  uint32_t spa;
  uint8_t tha[6];
  uint32_t tpa;
};
static_assert(sizeof(ArpIpv4) == 28);

// Outer headers of one tunnel packet over an IPv4 underlay.
inline constexpr uint32_t kTunnelHeaderLen =
    sizeof(EthHdr) + sizeof(Ipv4Hdr) + sizeof(UdpHdr) + sizeof(VxlanHdr);
static_assert(kTunnelHeaderLen == 50);
static_assert(sizeof(VxlanHdr) == sizeof(GeneveHdr));
// Cilium's TunnelOverheadIPv4: outer IP + UDP + VXLAN/Geneve + inner Ethernet.
inline constexpr uint32_t kTunnelOverheadIpv4 = 50;

inline uint16_t load_be16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return __builtin_bswap16(v);
}
inline uint32_t load_be32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline constexpr uint16_t hton16(uint16_t v) { return __builtin_bswap16(v); }
inline constexpr uint32_t hton32(uint32_t v) { return __builtin_bswap32(v); }
inline constexpr uint16_t ntoh16(uint16_t v) { return __builtin_bswap16(v); }
inline constexpr uint32_t ntoh32(uint32_t v) { return __builtin_bswap32(v); }

}  // namespace xdpmesh::net
